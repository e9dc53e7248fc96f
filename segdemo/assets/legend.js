element.addEventListener('click', (ev) => {
  const row = ev.target.closest('[data-class]');
  if (row && window.segdemoPainter) window.segdemoPainter.pickClass(Number(row.dataset.class));
});
