"""Small street-like scenes the tests draw themselves, and datasets of them in the project's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.labels import CAMVID11, mask_to_palette_image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SKY, BUILDING, ROAD, CAR = 0, 1, 3, 8

def draw_scene(seed: int, height: int = 72, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic street: sky above, a building band, road below, one car. (RGB uint8, class mask uint8)."""
    rng = np.random.default_rng(seed)
    mask = np.full((height, width), SKY, dtype=np.uint8)
    horizon = int(height * rng.uniform(0.35, 0.5))
    mask[int(horizon * 0.4):horizon, :] = BUILDING
    mask[horizon:, :] = ROAD
    car_h, car_w = int(height * 0.18), int(width * 0.25)
    top = horizon + int(rng.uniform(0.05, 0.3) * height)
    left = int(rng.uniform(0, width - car_w))
    mask[top:top + car_h, left:left + car_w] = CAR
    colors = np.array(CAMVID11.colors, dtype=np.float32)
    image = colors[mask] + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(root: Path, *, train: int = 8, val: int = 3, size: tuple[int, int] = (72, 96),
                  void_border: bool = True) -> Path:
    """Write ``train`` + ``val`` drawn scenes as ROOT/images, masks (void border), splits."""
    for folder in ("images", "masks", "splits"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ids = {"train": [f"scene{i:03d}" for i in range(train)], "val": [f"scene{i:03d}" for i in range(train, train + val)]}
    for split, names in ids.items():
        for sample_id in names:
            image, mask = draw_scene(int(sample_id[5:]), *size)
            if void_border:
                mask[:, :2] = 255
            Image.fromarray(image).save(root / "images" / f"{sample_id}.png")
            mask_to_palette_image(mask, CAMVID11).save(root / "masks" / f"{sample_id}.png")
        (root / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


def shared_dataset(name: str) -> Path:
    """A dataset under ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not (path / "splits").is_dir():
        pytest.skip(f"{path} not present")
    return path


ANIMALS = ("background", "cat", "dog")
"""A second label set for the tests: drawn 'cats' (orange discs) and 'dogs' (brown squares) on grass."""


def draw_animal(seed: int, kind: int, height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Grass with one animal: ``kind`` 1 a cat (an orange disc), 2 a dog (a brown square). (RGB uint8, mask uint8)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), dtype=np.uint8)
    size = int(min(height, width) * rng.uniform(0.35, 0.5))
    top, left = int(rng.uniform(0, height - size)), int(rng.uniform(0, width - size))
    if kind == 1:
        rows, cols = np.ogrid[:height, :width]
        centre, radius = (top + size / 2, left + size / 2), size / 2
        mask[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2] = 1
    else:
        mask[top:top + size, left:left + size] = 2
    colors = np.array([(70, 140, 60), (235, 150, 40), (110, 70, 40)], dtype=np.float32)
    image = colors[mask] + rng.normal(0, 10, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask
