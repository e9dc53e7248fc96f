"""From an image to a class mask and per-pixel confidence at the image's native size."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.data import BASE_SIZE, normalize
from segdemo.fileio import read_rgb
from segdemo.geometry import MIN_INPUT_SIZE, model_scale, scaled_size
from segdemo.labels import CAMVID11, LabelSet
from segdemo.models import SegmentationModel, build_model
from segdemo.models.fuse import fold_batchnorm
from segdemo.weights import IMAGENET_MEAN, IMAGENET_STD, WeightsEntry, WeightsError, resolve_entry

def configure_threads() -> int:
    """Use every core the process may run on for intra-op work; return the thread count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))
    return torch.get_num_threads()


@dataclass
class Prediction:
    """``mask``: uint8 (H, W) class indices; ``confidence``: float32 (H, W) top-class softmax probability."""

    mask: np.ndarray
    confidence: np.ndarray


def to_prediction(logits: torch.Tensor) -> Prediction:
    """Class logits (K, H, W) → the Prediction: argmax class and its softmax probability."""
    probability, mask = logits.softmax(0).max(0)
    return Prediction(mask=mask.to(torch.uint8).numpy(), confidence=probability.float().numpy())


class Predictor:
    """A model in eval mode with its label set and input normalisation, ready for fast CPU inference.

    Images are resized so their shorter side is ``base_size`` (the scale the model was trained at) before the
    model, and its logits back to the image's size; ``base_size=None`` feeds images as given. The predictor
    runs its own copy of ``model`` with BatchNorm folded into the convolutions (same outputs, faster), so
    training ``model`` afterwards does not change it. ``new_head``: the classifier learned nothing of
    ``labels``' classes yet (its predictions are noise).
    """

    def __init__(self, model: SegmentationModel, *, labels: LabelSet = CAMVID11,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "", version: str = "",
                 base_size: int | None = BASE_SIZE, new_head: bool = False) -> None:
        if model.num_classes != labels.num_classes:
            raise ValueError(f"model has {model.num_classes} classes, label set {labels.name!r} has {labels.num_classes}")
        self.model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        self.labels, self.mean, self.std = labels, tuple(mean), tuple(std)
        self.name, self.version, self.base_size = name, version, base_size
        self.new_head = new_head

    @classmethod
    def from_weights(cls, name: str, weights: str | Path | WeightsEntry = "default") -> "Predictor":
        """Load a registered model with weights (``"default"`` = shipped); sha256 verified."""
        from segdemo.models import shipped_weights

        entry = shipped_weights(name) if weights == "default" else resolve_entry(weights)
        if entry is None:
            raise WeightsError(f"model {name!r} has no shipped weights")
        model = build_model(name, weights=entry)
        return cls(model, labels=entry.labels, mean=entry.mean, std=entry.std, name=name, version=entry.version,
                   base_size=entry.base_size)

    def model_scale(self, height: int, width: int) -> float:
        """Factor an image of (height, width) is resized by before the model: shorter side to ``base_size``,
        longer side at most ``MAX_MODEL_SIDE``."""
        return model_scale(height, width, self.base_size)

    @torch.inference_mode()
    def predict_arrays(self, images: list[np.ndarray]) -> list[Prediction]:
        """RGB uint8 arrays (H, W, 3) → one Prediction each, at each image's own size."""
        results = []
        for image in images:
            height, width = image.shape[:2]
            logits = self.model(self.model_input(image))
            if tuple(logits.shape[-2:]) != (height, width):
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            results.append(to_prediction(logits[0]))
        return results

    def model_input(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) → the normalised float (1, 3, h, w) batch the model sees, resized by
        :meth:`model_scale`, channels_last; ValueError for anything else or an image under 16 px."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if min(height, width) < MIN_INPUT_SIZE:
            raise ValueError(f"image is {width}x{height}: at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} pixels needed")
        x = normalize(torch.from_numpy(image).permute(2, 0, 1), self.mean, self.std)[None]
        scale = self.model_scale(height, width)
        if scale != 1.0:
            x = F.interpolate(x, size=scaled_size(height, width, scale), mode="bilinear", antialias=scale < 1.0,
                              align_corners=False)
        return x.contiguous(memory_format=torch.channels_last)

    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """Same-size images run as one batch; mixed sizes fall back to one at a time."""
        if len({image.shape for image in images}) != 1 or self.model_scale(*images[0].shape[:2]) != 1.0:
            return self.predict_arrays(images)
        with torch.inference_mode():
            batch = normalize(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2), self.mean, self.std)
            probability, mask = self.model(batch.contiguous(memory_format=torch.channels_last)).softmax(1).max(1)
        return [Prediction(mask=m.to(torch.uint8).numpy(), confidence=p.numpy()) for m, p in zip(mask, probability)]

    def predict(self, image) -> Prediction:
        """Any image source (path, bytes, Pillow image of any mode, or RGB uint8 array) → Prediction."""
        array = image if isinstance(image, np.ndarray) else read_rgb(image)
        return self.predict_arrays([array])[0]
