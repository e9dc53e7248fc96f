"""Label sets as data, and the conversions between class masks, palette PNGs and colour overlays.

A class mask is a ``uint8`` array of shape (H, W) whose values are class indices ``0 .. K-1`` or the
label set's ``ignore_index`` (255, "void": left out of losses and metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IGNORE_INDEX = 255
VOID_COLOR = (0, 0, 0)
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class LabelSet:
    """Ordered class names and their RGB colours; class index = position in the lists."""

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError(f"label set {self.name!r} has no classes")
        if len(self.names) != len(self.colors):
            raise ValueError(f"label set {self.name!r}: {len(self.names)} names but {len(self.colors)} colours")
        if len(self.names) >= self.ignore_index or len(self.names) > 254:
            raise ValueError(f"label set {self.name!r}: at most 254 classes, got {len(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"label set {self.name!r}: class names must be unique")
        for name, color in zip(self.names, self.colors):
            if not name or not isinstance(name, str):
                raise ValueError(f"label set {self.name!r}: every class needs a non-empty name")
            if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
                raise ValueError(f"label set {self.name!r}: colour of {name!r} must be three integers 0-255")
        if len(set(self.colors)) != len(self.colors):
            raise ValueError(f"label set {self.name!r}: class colours must be distinct")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        classes = [{"name": n, "color": list(c)} for n, c in zip(self.names, self.colors)]
        return {"name": self.name, "classes": classes, "ignore_index": self.ignore_index}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSet":
        try:
            classes = data["classes"]
            return cls(
                name=str(data.get("name", "custom")),
                names=tuple(c["name"] for c in classes),
                colors=tuple(tuple(int(v) for v in c["color"]) for c in classes),
                ignore_index=int(data.get("ignore_index", IGNORE_INDEX)),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a label set (expected {{'name', 'classes': [{{'name', 'color'}}]}}): {err}") from err

    def save(self, path: str | Path) -> None:
        from segdemo.fileio import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LabelSet":
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from err
        return cls.from_dict(data)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 lookup table: class index → colour, void and unused → black."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        table[self.ignore_index] = VOID_COLOR
        return table

    def hex_colors(self) -> list[str]:
        return ["#%02x%02x%02x" % c for c in self.colors]

    def same_classes(self, other: "LabelSet") -> bool:
        return self.names == other.names


CAMVID11 = LabelSet(
    name="camvid11",
    names=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"),
    colors=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
)


def dataset_labels(root: str | Path) -> LabelSet:
    """The label set of a dataset folder: its ``labels.json``, or CamVid-11 when it has none."""
    path = Path(root) / LABELS_FILE
    return LabelSet.load(path) if path.is_file() else CAMVID11


def check_mask(mask: np.ndarray, labels: LabelSet) -> np.ndarray:
    """Return ``mask`` as uint8 (H, W); raise ValueError if it holds values outside the label set."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a class mask is 2-D (H, W), got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError("class mask values must lie in 0..255")
    mask = mask.astype(np.uint8, copy=False)
    bad = (mask >= labels.num_classes) & (mask != labels.ignore_index)
    if bad.any():
        values = sorted(set(np.unique(mask[bad]).tolist()))[:5]
        raise ValueError(f"mask holds values {values} outside label set {labels.name!r} (0..{labels.num_classes - 1}, 255)")
    return mask


def mask_to_palette_image(mask: np.ndarray, labels: LabelSet) -> Image.Image:
    """Class mask → Pillow "P" image whose palette carries the class colours (the VOC convention)."""
    image = Image.fromarray(check_mask(mask, labels), mode="P")
    image.putpalette(labels.palette().reshape(-1).tolist())
    return image


def mask_from_image(image: Image.Image) -> np.ndarray:
    """A mask PNG (palette "P" or grayscale "L", values = class indices) → uint8 (H, W)."""
    if image.mode not in ("P", "L"):
        raise ValueError(f"a mask image must be single-channel (P or L mode), got {image.mode}")
    return np.asarray(image, dtype=np.uint8).copy()


def colorize(mask: np.ndarray, labels: LabelSet) -> np.ndarray:
    """Class mask (H, W) → RGB uint8 (H, W, 3) in the class colours; void is black."""
    return labels.palette()[np.asarray(mask, dtype=np.uint8)]


def overlay(image: np.ndarray, mask: np.ndarray, labels: LabelSet, alpha: float = 0.5) -> np.ndarray:
    """Blend the class colours over an RGB uint8 image (H, W, 3); void pixels keep the image. alpha in [0, 1]."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size")
    alpha = float(np.clip(alpha, 0.0, 1.0))
    colors = colorize(mask, labels).astype(np.float32)
    blend = image.astype(np.float32) * (1.0 - alpha) + colors * alpha
    blend[mask == labels.ignore_index] = image[mask == labels.ignore_index]
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)

