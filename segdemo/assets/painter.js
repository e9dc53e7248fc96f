const host = element.querySelector('.sdp-host') || element;
host.innerHTML = `
<div class="sdp" tabindex="0">
  <div class="sdp-title"></div>
  <div class="sdp-cold-hint" style="display:none">The model has learned nothing of these classes yet, so it shows no prediction: paint a stroke of each class; the rest fills in.</div>
  <div class="sdp-pick-hint">Pick the class to paint first: click it below, press its key, or use <b>Pick class</b> (I, or Alt+click) on the image to take the class under the pointer.</div>
  <div class="sdp-bar sdp-classes" role="radiogroup" aria-label="Class to paint"></div>
  <div class="sdp-bar sdp-tools">
    <div class="sdp-group" role="group" aria-label="Tool">
      <button type="button" data-tool="brush" class="active" title="Brush (B): paint the chosen class">Brush</button>
      <button type="button" data-tool="fill" title="Fill (F): give the whole connected region under the click the chosen class">Fill</button>
      <button type="button" data-tool="eraser" title="Eraser (E): back to the model's prediction">Eraser</button>
      <button type="button" data-tool="superpixel" title="Superpixel brush (S): a stroke paints every superpixel under the brush, whole">Superpixels</button>
      <button type="button" data-tool="grabcut" title="GrabCut box (G): drag a box around an object; its pixels get the chosen class (Undo rejects it)">GrabCut box</button>
      <button type="button" data-tool="pick" title="Pick class (I, or Alt+click with any tool): take the class under the pointer as the class to paint">Pick class</button>
    </div>
    <div class="sdp-group" role="group" aria-label="Overlays">
      <button type="button" data-act="outlines" class="sdp-outline-btn active" title="Outlines (O): draw each class region's border in white, so that close colours stay apart">Outlines</button>
      <button type="button" data-act="doubt" class="sdp-doubt-btn" title="Doubtful pixels (D): outline the pixels the model was least sure of">Doubtful pixels</button>
    </div>
    <label class="sdp-fill-label" title="After each stroke the model re-fits on what you painted on this image and fills in every pixel you have not painted (painted pixels never change)"><input type="checkbox" class="sdp-fill" checked> Fill in from my strokes</label>
    <label>Size <input type="range" class="sdp-size" min="1" max="120" value="16"><span class="sdp-size-text">16 px</span></label>
    <label>Opacity <input type="range" class="sdp-opacity" min="0" max="100" value="60"></label>
    <div class="sdp-group" role="group" aria-label="History">
      <button type="button" data-act="undo" title="Undo (Ctrl+Z)">Undo</button>
      <button type="button" data-act="redo" title="Redo (Ctrl+Y)">Redo</button>
      <button type="button" data-act="reset" title="Throw away every correction (undoable)">Reset</button>
    </div>
    <div class="sdp-group" role="group" aria-label="Zoom">
      <button type="button" data-act="zoom-out" title="Zoom out (-)">&minus;</button>
      <button type="button" data-act="zoom-fit" title="Fit to the panel">Fit</button>
      <button type="button" data-act="zoom-1" title="One image pixel per screen pixel">1:1</button>
      <button type="button" data-act="zoom-in" title="Zoom in (+)">+</button>
    </div>
    <details class="sdp-hint"><summary>Keys</summary>1&ndash;9, 0 pick a class (Shift+1&ndash;0 the 11th to 20th) &middot; I or Alt+click: pick the class under the pointer &middot; B brush, F fill, E eraser (= back to the model's prediction), S superpixels (every superpixel under the brush), G GrabCut box, O outlines, D doubtful pixels, N next image &middot; [ ] brush size &middot; Ctrl+Z / Ctrl+Y undo / redo. Void = ignored in training.</details>
  </div>
  <div class="sdp-stage">
    <div class="sdp-empty">Segment an image (or open a saved sample) to correct its mask here.</div>
    <div class="sdp-wrap" style="display:none"><img class="sdp-img" alt="image being labelled" draggable="false"><canvas class="sdp-canvas"></canvas><canvas class="sdp-doubt"></canvas><div class="sdp-box"></div><div class="sdp-cursor"></div></div>
  </div>
  <div class="sdp-status"></div>
</div>`;

const $ = (sel) => host.querySelector(sel);
const stage = $('.sdp-stage'), wrap = $('.sdp-wrap'), img = $('.sdp-img'), canvas = $('.sdp-canvas');
const doubtCanvas = $('.sdp-doubt'), boxDiv = $('.sdp-box');
const cursor = $('.sdp-cursor'), statusLine = $('.sdp-status'), classBar = $('.sdp-classes'), empty = $('.sdp-empty');
const titleLine = $('.sdp-title'), pickHint = $('.sdp-pick-hint'), coldHint = $('.sdp-cold-hint');
const NEEDS_CLASS = { brush: true, fill: true, superpixel: true, grabcut: true };
const ctx = canvas.getContext('2d', { willReadFrequently: false });
const S = { w: 0, h: 0, n: 0, mask: null, pred: null, names: [], colors: [], voidIndex: 255, lut: new Uint32Array(256),
  cls: -1, tool: 'brush', outlines: true, size: 16, zoom: 1, fit: true, undo: [], redo: [], changed: 0, token: '', title: '',
  imageData: null, pix: null, stamp: null, serial: 0, stroke: null, last: null, drawing: false,
  seg: null, segStart: null, segPix: null, segDone: null, lastSegments: [], doubt: null, showDoubt: false,
  box: null, busy: false, lastGrabcut: null, message: '',
  hand: null, fillOn: true, fillable: false, cold: false, fillSerial: 0, fills: 0, filling: false, lastFill: null };

function b64ToBytes(b64) {
  const bin = atob(b64 || ''); const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function bytesToB64(bytes) {
  let s = ''; const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) s += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
  return btoa(s);
}
function rleDecode(pair, n) {
  const values = b64ToBytes(pair[0]), lb = b64ToBytes(pair[1]);
  const view = new DataView(lb.buffer, lb.byteOffset, lb.byteLength);
  const out = new Uint8Array(n); let p = 0;
  for (let k = 0; k < values.length; k++) { const len = view.getUint32(4 * k, true); out.fill(values[k], p, p + len); p += len; }
  if (p !== n) throw new Error('mask runs cover ' + p + ' pixels, expected ' + n);
  return out;
}
function rleDecode16(pair, n) {  // uint16 values (superpixel labels)
  const vb = b64ToBytes(pair[0]), lb = b64ToBytes(pair[1]);
  const values = new DataView(vb.buffer, vb.byteOffset, vb.byteLength);
  const view = new DataView(lb.buffer, lb.byteOffset, lb.byteLength);
  const out = new Int32Array(n), runs = lb.byteLength / 4; let p = 0;
  for (let k = 0; k < runs; k++) { const len = view.getUint32(4 * k, true); out.fill(values.getUint16(2 * k, true), p, p + len); p += len; }
  if (p !== n) throw new Error('superpixel runs cover ' + p + ' pixels, expected ' + n);
  return out;
}
function rleEncode(mask) {
  const vals = [], lens = [];
  let cur = mask[0], run = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i];
    if (v === cur) { run++; } else { vals.push(cur); lens.push(run); cur = v; run = 1; }
  }
  if (mask.length) { vals.push(cur); lens.push(run); }
  const lb = new Uint8Array(lens.length * 4), view = new DataView(lb.buffer);
  lens.forEach((len, k) => view.setUint32(4 * k, len, true));
  return [bytesToB64(Uint8Array.from(vals)), bytesToB64(lb)];
}
function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
function hexToRgb(hex) { const v = parseInt(hex.slice(1), 16); return [(v >> 16) & 255, (v >> 8) & 255, v & 255]; }

function buildLut() {
  S.lut.fill(0);  // unknown values: transparent
  S.colors.forEach((hex, i) => { const [r, g, b] = hexToRgb(hex); S.lut[i] = (255 << 24 | b << 16 | g << 8 | r) >>> 0; });
  S.lut[S.voidIndex] = (255 << 24) >>> 0;  // void: opaque black
}
function className(c) { return c < 0 ? 'none picked' : (c === S.voidIndex ? 'void' : (S.names[c] || ('class ' + c))); }
function classKey(i) { return i < 20 ? (i >= 10 ? '\u21e7' : '') + String((i % 10 + 1) % 10) : ''; }

function buildClassBar() {
  const items = S.names.map((raw, i) => {
    const name = esc(raw), key = classKey(i);
    return `<button type="button" class="sdp-cls" role="radio" data-cls="${i}" title="${name}${key ? ' (key ' + key + ')' : ''}">` +
      `<span class="sw" style="background:${esc(S.colors[i])}"></span>${key ? '<kbd>' + key + '</kbd>' : ''}${name}</button>`;
  });
  items.push(`<button type="button" class="sdp-cls" role="radio" data-cls="${S.voidIndex}" title="Void: ignored in training and metrics"><span class="sw void"></span>void</button>`);
  classBar.innerHTML = items.join('');
  markActive();
}
function markActive() {
  classBar.querySelectorAll('.sdp-cls').forEach((b) => {
    const on = Number(b.dataset.cls) === S.cls; b.classList.toggle('active', on); b.setAttribute('aria-checked', on);
  });
  host.querySelectorAll('[data-tool]').forEach((b) => b.classList.toggle('active', b.dataset.tool === S.tool));
  document.querySelectorAll('.sd-legend-row').forEach((r) => r.classList.toggle('sd-picked', Number(r.dataset.class) === S.cls));
  cursor.classList.toggle('fill', S.tool === 'fill' || S.tool === 'grabcut' || S.tool === 'superpixel' || S.tool === 'pick');
  pickHint.style.display = S.n && S.cls < 0 ? '' : 'none';
  $('.sdp-outline-btn').classList.toggle('active', S.outlines);
  const doubtBtn = $('.sdp-doubt-btn');
  doubtBtn.classList.toggle('active', S.showDoubt); doubtBtn.disabled = !S.doubt;
  updateStatus();
}
function updateStatus() {
  if (!S.n) { statusLine.textContent = ''; return; }
  const tool = { eraser: 'eraser (back to prediction)', superpixel: 'superpixel brush', grabcut: 'GrabCut box',
                  pick: 'pick class' }[S.tool] || S.tool;
  const pct = (100 * S.changed / S.n).toFixed(S.changed && S.changed < S.n / 1000 ? 3 : 1);
  statusLine.textContent = `${S.title ? S.title + ' · ' : ''}${S.w}×${S.h} · ${tool} · class ${className(S.cls)} · ` +
    `size ${S.size} px · ${S.changed.toLocaleString()} px corrected (${pct}%) · zoom ${Math.round(S.zoom * 100)}%` +
    (S.message ? ' · ' + S.message : '');
  coldHint.style.display = S.cold && S.fillOn && S.fillable && !S.fills ? '' : 'none';
  host.querySelector('[data-act=undo]').disabled = !S.undo.length;
  host.querySelector('[data-act=redo]').disabled = !S.redo.length;
}
const WHITE = 0xffffffff >>> 0;
function paintAll() { paintRect(0, 0, S.w - 1, S.h - 1); }
function paintRect(x0, y0, x1, y1) {  // inclusive bounds, already clipped; outlines: right or lower neighbour differs
  x0 = Math.max(0, x0 - 1); y0 = Math.max(0, y0 - 1);  // a change also moves the outline of the pixels before it
  if (x1 < x0 || y1 < y0) return;
  const px = S.pix, m = S.mask, w = S.w, h = S.h, lines = S.outlines;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0, i = y * w + x0; x <= x1; x++, i++) {
      const v = m[i];
      px[i] = lines && ((x < w - 1 && m[i + 1] !== v) || (y < h - 1 && m[i + w] !== v)) ? WHITE : S.lut[v];
    }
  }
  ctx.putImageData(S.imageData, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}
function toggleOutlines(on) { S.outlines = on === undefined ? !S.outlines : !!on; if (S.n) paintAll(); markActive(); }
function setZoom(z, keepFit) {
  if (!S.w) return;
  S.fit = !!keepFit;
  S.zoom = Math.max(0.05, Math.min(16, z));
  wrap.style.width = (S.w * S.zoom) + 'px';
  wrap.style.height = (S.h * S.zoom) + 'px';
  wrap.classList.toggle('pixelated', S.zoom >= 2);
  updateStatus();
}
function fitZoom() {
  if (!S.w) return;
  const avail = Math.max(100, stage.clientWidth - 2);
  const maxH = Math.max(240, window.innerHeight * 0.62);
  setZoom(Math.min(avail / S.w, maxH / S.h, 3), true);
}

function load(raw) {
  let data = null;
  try { data = raw ? JSON.parse(raw) : null; } catch (err) { data = null; }
  if (!data || !data.w || !data.image) {
    S.w = S.h = S.n = 0; S.mask = S.pred = S.hand = null; S.token = ''; S.fillable = S.cold = false;
    wrap.style.display = 'none'; empty.style.display = ''; statusLine.textContent = ''; titleLine.textContent = '';
    pickHint.style.display = 'none';
    return;
  }
  S.w = data.w; S.h = data.h; S.n = data.w * data.h; S.token = data.token || ''; S.title = data.title || '';
  S.names = data.names || []; S.colors = data.colors || []; S.voidIndex = data.void === undefined ? 255 : data.void;
  S.pred = rleDecode(data.pred, S.n);
  S.seg = data.seg ? rleDecode16(data.seg, S.n) : null; S.segStart = null; S.lastSegments = [];
  S.doubt = data.doubt ? rleDecode(data.doubt, S.n) : null; S.lastGrabcut = null; S.message = ''; S.busy = false;
  S.mask = rleDecode(data.mask, S.n);
  S.stamp = new Uint32Array(S.n); S.serial = 0;
  S.undo = []; S.redo = []; S.stroke = null; S.drawing = false;
  S.changed = 0;
  S.hand = new Uint8Array(S.n);  // 1: painted by hand (a re-opened mask's corrections count as painted)
  for (let i = 0; i < S.n; i++) if (S.mask[i] !== S.pred[i]) { S.changed++; S.hand[i] = 1; }
  S.fillable = !!data.fill; S.cold = !!data.cold; S.fillSerial++; S.fills = 0; S.filling = false; S.lastFill = null;
  if (S.cls !== S.voidIndex && S.cls >= S.names.length) S.cls = -1;
  titleLine.textContent = S.title ? 'Editing ' + S.title : '';
  buildLut(); buildClassBar();
  canvas.width = S.w; canvas.height = S.h;
  S.imageData = ctx.createImageData(S.w, S.h);
  S.pix = new Uint32Array(S.imageData.data.buffer);
  paintAll();
  paintDoubt();
  img.src = data.image;
  empty.style.display = 'none'; wrap.style.display = '';
  fitZoom();
  host.dataset.token = S.token;
  host.dataset.loaded = String(Date.now());
}

// -- editing: every change goes through set(), recorded once per pixel per stroke --------------------------
function beginStroke() {
  S.serial = (S.serial + 1) >>> 0;
  if (S.serial === 0) { S.stamp.fill(0); S.serial = 1; }
  S.stroke = { idx: [], old: [], oldHand: [], x0: S.w, y0: S.h, x1: -1, y1: -1 };
}
function set(i, v, hand) {  // hand: 1 painted by the person, 0 the model's (eraser, reset)
  const old = S.mask[i];
  if (old === v && S.hand[i] === hand) return;
  const st = S.stroke;
  if (S.stamp[i] !== S.serial) { S.stamp[i] = S.serial; st.idx.push(i); st.old.push(old); st.oldHand.push(S.hand[i]); }
  S.mask[i] = v; S.hand[i] = hand;
  const p = S.pred[i];
  S.changed += (v !== p) - (old !== p);
}
function grow(st, x0, y0, x1, y1) {
  if (x0 < st.x0) st.x0 = x0; if (y0 < st.y0) st.y0 = y0; if (x1 > st.x1) st.x1 = x1; if (y1 > st.y1) st.y1 = y1;
}
function stamp(cx, cy) {  // a disc of diameter S.size centred on (cx, cy) in image pixels
  const r = S.size / 2, r2 = r * r, w = S.w, h = S.h;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  const eraser = S.tool === 'eraser', v = S.cls;
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) { const i = y * w + x; set(i, eraser ? S.pred[i] : v, eraser ? 0 : 1); }
    }
  }
  const px = Math.floor(cx), py = Math.floor(cy);  // the pixel under the pointer, always
  if (px >= 0 && py >= 0 && px < w && py < h) { const i = py * w + px; set(i, eraser ? S.pred[i] : v, eraser ? 0 : 1); }
  grow(S.stroke, x0, y0, x1, y1);
  paintRect(x0, y0, x1, y1);
}
function strokeTo(x, y) {
  const a = S.last || { x, y };
  const dist = Math.hypot(x - a.x, y - a.y), step = Math.max(0.5, S.size / 4);
  const n = Math.max(1, Math.ceil(dist / step));
  for (let k = 1; k <= n; k++) stamp(a.x + (x - a.x) * k / n, a.y + (y - a.y) * k / n);
  S.last = { x, y };
}
function fill(x, y) {
  const w = S.w, h = S.h, px = Math.floor(x), py = Math.floor(y);
  if (px < 0 || py < 0 || px >= w || py >= h) return;
  const start = py * w + px, target = S.mask[start], v = S.cls;
  if (target === v) return;
  beginStroke();
  const st = S.stroke;
  let stack = new Int32Array(1024), top = 0;
  const push = (i) => { if (top === stack.length) { const s = new Int32Array(stack.length * 2); s.set(stack); stack = s; } stack[top++] = i; };
  push(start);
  let x0 = px, x1 = px, y0 = py, y1 = py;
  while (top) {  // scanline fill, 4-connected
    const i = stack[--top];
    if (S.mask[i] !== target) continue;
    const row = Math.floor(i / w), rowStart = row * w;
    let l = i, r = i;
    while (l > rowStart && S.mask[l - 1] === target) l--;
    while (r < rowStart + w - 1 && S.mask[r + 1] === target) r++;
    for (let k = l; k <= r; k++) {
      set(k, v, 1);
      if (row > 0 && S.mask[k - w] === target) push(k - w);
      if (row < h - 1 && S.mask[k + w] === target) push(k + w);
    }
    if (l - rowStart < x0) x0 = l - rowStart; if (r - rowStart > x1) x1 = r - rowStart;
    if (row < y0) y0 = row; if (row > y1) y1 = row;
  }
  grow(st, x0, y0, x1, y1);
  paintRect(x0, y0, x1, y1);
  endStroke();
}
function endStroke(teach = true) {
  const st = S.stroke; S.stroke = null; S.drawing = false; S.last = null;
  if (!st || !st.idx.length) { updateStatus(); return; }
  const idx = Int32Array.from(st.idx), old = Uint8Array.from(st.old), neu = new Uint8Array(idx.length);
  const oldHand = Uint8Array.from(st.oldHand), neuHand = new Uint8Array(idx.length);
  for (let k = 0; k < idx.length; k++) { neu[k] = S.mask[idx[k]]; neuHand[k] = S.hand[idx[k]]; }
  const entry = { idx, old, neu, oldHand, neuHand, x0: st.x0, y0: st.y0, x1: st.x1, y1: st.y1 };
  S.undo.push(entry);
  if (S.undo.length > 100) S.undo.shift();
  S.redo = [];
  updateStatus();
  if (teach) requestFill(entry);
}
function applyEdit(e, values, hands, backwards) {  // undo walks an edit backwards: a pixel may appear twice in it
  const n = e.idx.length;
  for (let j = 0; j < n; j++) {
    const k = backwards ? n - 1 - j : j, i = e.idx[k], old = S.mask[i], v = values[k], p = S.pred[i];
    S.mask[i] = v; S.hand[i] = hands[k]; S.changed += (v !== p) - (old !== p);
  }
  paintRect(e.x0, e.y0, e.x1, e.y1);
}
function undo() { const e = S.undo.pop(); if (e) { applyEdit(e, e.old, e.oldHand, true); S.redo.push(e); } S.message = ''; updateStatus(); }
function redo() { const e = S.redo.pop(); if (e) { applyEdit(e, e.neu, e.neuHand, false); S.undo.push(e); } S.message = ''; updateStatus(); }
function resetAll() {
  if (!S.n || !(S.changed || S.hand.some((h) => h))) return;
  beginStroke();
  for (let i = 0; i < S.n; i++) if (S.mask[i] !== S.pred[i] || S.hand[i]) set(i, S.pred[i], 0);
  grow(S.stroke, 0, 0, S.w - 1, S.h - 1);
  paintAll();
  endStroke(false);
}

// -- fill-in from strokes: the server re-fits on the painted pixels and predicts the others ------------------
const COLD_HINT = 'paint a stroke of each class; the rest fills in';
function paintedMap() {  // each hand-painted pixel's class, 255 elsewhere (painted void teaches nothing)
  const painted = new Uint8Array(S.n).fill(255), classes = new Set();
  for (let i = 0; i < S.n; i++) if (S.hand[i] && S.mask[i] !== S.voidIndex) { painted[i] = S.mask[i]; classes.add(S.mask[i]); }
  return { painted, classes: classes.size };
}
async function requestFill(entry) {
  if (!S.fillOn || !S.fillable || !entry || typeof server === 'undefined' || !server.fill_in) return;
  const { painted, classes } = paintedMap();
  const need = S.cold && !S.fills ? 2 : 1;
  if (classes < need) {
    if (S.cold) { S.message = `${COLD_HINT} (${classes} of 2 classes painted)`; updateStatus(); }
    return;
  }
  const serial = ++S.fillSerial, token = S.token, strokes = S.undo.length;
  S.filling = true; host.dataset.filling = '1'; S.message = 'filling in…'; updateStatus();
  let answer = null;
  try { answer = await server.fill_in({ token, serial, painted: rleEncode(painted) }); } catch (err) { answer = { error: String(err) }; }
  if (token !== S.token || serial !== S.fillSerial) return;  // a newer stroke or another image: stale
  S.filling = false; host.dataset.filling = '';
  if (!answer || answer.error) { S.message = 'fill-in: ' + ((answer && answer.error) || 'no answer'); updateStatus(); return; }
  if (answer.stale) return;
  if (answer.waiting) { S.message = answer.waiting; updateStatus(); return; }
  if (S.stroke || S.undo[S.undo.length - 1] !== entry) return;  // painting again, or the stroke was undone
  const changed = applyFill(entry, rleDecode(answer.mask, S.n));
  S.fills++;
  S.lastFill = { serial, strokes, seconds: answer.seconds, changed };
  S.message = `filled in from ${strokes} stroke${strokes === 1 ? '' : 's'} in ${answer.seconds.toFixed(1)} s`;
  host.dataset.filled = String(serial);
  updateStatus();
}
function applyFill(entry, fill) {  // the unpainted pixels take the fill-in; the stroke's undo entry takes it along
  const idx = [], old = [], neu = [];
  for (let i = 0; i < S.n; i++) if (!S.hand[i] && S.mask[i] !== fill[i]) { idx.push(i); old.push(S.mask[i]); neu.push(fill[i]); }
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k], p = S.pred[i];
    S.changed += (neu[k] !== p) - (old[k] !== p); S.mask[i] = neu[k];
  }
  const join = (a, b) => { const out = new a.constructor(a.length + b.length); out.set(a); out.set(b, a.length); return out; };
  const zeros = new Uint8Array(idx.length);
  entry.idx = join(entry.idx, Int32Array.from(idx)); entry.old = join(entry.old, Uint8Array.from(old));
  entry.neu = join(entry.neu, Uint8Array.from(neu)); entry.oldHand = join(entry.oldHand, zeros);
  entry.neuHand = join(entry.neuHand, zeros);
  entry.x0 = 0; entry.y0 = 0; entry.x1 = S.w - 1; entry.y1 = S.h - 1;
  paintAll();
  return idx.length;
}
function setFill(on) {
  S.fillOn = !!on; $('.sdp-fill').checked = S.fillOn;
  S.message = S.fillOn ? '' : 'fill-in off: only what you paint changes';
  updateStatus();
  if (S.fillOn && S.undo.length) requestFill(S.undo[S.undo.length - 1]);
}

// -- smart tools: superpixel brush, GrabCut box (asks the server), doubtful pixels ---------------------------
function buildSegments() {  // pixel indices grouped by superpixel (counting sort)
  const n = S.n, seg = S.seg; let count = 0;
  for (let i = 0; i < n; i++) if (seg[i] + 1 > count) count = seg[i] + 1;
  const start = new Int32Array(count + 1);
  for (let i = 0; i < n; i++) start[seg[i] + 1]++;
  for (let k = 0; k < count; k++) start[k + 1] += start[k];
  const fillAt = start.slice(0, count), pix = new Int32Array(n);
  for (let i = 0; i < n; i++) pix[fillAt[seg[i]]++] = i;
  S.segStart = start; S.segPix = pix; S.segDone = new Uint8Array(count);
}
function paintSegmentAt(x, y) {
  const px = Math.floor(x), py = Math.floor(y);
  if (px < 0 || py < 0 || px >= S.w || py >= S.h) return;
  const k = S.seg[py * S.w + px];
  if (S.segDone[k]) return;
  S.segDone[k] = 1; S.stroke.segs.push(k);
  let x0 = S.w, y0 = S.h, x1 = -1, y1 = -1;
  for (let j = S.segStart[k], e = S.segStart[k + 1]; j < e; j++) {
    const i = S.segPix[j], cx = i % S.w, cy = (i - cx) / S.w;
    set(i, S.cls, 1);
    if (cx < x0) x0 = cx; if (cx > x1) x1 = cx; if (cy < y0) y0 = cy; if (cy > y1) y1 = cy;
  }
  grow(S.stroke, x0, y0, x1, y1);
  paintRect(x0, y0, x1, y1);
}
function segmentsUnder(cx, cy) {  // every superpixel under the brush disc (as the brush's stamp covers it)
  const r = S.size / 2, r2 = r * r;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(S.w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(S.h - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) { const dx = x + 0.5 - cx; if (dx * dx + dy * dy <= r2) paintSegmentAt(x, y); }
  }
  paintSegmentAt(cx, cy);
}
function superpixelTo(x, y) {  // every superpixel under the brush along the pointer's path
  const a = S.last || { x, y }, dist = Math.hypot(x - a.x, y - a.y);
  const n = Math.max(1, Math.ceil(dist / Math.max(0.5, S.size / 4)));
  for (let k = 1; k <= n; k++) segmentsUnder(a.x + (x - a.x) * k / n, a.y + (y - a.y) * k / n);
  S.last = { x, y };
}
function beginSuperpixelStroke(p) {
  if (!S.seg) { S.message = 'no superpixels for this image'; updateStatus(); return false; }
  if (!S.segStart) buildSegments();
  S.segDone.fill(0);
  beginStroke(); S.stroke.segs = []; S.last = null; superpixelTo(p.x, p.y);
  return true;
}
function showBox(a, b) {
  const x0 = Math.min(a.x, b.x), y0 = Math.min(a.y, b.y), x1 = Math.max(a.x, b.x), y1 = Math.max(a.y, b.y);
  boxDiv.style.display = 'block';
  boxDiv.style.left = (x0 / S.w * 100) + '%'; boxDiv.style.top = (y0 / S.h * 100) + '%';
  boxDiv.style.width = ((x1 - x0) / S.w * 100) + '%'; boxDiv.style.height = ((y1 - y0) / S.h * 100) + '%';
}
async function runGrabcut(a, b) {
  boxDiv.style.display = 'none';
  const clip = (v, hi) => Math.max(0, Math.min(hi, v));
  const box = [clip(Math.floor(Math.min(a.x, b.x)), S.w), clip(Math.floor(Math.min(a.y, b.y)), S.h),
               clip(Math.ceil(Math.max(a.x, b.x)), S.w), clip(Math.ceil(Math.max(a.y, b.y)), S.h)];
  if (typeof server === 'undefined' || !server.grabcut) { S.message = 'GrabCut is not available'; updateStatus(); return; }
  const token = S.token, cls = S.cls;
  S.busy = true; host.dataset.busy = '1'; S.message = 'GrabCut…'; updateStatus();
  let answer = null;
  try { answer = await server.grabcut({ token, box }); } catch (err) { answer = { error: String(err) }; }
  S.busy = false; host.dataset.busy = '';
  if (token !== S.token) return;  // another image was opened meanwhile
  if (!answer || answer.error) { S.message = 'GrabCut: ' + ((answer && answer.error) || 'no answer'); updateStatus(); return; }
  const region = rleDecode(answer.mask, S.n);
  beginStroke();
  let count = 0;
  for (let i = 0; i < S.n; i++) if (region[i]) { set(i, cls, 1); count++; }
  grow(S.stroke, box[0], box[1], box[2] - 1, box[3] - 1);
  paintRect(box[0], box[1], box[2] - 1, box[3] - 1);
  S.lastGrabcut = { box, cls, pixels: count, ms: answer.ms };
  S.message = `GrabCut gave ${count.toLocaleString()} px to ${className(cls)} (Undo rejects it)`;
  endStroke();
  host.dataset.grabcut = String(Date.now());
}
function paintDoubt() {
  doubtCanvas.width = S.w || 1; doubtCanvas.height = S.h || 1;
  doubtCanvas.style.display = S.showDoubt && S.doubt ? '' : 'none';
  if (!S.doubt || !S.showDoubt) return;
  const dctx = doubtCanvas.getContext('2d'), data = dctx.createImageData(S.w, S.h), px = new Uint32Array(data.data.buffer);
  const magenta = (255 << 24 | 255 << 16 | 0 << 8 | 255) >>> 0;
  for (let i = 0; i < S.n; i++) if (S.doubt[i]) px[i] = magenta;
  dctx.putImageData(data, 0, 0);
}
function toggleDoubt(on) { S.showDoubt = on === undefined ? !S.showDoubt : !!on; paintDoubt(); markActive(); }

// -- pointer and keyboard ---------------------------------------------------------------------------------
function toImage(ev) {
  const r = canvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left) / r.width * S.w, y: (ev.clientY - r.top) / r.height * S.h };
}
function moveCursor(ev) {
  const r = wrap.getBoundingClientRect();
  const d = Math.max(4, S.tool === 'fill' ? 10 : S.size * S.zoom);
  cursor.style.display = 'block';
  cursor.style.left = (ev.clientX - r.left) + 'px'; cursor.style.top = (ev.clientY - r.top) + 'px';
  cursor.style.width = d + 'px'; cursor.style.height = d + 'px';
}
function pickAt(p) {  // the eyedropper: the class under the pointer becomes the class to paint
  const x = Math.floor(p.x), y = Math.floor(p.y);
  if (x < 0 || y < 0 || x >= S.w || y >= S.h) return;
  const c = S.mask[y * S.w + x];
  if (S.tool === 'pick') S.tool = 'brush';
  pickClass(c);
  S.message = 'picked ' + className(c) + ' from the image';
  updateStatus();
}
function askForClass() {  // a painting tool pressed before any class was picked: paint nothing, say why
  S.message = 'pick a class first: nothing was painted';
  pickHint.classList.remove('sdp-flash'); void pickHint.offsetWidth; pickHint.classList.add('sdp-flash');
  updateStatus();
}
canvas.addEventListener('pointerdown', (ev) => {
  if (!S.n || ev.button !== 0) return;
  ev.preventDefault();
  host.querySelector('.sdp').focus({ preventScroll: true });
  const p = toImage(ev);
  if (ev.altKey || S.tool === 'pick') { pickAt(p); return; }
  if (NEEDS_CLASS[S.tool] && S.cls < 0) { askForClass(); return; }
  S.message = '';
  if (S.tool === 'fill') { fill(p.x, p.y); return; }
  canvas.setPointerCapture(ev.pointerId);
  if (S.tool === 'grabcut') { if (!S.busy) { S.box = { a: p, b: p }; showBox(p, p); } return; }
  if (S.tool === 'superpixel') { S.drawing = beginSuperpixelStroke(p); return; }
  S.drawing = true; beginStroke(); S.last = null; strokeTo(p.x, p.y);
});
canvas.addEventListener('pointermove', (ev) => {
  moveCursor(ev);
  if (S.box) { S.box.b = toImage(ev); showBox(S.box.a, S.box.b); return; }
  if (!S.drawing) return;
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  const to = S.tool === 'superpixel' ? superpixelTo : strokeTo;
  for (const e of (events.length ? events : [ev])) { const p = toImage(e); to(p.x, p.y); }
});
const finish = (ev) => {
  if (S.box) { const { a } = S.box, b = toImage(ev); S.box = null; runGrabcut(a, b); return; }
  if (!S.drawing) return;
  try { canvas.releasePointerCapture(ev.pointerId); } catch (err) {}
  if (S.tool === 'superpixel' && S.stroke) S.lastSegments = S.stroke.segs.slice();
  endStroke();
};
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
canvas.addEventListener('pointerleave', () => { cursor.style.display = 'none'; });

function pickClass(c) {
  c = Number(c);
  if (!(c === S.voidIndex || (c >= 0 && c < Math.max(S.names.length, 1)))) return;
  S.cls = c; S.message = '';
  pickHint.classList.remove('sdp-flash');
  if (S.tool === 'eraser' || S.tool === 'pick') S.tool = 'brush';
  markActive();
}
function setSize(v) {
  S.size = Math.max(1, Math.min(120, Math.round(v)));
  $('.sdp-size').value = S.size; $('.sdp-size-text').textContent = S.size + ' px';
  updateStatus();
}
classBar.addEventListener('click', (ev) => { const b = ev.target.closest('.sdp-cls'); if (b) pickClass(b.dataset.cls); });
host.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => { S.tool = b.dataset.tool; markActive(); }));
$('.sdp-fill').addEventListener('change', (ev) => setFill(ev.target.checked));
$('.sdp-size').addEventListener('input', (ev) => setSize(Number(ev.target.value)));
$('.sdp-opacity').addEventListener('input', (ev) => { canvas.style.opacity = Number(ev.target.value) / 100; });
canvas.style.opacity = 0.6;
host.querySelector('.sdp-tools').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-act]'); if (!b) return;
  const act = b.dataset.act;
  if (act === 'doubt') toggleDoubt(); else if (act === 'outlines') toggleOutlines();
  else if (act === 'undo') undo(); else if (act === 'redo') redo(); else if (act === 'reset') resetAll();
  else if (act === 'zoom-in') setZoom(S.zoom * 1.25); else if (act === 'zoom-out') setZoom(S.zoom / 1.25);
  else if (act === 'zoom-fit') fitZoom(); else if (act === 'zoom-1') setZoom(1);
});
stage.addEventListener('wheel', (ev) => {
  if (!S.n || !(ev.ctrlKey || ev.metaKey)) return;
  ev.preventDefault(); setZoom(S.zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15));
}, { passive: false });
window.addEventListener('resize', () => { if (S.fit) fitZoom(); });
if (window.ResizeObserver) new ResizeObserver(() => { if (S.fit && S.n) fitZoom(); }).observe(stage);

document.addEventListener('keydown', (ev) => {
  if (host.offsetParent === null) return;  // the editor's tab is hidden
  const t = ev.target, tag = (t && t.tagName) || '';
  if (t && (t.isContentEditable || tag === 'TEXTAREA' || tag === 'SELECT' || (tag === 'INPUT' && t.type !== 'range'))) return;
  const mod = ev.ctrlKey || ev.metaKey;
  if (!mod && !ev.altKey && (ev.key === 'n' || ev.key === 'N')) {  // Next image, also before the first one
    const next = document.querySelector('#next-btn'); if (next) { ev.preventDefault(); next.click(); } return;
  }
  if (!S.n) return;
  if (mod && (ev.key === 'z' || ev.key === 'Z')) { ev.preventDefault(); ev.shiftKey ? redo() : undo(); return; }
  if (mod && (ev.key === 'y' || ev.key === 'Y')) { ev.preventDefault(); redo(); return; }
  if (mod || ev.altKey) return;
  const digit = /^(?:Digit|Numpad)([0-9])$/.exec(ev.code || '');
  if (digit) {  // 1-9, 0: classes 1-10; with Shift: 11-20
    const d = Number(digit[1]); pickClass((d === 0 ? 9 : d - 1) + (ev.shiftKey ? 10 : 0)); ev.preventDefault(); return;
  }
  const k = ev.key.toLowerCase();
  if (k === 'b') { S.tool = 'brush'; markActive(); }
  else if (k === 'f') { S.tool = 'fill'; markActive(); }
  else if (k === 'e') { S.tool = 'eraser'; markActive(); }
  else if (k === 's') { S.tool = 'superpixel'; markActive(); }
  else if (k === 'g') { S.tool = 'grabcut'; markActive(); }
  else if (k === 'i') { S.tool = 'pick'; markActive(); }
  else if (k === 'o') toggleOutlines();
  else if (k === 'd') toggleDoubt();
  else if (k === '[') setSize(S.size - (S.size > 10 ? 4 : 1));
  else if (k === ']') setSize(S.size + (S.size >= 10 ? 4 : 1));
  else if (k === '+' || k === '=') setZoom(S.zoom * 1.25);
  else if (k === '-') setZoom(S.zoom / 1.25);
});

// -- the public face: legend clicks, the Save button's hook, tests ------------------------------------------
window.segdemoPainter = {
  pickClass, setTool: (t) => { S.tool = t; markActive(); }, setSize, undo, redo, toggleDoubt, toggleOutlines,
  setFill,
  value: () => (S.n ? JSON.stringify({ token: S.token, w: S.w, h: S.h, changed: S.changed, mask: rleEncode(S.mask),
                                      hand: rleEncode(S.hand) }) : ''),
  state: () => ({ w: S.w, h: S.h, cls: S.cls, tool: S.tool, outlines: S.outlines, title: S.title,
                  message: S.message, size: S.size, zoom: S.zoom, changed: S.changed,
                  undo: S.undo.length, redo: S.redo.length, token: S.token, busy: S.busy, doubt: S.showDoubt,
                  superpixels: !!S.seg, lastSegments: S.lastSegments.slice(), lastGrabcut: S.lastGrabcut,
                  fillOn: S.fillOn, fillable: S.fillable, cold: S.cold, fills: S.fills, filling: S.filling,
                  lastFill: S.lastFill,
                  painted: S.hand ? S.hand.reduce((a, h) => a + h, 0) : 0 }),
};
load(props.value);
watch('value', () => load(props.value));
