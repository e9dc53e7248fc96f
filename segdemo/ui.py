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
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from segdemo.fileio import MAX_IMAGE_PIXELS
from segdemo.labels import LabelSet, colorize, overlay

# -- run-length encoding of class masks ------------------------------------------------------------------------


def rle_encode(mask: np.ndarray, dtype: str = "u1") -> tuple[str, str]:
    """(H, W) → (base64 run values, base64 run lengths uint32 little-endian), row-major. Values are uint8
    (``dtype="u1"``, class masks) or uint16 little-endian (``"<u2"``, superpixel labels below 65536)."""
    flat = np.ascontiguousarray(mask).ravel().astype(dtype)
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
                    token: str, title: str = "", segments: np.ndarray | None = None,
                    doubtful: np.ndarray | None = None, fill: bool = False, cold: bool = False) -> str:
    """The JSON the painter loads: the image, the model's mask (eraser target), the mask to edit and, for the
    smart tools, the superpixels (int (H, W) labels < 65536) and the doubtful pixels' outline (bool (H, W));
    ``fill``: each stroke asks the server for a fill-in; ``cold``: the classifier learned nothing yet (the
    painter says to paint a stroke of each class)."""
    height, width = prediction.shape
    payload = {
        "token": token, "w": int(width), "h": int(height), "title": title,
        "image": image_data_url(image), "pred": list(rle_encode(prediction)), "mask": list(rle_encode(corrected)),
        "names": list(labels.names), "colors": labels.hex_colors(), "void": int(labels.ignore_index),
        "fill": bool(fill), "cold": bool(cold),
    }
    if segments is not None:
        payload["seg"] = list(rle_encode(segments, "<u2"))
    if doubtful is not None:
        payload["doubt"] = list(rle_encode(doubtful))
    return json.dumps(payload, separators=(",", ":"))


@dataclass
class PainterValue:
    """The painter's answer: which loaded image it edited (``token``), the edited mask and which of its pixels the
    person painted (``painted`` bool (H, W); the others are the model's or its fill-in; None when not sent)."""

    token: str
    mask: np.ndarray
    painted: np.ndarray | None = None


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
    painted = None
    if data.get("hand") is not None:
        try:
            painted = rle_decode(*data["hand"], (height, width)).astype(bool)
        except (TypeError, ValueError):
            raise ValueError("the editor's record of painted pixels is damaged; reload the page and try again") \
                from None
    return PainterValue(token=str(data.get("token", "")), mask=rle_decode(values, lengths, (height, width)),
                        painted=painted)


def painter_value(mask: np.ndarray, token: str, painted: np.ndarray | None = None) -> str:
    """The JSON the painter sends back for ``mask`` and, optionally, its hand-painted pixels (bool (H, W)) (used
    by tests and API callers; the browser builds it in JS)."""
    values, lengths = rle_encode(mask)
    value = {"token": token, "w": int(mask.shape[1]), "h": int(mask.shape[0]), "mask": [values, lengths]}
    if painted is not None:
        value["hand"] = list(rle_encode(np.asarray(painted, np.uint8)))
    return json.dumps(value)


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


def class_edges(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose right or lower neighbour holds another class (one-pixel class outlines)."""
    mask = np.asarray(mask)
    edges = np.zeros(mask.shape, bool)
    edges[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edges[:-1, :] |= mask[:-1, :] != mask[1:, :]
    return edges


def outlined_overlay(image: np.ndarray, mask: np.ndarray, labels: LabelSet, alpha: float = 0.5) -> np.ndarray:
    """:func:`segdemo.labels.overlay` with the class outlines drawn in white, so that classes whose colours are
    close (CamVid's purples) or blend into the photo (grey Sky) stay apart; the palette itself is unchanged."""
    view = overlay(image, mask, labels, alpha)
    view[class_edges(mask)] = 255
    return view


def render_view(image: np.ndarray, mask: np.ndarray, confidence: np.ndarray | None, labels: LabelSet, *,
                view: str = "overlay", alpha: float = 0.5) -> np.ndarray:
    """``view`` "overlay" (class colours over the image, outlined), "confidence" (heat map) or "mask" (the
    palette colours only, as exported)."""
    if view == "confidence" and confidence is not None:
        return confidence_view(image, confidence, max(alpha, 0.35))
    if view == "mask":
        return colorize(mask, labels)
    return outlined_overlay(image, mask, labels, alpha)


def class_shares(mask: np.ndarray, labels: LabelSet) -> list[float]:
    """Fraction of the image's pixels in each class (void pixels counted in the total)."""
    counts = np.bincount(np.asarray(mask, dtype=np.uint8).ravel(), minlength=256)
    total = max(1, int(counts.sum()))
    return [float(counts[i]) / total for i in range(labels.num_classes)]


def class_key(index: int) -> str:
    """The editor's key for class ``index`` (0-based): 1–9 and 0 for the first ten, ⇧1–⇧9 and ⇧0 for the next
    ten, none beyond (those are picked by clicking)."""
    if not 0 <= index < 20:
        return ""
    digit = str((index % 10 + 1) % 10)
    return digit if index < 10 else "⇧" + digit


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 sample``, ``2 samples`` (``many`` for irregular plurals)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


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
        key = class_key(index)
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
    """The label set as a table numbered like the editor's keys: #, key, colour swatch with its hex code, name,
    and the value the class has in saved mask PNGs (0-based); void last."""
    rows = []
    for index, (name, color) in enumerate(zip(labels.names, labels.hex_colors())):
        key = class_key(index)
        rows.append(f'<tr><td>{index + 1}</td><td>{f"<kbd>{key}</kbd>" if key else "click"}</td><td><span '
                    f'class="sd-swatch" style="background:{color}"></span> <code>{color}</code></td>'
                    f'<td>{html.escape(name)}</td><td>{index}</td></tr>')
    rows.append(f'<tr><td></td><td></td><td><span class="sd-swatch sd-void"></span> <code>void</code></td>'
                f'<td>void (ignored in training and metrics)</td><td>{labels.ignore_index}</td></tr>')
    return ('<table class="sd-labels"><thead><tr><th>#</th><th>key</th><th>colour</th><th>class</th>'
            '<th>value in mask PNGs</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def thumbnail(image: np.ndarray, mask: np.ndarray, labels: LabelSet, *, side: int = 320,
              alpha: float = 0.5) -> np.ndarray:
    """A small outlined overlay of ``mask`` on ``image`` (longer side ``side``) for the dataset gallery."""
    view = outlined_overlay(image, mask, labels, alpha)
    height, width = view.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        view = np.asarray(Image.fromarray(view).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                       Image.BILINEAR))
    return view


# -- fine-tune tables ------------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def result_rows(before: dict, after: dict | None, judged: str = "held-out") -> list[list[str]]:
    """Rows [what, before, after, change] for mIoU (on ``judged``), pixel accuracy and each class's IoU."""
    after = after or {}
    rows = []
    for key, label in (("miou", f"mIoU ({judged})"), ("pixel_acc", "pixel accuracy")):
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
    """A drawn street-like RGB uint8 picture (sky, buildings, trees, pavement, road, cars, poles): the app's
    examples, shipped because no street photo with a licence that allows shipping it is at hand."""
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


# -- styles and the painter's HTML / JavaScript (files in segdemo/assets/, read once at import) -------------------

ASSETS = Path(__file__).resolve().parent / "assets"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


APP_CSS = _asset("app.css")
PAINTER_TEMPLATE = '<div class="sdp-host"></div>'
PAINTER_JS = _asset("painter.js")
"""The mask painter: ``element``, ``props``, ``watch`` and ``server`` come from gr.HTML's js_on_load."""
LEGEND_JS = _asset("legend.js")
SAVE_JS = _asset("save.js")
"""The Save button's js: puts the painter's mask value (see :func:`painter_value`) in the first input."""
