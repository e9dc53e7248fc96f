"""The one dataset layout, and a torch Dataset over it with joint image/mask augmentation.

Layout: ``ROOT/images/<id>.png|jpg``, ``ROOT/masks/<id>.png`` (class indices, 255 = void),
``ROOT/splits/<split>.txt`` (one id per line), optional ``ROOT/labels.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from segdemo.fileio import read_rgb
from segdemo.labels import LabelSet, check_mask, dataset_labels, mask_from_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def split_ids(root: str | Path, split: str) -> list[str]:
    """Ids listed in ``ROOT/splits/<split>.txt`` (blank lines skipped); ValueError if the split is missing."""
    path = Path(root) / "splits" / f"{split}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(root) / "splits").glob("*.txt"))
        raise ValueError(f"{root}: no split {split!r} (available: {', '.join(available) or 'none'})")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def image_path(root: str | Path, sample_id: str) -> Path:
    """The image file of ``sample_id`` in any supported format."""
    for suffix in IMAGE_SUFFIXES:
        path = Path(root) / "images" / f"{sample_id}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{root}: no image for id {sample_id!r} in images/")


def mask_path(root: str | Path, sample_id: str) -> Path:
    return Path(root) / "masks" / f"{sample_id}.png"


def read_mask(path: str | Path, labels: LabelSet) -> np.ndarray:
    with Image.open(path) as image:
        return check_mask(mask_from_image(image), labels)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, 3, H, W) or (3, H, W) → float32 normalised: (x / 255 - mean) / std."""
    mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (images.float() / 255.0 - mean) / std


BASE_SIZE = 360
"""Shorter image side (pixels) that training scales images to before jitter, and inference resizes to."""


@dataclass(frozen=True)
class Augment:
    """Training augmentation: scale jitter of the shorter side around ``base_size``, random crop, flip, colour."""

    crop: tuple[int, int] = (352, 480)
    base_size: int = BASE_SIZE
    scale_range: tuple[float, float] = (0.75, 1.5)
    color_jitter: float = 0.3

    def transform(self) -> v2.Compose:
        low, high = (round(self.base_size * s) for s in self.scale_range)
        return v2.Compose([
            v2.RandomResize(low, high + 1, antialias=True),
            v2.RandomCrop(self.crop, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=self.color_jitter, contrast=self.color_jitter, saturation=self.color_jitter),
        ])


class SegmentationDataset(Dataset):
    """Samples of one split, decoded once and kept in memory.

    Item: ``(image uint8 (3, H, W), mask int64 (H, W), weight float32 (H, W))``; ``weight`` is 1 everywhere
    unless ``pixel_weights`` gives a per-id map (fine-tuning weights corrected pixels more).
    With ``augment`` the image and mask are transformed jointly.
    """

    def __init__(self, root: str | Path, ids: list[str], *, labels: LabelSet | None = None,
                 augment: Augment | None = None, pixel_weights: dict[str, np.ndarray] | None = None) -> None:
        self.root = Path(root)
        self.ids = list(ids)
        if not self.ids:
            raise ValueError(f"{root}: no samples to load")
        self.labels = labels or dataset_labels(root)
        self.transform = augment.transform() if augment else None
        self.images, self.masks, self.weights = [], [], []
        for sample_id in self.ids:
            image = read_rgb(image_path(self.root, sample_id))
            mask = read_mask(mask_path(self.root, sample_id), self.labels)
            if image.shape[:2] != mask.shape:
                raise ValueError(f"{root}: image and mask of {sample_id!r} differ in size "
                                 f"({image.shape[1]}x{image.shape[0]} vs {mask.shape[1]}x{mask.shape[0]})")
            self.images.append(torch.from_numpy(image).permute(2, 0, 1).contiguous())
            self.masks.append(torch.from_numpy(mask))
            weight = (pixel_weights or {}).get(sample_id)
            self.weights.append(None if weight is None else torch.from_numpy(weight.astype(np.float32)))

    def add_unlabelled(self, images: list[np.ndarray]) -> None:
        """Append RGB uint8 images (H, W, 3) with an all-void mask: they add nothing to the cross-entropy, only
        to a distillation term that acts on every pixel (see :func:`segdemo.learning.train.fit`)."""
        for image in images:
            self.images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous())
            self.masks.append(torch.full(image.shape[:2], self.labels.ignore_index, dtype=torch.uint8))
            self.weights.append(None)

    @classmethod
    def from_split(cls, root: str | Path, split: str, **kwargs) -> "SegmentationDataset":
        return cls(root, split_ids(root, split), **kwargs)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, mask = self.images[index], self.masks[index]
        weight = self.weights[index]
        if weight is None:
            weight = torch.ones(mask.shape, dtype=torch.float32)
        if self.transform is None:
            return image, mask.long(), weight
        # The weight map travels as a second mask channel so that it is cropped and flipped with the labels.
        stacked = tv_tensors.Mask(torch.stack([mask.long(), (weight * 16).round().long()]))
        image, stacked = self.transform(tv_tensors.Image(image), stacked)
        mask, weight = stacked[0], stacked[1].float() / 16
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor), weight.as_subclass(torch.Tensor)

    def class_pixel_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(pixels of each class, pixels of the images containing each class), both int64 (K,)."""
        k = self.labels.num_classes
        counts, image_pixels = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        for mask in self.masks:
            histogram = np.bincount(mask.numpy().ravel(), minlength=256)[:k]
            counts += histogram
            image_pixels += (histogram > 0) * mask.numel()
        return counts, image_pixels


def median_frequency_weights(dataset: SegmentationDataset, *, power: float = 1.0) -> torch.Tensor:
    """Median-frequency class weights (Eigen & Fergus) of ``dataset``, raised to ``power`` (0.5 = the gentler
    sqrt form); see :func:`median_frequency`. float32 (K,)."""
    return median_frequency(*dataset.class_pixel_counts(), power=power)


def median_frequency(counts: np.ndarray, image_pixels: np.ndarray, *, power: float = 1.0) -> torch.Tensor:
    """freq_c = pixels of c / pixels of the images containing c; weight_c = (median(freq) / freq_c) ** power.
    ``counts`` and ``image_pixels``: (K,) totals; classes absent from the data get weight 1. float32 (K,)."""
    counts, image_pixels = np.asarray(counts), np.asarray(image_pixels)
    present = counts > 0
    weights = np.ones(len(counts), dtype=np.float64)
    if present.any():
        freq = counts[present] / image_pixels[present]
        weights[present] = (np.median(freq) / freq) ** power
    return torch.tensor(weights, dtype=torch.float32)
