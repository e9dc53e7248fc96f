"""Pure helpers for the browser app (``app.py``): legend and tables, overlays, the mask painter, example images.

Nothing here imports gradio or touches the disk; every function takes arrays / label sets and returns
strings, arrays or plain data, so the app's handlers stay short and these stay testable.

The painter travels as two strings: Python → browser a JSON *load payload* (image as a data URL, the
prediction and the mask to edit as run-length encodings, the label set), browser → Python a JSON *mask
value* (the edited class-index mask, run-length encoded). Run-length encoding keeps both exact (class
indices, never colours) and small, and it is synchronous to decode on either side.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from segdemo.fileio import MAX_IMAGE_PIXELS
from segdemo.labels import LabelSet, colorize, overlay

# -- run-length encoding of class masks ------------------------------------------------------------------------


def rle_encode(mask: np.ndarray) -> tuple[str, str]:
    """uint8 (H, W) → (base64 run values uint8, base64 run lengths uint32 little-endian), row-major."""
    flat = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    if flat.size == 0:
        return "", ""
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    lengths = np.diff(np.r_[starts, flat.size]).astype("<u4")
    return (base64.b64encode(flat[starts].tobytes()).decode("ascii"),
            base64.b64encode(lengths.tobytes()).decode("ascii"))


def rle_decode(values_b64: str, lengths_b64: str, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rle_encode`; ValueError when the runs do not fill ``shape`` exactly."""
    try:
        values = np.frombuffer(base64.b64decode(values_b64, validate=True), dtype=np.uint8)
        raw = base64.b64decode(lengths_b64, validate=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"the edited mask is not valid base64: {err}") from None
    if len(raw) % 4:
        raise ValueError("the edited mask's run lengths are damaged")
    lengths = np.frombuffer(raw, dtype="<u4").astype(np.int64)
    if len(values) != len(lengths):
        raise ValueError(f"the edited mask has {len(values)} run values but {len(lengths)} run lengths")
    height, width = shape
    if int(lengths.sum()) != height * width:
        raise ValueError(f"the edited mask covers {int(lengths.sum())} pixels but the image has {height * width}")
    return np.repeat(values, lengths).reshape(height, width)


# -- what travels between Python and the painter -------------------------------------------------------------


def image_data_url(image: np.ndarray) -> str:
    """RGB uint8 → JPEG (quality 92) data URL: the painter only displays it; the saved image is the original."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=92)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def painter_payload(image: np.ndarray, prediction: np.ndarray, corrected: np.ndarray, labels: LabelSet, *,
                    token: str, title: str = "") -> str:
    """The JSON the painter loads: the image, the model's mask (eraser target) and the mask to edit."""
    height, width = prediction.shape
    return json.dumps({
        "token": token, "w": int(width), "h": int(height), "title": title,
        "image": image_data_url(image), "pred": list(rle_encode(prediction)), "mask": list(rle_encode(corrected)),
        "names": list(labels.names), "colors": labels.hex_colors(), "void": int(labels.ignore_index),
    }, separators=(",", ":"))


@dataclass
class PainterValue:
    """The painter's answer: which loaded image it edited (``token``) and the edited mask."""

    token: str
    mask: np.ndarray


def decode_painter_value(value: str | None) -> PainterValue:
    """Parse the painter's JSON answer; ValueError with a user-facing message when it is missing or damaged."""
    if not value:
        raise ValueError("the editor has no mask: segment an image first")
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        raise ValueError("the editor sent something that is not a mask; reload the page and try again") from None
    if not isinstance(data, dict) or "mask" not in data or "image" in data:
        # A load payload (it carries "image") means the browser never ran the editor's save hook.
        raise ValueError("the editor did not send its mask; reload the page and try again")
    try:
        width, height = int(data["w"]), int(data["h"])
        values, lengths = data["mask"]
    except (KeyError, TypeError, ValueError):
        raise ValueError("the editor's mask is incomplete; reload the page and try again") from None
    if width < 1 or height < 1:
        raise ValueError("the editor's mask is empty")
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"the edited mask is {width}x{height}: larger than any image segdemo accepts")
    return PainterValue(token=str(data.get("token", "")), mask=rle_decode(values, lengths, (height, width)))


def painter_value(mask: np.ndarray, token: str) -> str:
    """The JSON the painter sends back for ``mask`` (used by tests and API callers; the browser builds it in JS)."""
    values, lengths = rle_encode(mask)
    return json.dumps({"token": token, "w": int(mask.shape[1]), "h": int(mask.shape[0]), "mask": [values, lengths]})


# -- views -------------------------------------------------------------------------------------------------------

_HEAT_STOPS = np.array([  # a viridis-like ramp: low confidence dark purple, high confidence yellow
    (68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float32)


def heat_colors(confidence: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] → RGB uint8 (H, W, 3) on a viridis-like ramp."""
    position = np.clip(np.nan_to_num(confidence), 0.0, 1.0) * (len(_HEAT_STOPS) - 1)
    low = np.floor(position).astype(np.int64).clip(0, len(_HEAT_STOPS) - 2)
    frac = (position - low)[..., None]
    rgb = _HEAT_STOPS[low] * (1 - frac) + _HEAT_STOPS[low + 1] * frac
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def confidence_view(image: np.ndarray, confidence: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """The per-pixel confidence as a heat map blended over the image (alpha = heat map weight)."""
    alpha = float(np.clip(alpha, 0.0, 1.0))
    blend = image.astype(np.float32) * (1 - alpha) + heat_colors(confidence).astype(np.float32) * alpha
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def render_view(image: np.ndarray, mask: np.ndarray, confidence: np.ndarray | None, labels: LabelSet, *,
                view: str = "overlay", alpha: float = 0.5) -> np.ndarray:
    """``view`` "overlay" (class colours over the image), "confidence" (heat map) or "mask" (colours only)."""
    if view == "confidence" and confidence is not None:
        return confidence_view(image, confidence, max(alpha, 0.35))
    if view == "mask":
        return colorize(mask, labels)
    return overlay(image, mask, labels, alpha)


def class_shares(mask: np.ndarray, labels: LabelSet) -> list[float]:
    """Fraction of the image's pixels in each class (void pixels counted in the total)."""
    counts = np.bincount(np.asarray(mask, dtype=np.uint8).ravel(), minlength=256)
    total = max(1, int(counts.sum()))
    return [float(counts[i]) / total for i in range(labels.num_classes)]


def _text_color(hex_color: str) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def legend_html(labels: LabelSet, mask: np.ndarray | None = None, *, caption: str = "") -> str:
    """The class legend: key, colour swatch, name and share of pixels; rows are clickable (pick the class)."""
    shares = class_shares(mask, labels) if mask is not None else [None] * labels.num_classes
    void_share = None
    if mask is not None:
        void_share = float((np.asarray(mask) == labels.ignore_index).mean())
    rows = []
    for index, (name, color, share) in enumerate(zip(labels.names, labels.hex_colors(), shares)):
        key = str(index + 1) if index < 9 else ("0" if index == 9 else "")
        width = 0.0 if share is None else min(100.0, share * 100)
        share_text = "" if share is None else (f"{share * 100:.1f}%" if share >= 0.001 or share == 0 else "<0.1%")
        dim = " sd-dim" if share == 0 else ""
        rows.append(
            f'<button type="button" class="sd-legend-row{dim}" data-class="{index}" '
            f'title="Paint with {html.escape(name)}{f" (key {key})" if key else ""}">'
            f'<kbd>{key}</kbd><span class="sd-swatch" style="background:{color}"></span>'
            f'<span class="sd-name">{html.escape(name)}</span>'
            f'<span class="sd-bar"><span style="width:{width:.1f}%;background:{color}"></span></span>'
            f'<span class="sd-share">{share_text}</span></button>')
    if void_share:
        rows.append(f'<button type="button" class="sd-legend-row" data-class="{labels.ignore_index}" '
                    'title="Void: ignored in training and metrics">'
                    '<kbd></kbd><span class="sd-swatch sd-void"></span><span class="sd-name">void</span>'
                    f'<span class="sd-bar"><span style="width:{void_share * 100:.1f}%;background:#000"></span></span>'
                    f'<span class="sd-share">{void_share * 100:.1f}%</span></button>')
    head = f'<div class="sd-legend-caption">{html.escape(caption)}</div>' if caption else ""
    return f'<div class="sd-legend">{head}{"".join(rows)}</div>'


def labels_table_html(labels: LabelSet) -> str:
    """The label set as a table: index, editor key, colour swatch with its hex code, name; void last."""
    rows = []
    for index, (name, color) in enumerate(zip(labels.names, labels.hex_colors())):
        key = str(index + 1) if index < 9 else ("0" if index == 9 else "")
        rows.append(f'<tr><td>{index}</td><td><kbd>{key}</kbd></td><td><span class="sd-swatch" '
                    f'style="background:{color}"></span> <code>{color}</code></td><td>{html.escape(name)}</td></tr>')
    rows.append(f'<tr><td>{labels.ignore_index}</td><td></td><td><span class="sd-swatch sd-void"></span> '
                '<code>void</code></td><td>void (ignored in training and metrics)</td></tr>')
    return ('<table class="sd-labels"><thead><tr><th>index</th><th>key</th><th>colour</th><th>class</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def thumbnail(image: np.ndarray, mask: np.ndarray, labels: LabelSet, *, side: int = 320,
              alpha: float = 0.5) -> np.ndarray:
    """A small overlay of ``mask`` on ``image`` (longer side ``side``) for the dataset gallery."""
    view = overlay(image, mask, labels, alpha)
    height, width = view.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        view = np.asarray(Image.fromarray(view).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                       Image.BILINEAR))
    return view


# -- fine-tune tables ------------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def result_rows(before: dict, after: dict | None) -> list[list[str]]:
    """Rows [what, before, after, change] for held-out mIoU, pixel accuracy and each class's IoU."""
    after = after or {}
    rows = []
    for key, label in (("miou", "mIoU (held-out)"), ("pixel_acc", "pixel accuracy")):
        b, a = before.get(key), after.get(key)
        rows.append([label, _fmt(b), _fmt(a), "–" if a is None or b is None else f"{a - b:+.3f}"])
    before_iou, after_iou = before.get("per_class_iou", {}), after.get("per_class_iou", {})
    for name in before_iou:
        b, a = before_iou.get(name), after_iou.get(name)
        if a is None and b is None:
            continue  # the class is in neither the held-out masks nor the predictions
        rows.append([f"IoU {name}", _fmt(b), _fmt(a), "–" if a is None or b is None else f"{a - b:+.3f}"])
    return rows


# -- custom label sets ---------------------------------------------------------------------------------------

AUTO_COLORS = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40),
    (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)
"""Distinct colours given to classes typed without one (Sasha Trubetskoy's 20-colour list)."""


def _parse_color(text: str) -> tuple[int, int, int]:
    text = text.strip()
    if text.startswith("#") and len(text) == 7:
        try:
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    parts = [p for p in text.replace(",", " ").split() if p]
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    raise ValueError(f"{text!r} is not a colour: use #rrggbb or three numbers 0-255")


def parse_classes(text: str, name: str = "custom") -> LabelSet:
    """One class per line, ``name`` optionally followed by a colour (``#rrggbb`` or ``r, g, b``); or JSON
    (``{"classes": [{"name", "color"}]}`` or a list of those). Classes without a colour get distinct ones."""
    text = (text or "").strip()
    if not text:
        raise ValueError("type at least one class, one per line")
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON: {err}") from None
        data = {"name": name, "classes": data} if isinstance(data, list) else {"name": name, **data}
        return LabelSet.from_dict(data)
    names, colors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        color = None
        if "#" in line:
            line, _, hex_part = line.rpartition("#")
            color = _parse_color("#" + hex_part)
        elif "," in line:
            head, _, tail = line.partition(",")
            try:
                color = _parse_color(tail)
            except ValueError as err:
                raise ValueError(f"line {number}: {err}") from None
            line = head
        class_name = line.strip().strip(":").strip()
        if not class_name:
            raise ValueError(f"line {number}: the class needs a name")
        names.append(class_name)
        colors.append(color)
    taken = {c for c in colors if c is not None}
    spare = iter([c for c in AUTO_COLORS if c not in taken])
    try:
        colors = [c if c is not None else next(spare) for c in colors]
    except StopIteration:
        raise ValueError(f"give colours explicitly: only {len(AUTO_COLORS)} automatic ones exist") from None
    return LabelSet(name=name, names=tuple(names), colors=tuple(colors))


# -- example images ------------------------------------------------------------------------------------------


def street_scene(seed: int = 0, size: tuple[int, int] = (360, 480)) -> np.ndarray:
    """A synthetic street-like RGB uint8 picture (sky, buildings, trees, pavement, road, cars, poles)."""
    rng = np.random.default_rng(seed)
    height, width = size
    horizon = int(height * rng.uniform(0.42, 0.52))
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    top, bottom = np.array((110, 150, 200)) + rng.integers(-20, 20, 3), np.array((200, 215, 230))
    for y in range(horizon):
        t = y / max(1, horizon)
        draw.line([(0, y), (width, y)], fill=tuple(int(v) for v in top * (1 - t) + bottom * t))
    x = int(-rng.uniform(0, 40))
    while x < width:  # buildings with windows
        bw, bh = int(rng.uniform(60, 140)), int(rng.uniform(0.25, 0.42) * height)
        color = tuple(int(v) for v in rng.integers(90, 190, 3))
        draw.rectangle([x, horizon - bh, x + bw, horizon + 8], fill=color)
        window = tuple(max(0, c - 60) for c in color)
        for wy in range(horizon - bh + 10, horizon - 12, 22):
            for wx in range(x + 8, x + bw - 14, 20):
                draw.rectangle([wx, wy, wx + 9, wy + 12], fill=window)
        x += bw + int(rng.uniform(0, 12))
    draw.rectangle([0, horizon + 6, width, horizon + 30], fill=(150, 140, 135))  # pavement
    draw.polygon([(0, height), (width, height), (width, horizon + 30), (0, horizon + 30)], fill=(95, 90, 100))
    for lane in range(0, width, 70):  # lane markings
        draw.polygon([(lane + 20, height - 40), (lane + 55, height - 40), (lane + 50, height - 34),
                       (lane + 24, height - 34)], fill=(225, 225, 215))
    for _ in range(int(rng.integers(2, 4))):  # trees
        tx, r = int(rng.uniform(20, width - 20)), int(rng.uniform(22, 40))
        draw.rectangle([tx - 4, horizon - 10, tx + 4, horizon + 20], fill=(80, 60, 40))
        leaves = (60, 110 + int(rng.integers(0, 40)), 50)
        draw.ellipse([tx - r, horizon - 10 - 2 * r, tx + r, horizon - 10], fill=leaves)
    for _ in range(int(rng.integers(1, 3))):  # poles
        px = int(rng.uniform(10, width - 10))
        draw.rectangle([px, horizon - int(0.3 * height), px + 3, horizon + 28], fill=(70, 70, 75))
    for _ in range(int(rng.integers(1, 3))):  # cars
        cx, cw = int(rng.uniform(0, width - 120)), int(rng.uniform(90, 130))
        cy = int(rng.uniform(horizon + 40, height - 70))
        body = tuple(int(v) for v in rng.integers(20, 220, 3))
        draw.rounded_rectangle([cx, cy, cx + cw, cy + 34], radius=8, fill=body)
        draw.rounded_rectangle([cx + 18, cy - 20, cx + cw - 22, cy + 4], radius=6, fill=tuple(c // 2 for c in body))
        for wx in (cx + 20, cx + cw - 20):
            draw.ellipse([wx - 10, cy + 24, wx + 10, cy + 44], fill=(20, 20, 20))
    noise = rng.normal(0, 4, (height, width, 3))
    picture = np.asarray(image.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32) + noise
    return np.clip(picture, 0, 255).astype(np.uint8)


# -- styles and the painter's HTML / JavaScript ------------------------------------------------------------------

APP_CSS = """
.sd-header h1 { margin: 0 0 2px 0; font-size: 1.45rem; }
.sd-header p { margin: 0; color: var(--body-text-color-subdued); }
.sd-status { min-height: 1.6em; }
.sd-legend { display: flex; flex-direction: column; gap: 2px; font-size: 13px; }
.sd-legend-caption { font-size: 12px; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.sd-legend-row { display: grid; grid-template-columns: 12px 16px minmax(0, 1fr) 40px 44px;
  align-items: center; gap: 6px; padding: 3px 6px; border: 1px solid transparent; border-radius: 6px; background: none; cursor: pointer;
  text-align: left; color: var(--body-text-color); font: inherit; }
.sd-legend-row:hover { border-color: var(--border-color-primary); background: var(--background-fill-secondary); }
.sd-legend-row.sd-picked { border-color: var(--color-accent); background: var(--background-fill-secondary); }
.sd-legend-row.sd-dim { opacity: 0.55; }
.sd-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.sd-legend-row kbd { font-size: 10px; color: var(--body-text-color-subdued); font-family: var(--font-mono); }
.sd-swatch { width: 16px; height: 16px; border-radius: 3px; border: 1px solid rgba(0,0,0,.25); display: inline-block; }
.sd-swatch.sd-void { background: repeating-linear-gradient(45deg, #000 0 3px, #666 3px 6px); }
.sd-bar { height: 8px; background: var(--background-fill-secondary); border-radius: 4px; overflow: hidden; }
.sd-bar > span { display: block; height: 100%; }
.sd-share { text-align: right; font-variant-numeric: tabular-nums; }
.sd-labels { border-collapse: collapse; font-size: 13px; min-width: 420px; }
.sd-labels th, .sd-labels td { text-align: left; padding: 4px 14px 4px 0; border-bottom: 1px solid var(--border-color-primary); }
.sd-labels .sd-swatch { vertical-align: middle; }
#dataset-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)) !important;
  grid-auto-rows: 210px !important; }
#dataset-gallery .thumbnail-item { height: 100% !important; }
#dataset-gallery .thumbnail-item img { object-fit: contain !important; }
.sd-progress { height: 10px; border-radius: 5px; background: var(--background-fill-secondary); overflow: hidden; }
.sd-progress > div { height: 100%; background: var(--color-accent); transition: width .5s; }
.sd-note { font-size: 12px; color: var(--body-text-color-subdued); }
#editor .sdp { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px;
  background: var(--background-fill-primary); outline: none; }
#editor .sdp-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin-bottom: 6px; }
#editor .sdp-cls { display: inline-flex; align-items: center; gap: 5px; padding: 3px 8px 3px 4px; font-size: 12px;
  border: 1px solid var(--border-color-primary); border-radius: 14px; background: var(--background-fill-secondary);
  cursor: pointer; color: var(--body-text-color); }
#editor .sdp-cls .sw { width: 14px; height: 14px; border-radius: 50%; border: 1px solid rgba(0,0,0,.3); }
#editor .sdp-cls kbd { font-size: 10px; opacity: .6; font-family: var(--font-mono); }
#editor .sdp-cls.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft);
  font-weight: 600; background: var(--background-fill-primary); }
#editor .sdp-cls .sw.void { background: repeating-linear-gradient(45deg, #000 0 3px, #777 3px 6px) !important; }
#editor .sdp-group { display: inline-flex; border: 1px solid var(--border-color-primary); border-radius: 6px;
  overflow: hidden; }
#editor .sdp-group button, #editor .sdp-btn { padding: 4px 10px; font-size: 12px; background: var(--background-fill-secondary);
  border: none; border-right: 1px solid var(--border-color-primary); cursor: pointer; color: var(--body-text-color); }
#editor .sdp-group button:last-child { border-right: none; }
#editor .sdp-group button.active { background: var(--color-accent); color: white; }
#editor .sdp-group button:disabled { opacity: .45; cursor: default; }
#editor .sdp-tools label { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; }
#editor .sdp-tools input[type=range] { width: 110px; }
#editor .sdp-hint { font-size: 11.5px; color: var(--body-text-color-subdued); flex-basis: 100%; }
#editor .sdp-stage { position: relative; overflow: auto; max-height: 72vh; min-height: 120px;
  background: repeating-conic-gradient(#e8e8e8 0 25%, #f6f6f6 0 50%) 0 0 / 16px 16px; border-radius: 6px; }
#editor .sdp-wrap { position: relative; margin: 0 auto; touch-action: none; }
#editor .sdp-wrap img, #editor .sdp-wrap canvas { position: absolute; inset: 0; width: 100%; height: 100%;
  user-select: none; -webkit-user-drag: none; }
#editor .sdp-wrap canvas { image-rendering: pixelated; cursor: none; }
#editor .sdp-wrap.pixelated img { image-rendering: pixelated; }
#editor .sdp-cursor { position: absolute; pointer-events: none; border: 1.5px solid #fff; border-radius: 50%;
  box-shadow: 0 0 0 1px #000; display: none; transform: translate(-50%, -50%); }
#editor .sdp-cursor.fill { border-radius: 2px; }
#editor .sdp-empty { padding: 40px 16px; text-align: center; color: var(--body-text-color-subdued); }
#editor .sdp-status { font-size: 12px; color: var(--body-text-color-subdued); margin-top: 6px;
  font-variant-numeric: tabular-nums; }
"""

PAINTER_TEMPLATE = '<div class="sdp-host"></div>'

PAINTER_JS = r"""
const host = element.querySelector('.sdp-host') || element;
host.innerHTML = `
<div class="sdp" tabindex="0">
  <div class="sdp-bar sdp-classes" role="radiogroup" aria-label="Class to paint"></div>
  <div class="sdp-bar sdp-tools">
    <div class="sdp-group" role="group" aria-label="Tool">
      <button type="button" data-tool="brush" class="active" title="Brush (B): paint the chosen class">Brush</button>
      <button type="button" data-tool="fill" title="Fill (F): give the whole connected region under the click the chosen class">Fill</button>
      <button type="button" data-tool="eraser" title="Eraser (E): back to the model's prediction">Eraser</button>
    </div>
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
    <div class="sdp-hint">Keys 1&ndash;9, 0 pick a class &middot; B brush, F fill, E eraser (= back to the model's prediction) &middot; [ ] brush size &middot; Ctrl+Z / Ctrl+Y undo / redo. Void = ignored in training.</div>
  </div>
  <div class="sdp-stage">
    <div class="sdp-empty">Segment an image (or open a saved sample) to correct its mask here.</div>
    <div class="sdp-wrap" style="display:none"><img class="sdp-img" alt="image being labelled" draggable="false"><canvas class="sdp-canvas"></canvas><div class="sdp-cursor"></div></div>
  </div>
  <div class="sdp-status"></div>
</div>`;

const $ = (sel) => host.querySelector(sel);
const stage = $('.sdp-stage'), wrap = $('.sdp-wrap'), img = $('.sdp-img'), canvas = $('.sdp-canvas');
const cursor = $('.sdp-cursor'), statusLine = $('.sdp-status'), classBar = $('.sdp-classes'), empty = $('.sdp-empty');
const ctx = canvas.getContext('2d', { willReadFrequently: false });
const S = { w: 0, h: 0, n: 0, mask: null, pred: null, names: [], colors: [], voidIndex: 255, lut: new Uint32Array(256),
  cls: 0, tool: 'brush', size: 16, zoom: 1, fit: true, undo: [], redo: [], changed: 0, token: '', title: '',
  imageData: null, pix: null, stamp: null, serial: 0, stroke: null, last: null, drawing: false };

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
function className(c) { return c === S.voidIndex ? 'void' : (S.names[c] || ('class ' + c)); }

function buildClassBar() {
  const items = S.names.map((raw, i) => {
    const name = esc(raw), key = i < 9 ? String(i + 1) : (i === 9 ? '0' : '');
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
  cursor.classList.toggle('fill', S.tool === 'fill');
  updateStatus();
}
function updateStatus() {
  if (!S.n) { statusLine.textContent = ''; return; }
  const tool = S.tool === 'eraser' ? 'eraser (back to prediction)' : S.tool;
  const pct = (100 * S.changed / S.n).toFixed(S.changed && S.changed < S.n / 1000 ? 3 : 1);
  statusLine.textContent = `${S.title ? S.title + ' · ' : ''}${S.w}×${S.h} · ${tool} · class ${className(S.cls)} · ` +
    `size ${S.size} px · ${S.changed.toLocaleString()} px corrected (${pct}%) · zoom ${Math.round(S.zoom * 100)}%`;
  host.querySelector('[data-act=undo]').disabled = !S.undo.length;
  host.querySelector('[data-act=redo]').disabled = !S.redo.length;
}
function paintAll() {
  const px = S.pix;
  for (let i = 0; i < S.n; i++) px[i] = S.lut[S.mask[i]];
  ctx.putImageData(S.imageData, 0, 0);
}
function paintRect(x0, y0, x1, y1) {  // inclusive bounds, already clipped
  if (x1 < x0 || y1 < y0) return;
  const px = S.pix, w = S.w;
  for (let y = y0; y <= y1; y++) for (let i = y * w + x0, e = y * w + x1; i <= e; i++) px[i] = S.lut[S.mask[i]];
  ctx.putImageData(S.imageData, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}
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
    S.w = S.h = S.n = 0; S.mask = S.pred = null; S.token = '';
    wrap.style.display = 'none'; empty.style.display = ''; statusLine.textContent = '';
    return;
  }
  S.w = data.w; S.h = data.h; S.n = data.w * data.h; S.token = data.token || ''; S.title = data.title || '';
  S.names = data.names || []; S.colors = data.colors || []; S.voidIndex = data.void === undefined ? 255 : data.void;
  S.pred = rleDecode(data.pred, S.n);
  S.mask = rleDecode(data.mask, S.n);
  S.stamp = new Uint32Array(S.n); S.serial = 0;
  S.undo = []; S.redo = []; S.stroke = null; S.drawing = false;
  S.changed = 0;
  for (let i = 0; i < S.n; i++) if (S.mask[i] !== S.pred[i]) S.changed++;
  if (S.cls !== S.voidIndex && S.cls >= S.names.length) S.cls = 0;
  buildLut(); buildClassBar();
  canvas.width = S.w; canvas.height = S.h;
  S.imageData = ctx.createImageData(S.w, S.h);
  S.pix = new Uint32Array(S.imageData.data.buffer);
  paintAll();
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
  S.stroke = { idx: [], old: [], x0: S.w, y0: S.h, x1: -1, y1: -1 };
}
function set(i, v) {
  const old = S.mask[i];
  if (old === v) return;
  const st = S.stroke;
  if (S.stamp[i] !== S.serial) { S.stamp[i] = S.serial; st.idx.push(i); st.old.push(old); }
  S.mask[i] = v;
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
      if (dx * dx + dy * dy <= r2) { const i = y * w + x; set(i, eraser ? S.pred[i] : v); }
    }
  }
  const px = Math.floor(cx), py = Math.floor(cy);  // the pixel under the pointer, always
  if (px >= 0 && py >= 0 && px < w && py < h) { const i = py * w + px; set(i, eraser ? S.pred[i] : v); }
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
      set(k, v);
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
function endStroke() {
  const st = S.stroke; S.stroke = null; S.drawing = false; S.last = null;
  if (!st || !st.idx.length) { updateStatus(); return; }
  const idx = Int32Array.from(st.idx), old = Uint8Array.from(st.old), neu = new Uint8Array(idx.length);
  for (let k = 0; k < idx.length; k++) neu[k] = S.mask[idx[k]];
  S.undo.push({ idx, old, neu, x0: st.x0, y0: st.y0, x1: st.x1, y1: st.y1 });
  if (S.undo.length > 100) S.undo.shift();
  S.redo = [];
  updateStatus();
}
function applyEdit(e, values) {
  for (let k = 0; k < e.idx.length; k++) {
    const i = e.idx[k], old = S.mask[i], v = values[k], p = S.pred[i];
    S.mask[i] = v; S.changed += (v !== p) - (old !== p);
  }
  paintRect(e.x0, e.y0, e.x1, e.y1);
}
function undo() { const e = S.undo.pop(); if (e) { applyEdit(e, e.old); S.redo.push(e); } updateStatus(); }
function redo() { const e = S.redo.pop(); if (e) { applyEdit(e, e.neu); S.undo.push(e); } updateStatus(); }
function resetAll() {
  if (!S.n || !S.changed) return;
  beginStroke();
  for (let i = 0; i < S.n; i++) if (S.mask[i] !== S.pred[i]) set(i, S.pred[i]);
  grow(S.stroke, 0, 0, S.w - 1, S.h - 1);
  paintAll();
  endStroke();
}

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
canvas.addEventListener('pointerdown', (ev) => {
  if (!S.n || ev.button !== 0) return;
  ev.preventDefault();
  host.querySelector('.sdp').focus({ preventScroll: true });
  const p = toImage(ev);
  if (S.tool === 'fill') { fill(p.x, p.y); return; }
  canvas.setPointerCapture(ev.pointerId);
  S.drawing = true; beginStroke(); S.last = null; strokeTo(p.x, p.y);
});
canvas.addEventListener('pointermove', (ev) => {
  moveCursor(ev);
  if (!S.drawing) return;
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of (events.length ? events : [ev])) { const p = toImage(e); strokeTo(p.x, p.y); }
});
const finish = (ev) => { if (S.drawing) { try { canvas.releasePointerCapture(ev.pointerId); } catch (err) {} endStroke(); } };
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
canvas.addEventListener('pointerleave', () => { cursor.style.display = 'none'; });

function pickClass(c) {
  c = Number(c);
  if (!(c === S.voidIndex || (c >= 0 && c < Math.max(S.names.length, 1)))) return;
  S.cls = c;
  if (S.tool === 'eraser') S.tool = 'brush';
  markActive();
}
function setSize(v) {
  S.size = Math.max(1, Math.min(120, Math.round(v)));
  $('.sdp-size').value = S.size; $('.sdp-size-text').textContent = S.size + ' px';
  updateStatus();
}
classBar.addEventListener('click', (ev) => { const b = ev.target.closest('.sdp-cls'); if (b) pickClass(b.dataset.cls); });
host.querySelectorAll('[data-tool]').forEach((b) => b.addEventListener('click', () => { S.tool = b.dataset.tool; markActive(); }));
$('.sdp-size').addEventListener('input', (ev) => setSize(Number(ev.target.value)));
$('.sdp-opacity').addEventListener('input', (ev) => { canvas.style.opacity = Number(ev.target.value) / 100; });
canvas.style.opacity = 0.6;
host.querySelector('.sdp-tools').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-act]'); if (!b) return;
  const act = b.dataset.act;
  if (act === 'undo') undo(); else if (act === 'redo') redo(); else if (act === 'reset') resetAll();
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
  if (!S.n || host.offsetParent === null) return;  // nothing loaded, or the editor's tab is hidden
  const t = ev.target, tag = (t && t.tagName) || '';
  if (t && (t.isContentEditable || tag === 'TEXTAREA' || tag === 'SELECT' || (tag === 'INPUT' && t.type !== 'range'))) return;
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && (ev.key === 'z' || ev.key === 'Z')) { ev.preventDefault(); ev.shiftKey ? redo() : undo(); return; }
  if (mod && (ev.key === 'y' || ev.key === 'Y')) { ev.preventDefault(); redo(); return; }
  if (mod || ev.altKey) return;
  if (/^[0-9]$/.test(ev.key)) { const k = Number(ev.key); pickClass(k === 0 ? 9 : k - 1); ev.preventDefault(); return; }
  const k = ev.key.toLowerCase();
  if (k === 'b') { S.tool = 'brush'; markActive(); }
  else if (k === 'f') { S.tool = 'fill'; markActive(); }
  else if (k === 'e') { S.tool = 'eraser'; markActive(); }
  else if (k === '[') setSize(S.size - (S.size > 10 ? 4 : 1));
  else if (k === ']') setSize(S.size + (S.size >= 10 ? 4 : 1));
  else if (k === '+' || k === '=') setZoom(S.zoom * 1.25);
  else if (k === '-') setZoom(S.zoom / 1.25);
});

// -- the public face: legend clicks, the Save button's hook, tests ------------------------------------------
window.segdemoPainter = {
  pickClass, setTool: (t) => { S.tool = t; markActive(); }, setSize, undo, redo,
  value: () => (S.n ? JSON.stringify({ token: S.token, w: S.w, h: S.h, changed: S.changed, mask: rleEncode(S.mask) }) : ''),
  state: () => ({ w: S.w, h: S.h, cls: S.cls, tool: S.tool, size: S.size, zoom: S.zoom, changed: S.changed,
                  undo: S.undo.length, redo: S.redo.length, token: S.token }),
};
load(props.value);
watch('value', () => load(props.value));
"""

LEGEND_JS = r"""
element.addEventListener('click', (ev) => {
  const row = ev.target.closest('[data-class]');
  if (row && window.segdemoPainter) window.segdemoPainter.pickClass(Number(row.dataset.class));
});
"""

SAVE_JS = """
async (...args) => {
  const painter = window.segdemoPainter;
  args[0] = painter ? painter.value() : '';
  return args;
}
"""
