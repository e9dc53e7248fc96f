"""Where an image runs through a model: the one rule for its size and padding, for inference, training and every
feature cache.

An image is resized so its shorter side is the model's base size (the scale it was trained at) and its longer side
at most :data:`MAX_MODEL_SIDE`, no side under :data:`MIN_INPUT_SIZE`; the result is padded at the bottom and right to
a multiple of the encoder's output stride (replicating the border, or a fill value for masks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_INPUT_SIZE = 16
"""Smallest accepted input side, in pixels."""
MAX_MODEL_SIDE = 1024
"""Longest side an image runs at, in pixels: larger images are scaled down further (memory and time bound)."""


def model_scale(height: int, width: int, base_size: int | float | None) -> float:
    """The factor an image of (height, width) is resized by: shorter side to ``base_size`` (None: 1), longer side
    at most :data:`MAX_MODEL_SIDE`."""
    scale = base_size / min(height, width) if base_size else 1.0
    return min(scale, MAX_MODEL_SIDE / max(height, width))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of an image of (height, width) resized by ``scale``, rounded, no side under :data:`MIN_INPUT_SIZE`."""
    return max(MIN_INPUT_SIZE, round(height * scale)), max(MIN_INPUT_SIZE, round(width * scale))


def pad_to_stride(x: torch.Tensor, stride: int, value: float | None = None) -> torch.Tensor:
    """Pad the last two dims of ``x`` at the bottom and right to multiples of ``stride`` (replicating the border,
    or ``value`` when given)."""
    pad_h, pad_w = -x.shape[-2] % stride, -x.shape[-1] % stride
    if not (pad_h or pad_w):
        return x
    if value is None:
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.pad(x, (0, pad_w, 0, pad_h), value=value)
