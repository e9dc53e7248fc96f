async (...args) => {
  const painter = window.segdemoPainter;
  args[0] = painter ? painter.value() : '';
  return args;
}
