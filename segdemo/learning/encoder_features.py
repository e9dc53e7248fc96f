"""A dataset's features under the zoo's frozen shared encoder, computed once so decoders train without it.

Every decoder in the zoo reads the same five EfficientNet-Lite0 feature maps (strides 2, 4, 8, 16, 32; see
``models/encoders/efficientnet.py``). With the encoder frozen those maps never change, so they are computed once per
image, for a few scales and the horizontal mirror, and a decoder's epoch costs only the decoder. One file per sample:

    FOLDER/<sample id>.safetensors   float16 ``<scale>.<flip>.<tap>`` maps of the padded input, uint8
                                     ``<scale>.mask`` (the mask at the run size, padded with 255)

The metadata of each file records the scales and the encoder's sha256; a file made under another encoder or
other scales is recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors, save as save_tensors

from segdemo.data import image_path, mask_path, normalize, read_mask
from segdemo.fileio import atomic_write_bytes, read_rgb
from segdemo.geometry import model_scale, pad_to_stride, scaled_size
from segdemo.labels import LabelSet
from segdemo.models.encoders.efficientnet import EfficientNetLite0Encoder
from segdemo.weights import safetensors_metadata

STRIDE = EfficientNetLite0Encoder.output_stride
"""Inputs are padded (replicate) to multiples of the encoder's output stride."""


@dataclass(frozen=True)
class SampleViews:
    """One sample's cached views: ``features[(scale, flip)]`` five float16 (1, C, h, w) maps of the padded input;
    ``masks[scale]`` int64 (H, W) at that padded size, 255 outside the image and on void; ``mirrored`` masks are
    flipped on the fly."""

    features: dict[tuple[float, int], tuple[torch.Tensor, ...]]
    masks: dict[float, torch.Tensor]

    def view(self, scale: float, flip: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        mask = self.masks[scale]
        return self.features[(scale, flip)], (mask.flip(-1) if flip else mask)


def crop_maps(maps: tuple[torch.Tensor, ...], padded_size: tuple[int, int], top: int, left: int, height: int,
              width: int) -> tuple[torch.Tensor, ...]:
    """The parts of feature maps (..., h_i, w_i) of a padded input of ``padded_size`` that cover the input's box
    (top, left, height, width); every bound a multiple of the coarsest map's stride."""
    cropped = []
    for feature in maps:
        stride = padded_size[0] // feature.shape[-2]
        cropped.append(feature[..., top // stride:(top + height) // stride, left // stride:(left + width) // stride])
    return tuple(cropped)


def random_box(padded_size: tuple[int, int], crop: tuple[int, int], rng) -> tuple[int, int, int, int]:
    """A random (top, left, height, width) of at most ``crop`` inside ``padded_size``, aligned to :data:`STRIDE`;
    ``rng`` is a ``random.Random`` or numpy Generator."""
    height = min(crop[0], padded_size[0]) // STRIDE * STRIDE
    width = min(crop[1], padded_size[1]) // STRIDE * STRIDE
    draw = rng.randrange if hasattr(rng, "randrange") else rng.integers
    top = STRIDE * int(draw((padded_size[0] - height) // STRIDE + 1))
    left = STRIDE * int(draw((padded_size[1] - width) // STRIDE + 1))
    return top, left, height, width


@torch.inference_mode()
def encode_sample(encoder: torch.nn.Module, image: np.ndarray, mask: np.ndarray, *, scales: tuple[float, ...],
                  flips: bool, base_size: int, mean, std) -> dict[str, torch.Tensor]:
    """The tensors of one sample's cache file (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    x = normalize(torch.from_numpy(image).permute(2, 0, 1), mean, std)[None]
    target = torch.from_numpy(mask)[None, None].float()
    for scale in scales:
        size = scaled_size(*image.shape[:2], model_scale(*image.shape[:2], base_size * scale))
        resized = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        scaled_mask = F.interpolate(target, size=size, mode="nearest")
        tensors[f"{scale}.mask"] = pad_to_stride(scaled_mask, STRIDE, 255.0)[0, 0].to(torch.uint8)
        for flip in (0, 1) if flips else (0,):
            view = resized.flip(-1) if flip else resized
            for tap, feature in enumerate(encoder(pad_to_stride(view, STRIDE))):
                tensors[f"{scale}.{flip}.{tap}"] = feature.half().contiguous()
    return tensors


class EncodedDataset:
    """The cached views of a dataset's samples under one frozen encoder (``encoder_sha256`` names it)."""

    def __init__(self, root: str | Path, folder: str | Path, *, labels: LabelSet, encoder: torch.nn.Module,
                 encoder_sha256: str, scales: tuple[float, ...], flips: bool, base_size: int, mean, std) -> None:
        self.root, self.folder = Path(root), Path(folder)
        self.labels, self.encoder = labels, encoder.eval()
        self.scales, self.flips, self.base_size = tuple(scales), flips, base_size
        self.mean, self.std = mean, std
        self.signature = json.dumps({"encoder": encoder_sha256, "scales": list(self.scales), "flips": flips,
                                     "base_size": base_size})
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.safetensors"

    def ensure(self, sample_id: str) -> None:
        """Compute and write the sample's file unless a current one exists."""
        if self._read(sample_id) is not None:
            return
        image = read_rgb(image_path(self.root, sample_id))
        mask = read_mask(mask_path(self.root, sample_id), self.labels)
        tensors = encode_sample(self.encoder, image, mask, scales=self.scales, flips=self.flips,
                                base_size=self.base_size, mean=self.mean, std=self.std)
        atomic_write_bytes(self.path(sample_id), save_tensors(tensors, metadata={"signature": self.signature}))

    def load(self, sample_id: str) -> SampleViews:
        """The sample's views, computed first if missing."""
        self.ensure(sample_id)
        tensors = self._read(sample_id)
        if tensors is None:
            raise RuntimeError(f"feature cache for {sample_id!r} could not be written to {self.folder}")
        features, masks = {}, {}
        for scale in self.scales:
            masks[scale] = tensors[f"{scale}.mask"].long()
            for flip in (0, 1) if self.flips else (0,):
                features[(scale, flip)] = tuple(tensors[f"{scale}.{flip}.{tap}"] for tap in range(5))
        return SampleViews(features=features, masks=masks)

    def _read(self, sample_id: str) -> dict[str, torch.Tensor] | None:
        path = self.path(sample_id)
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
            if safetensors_metadata(data).get("signature") != self.signature:
                return None
            return load_tensors(data)
        except (SafetensorError, OSError, ValueError):
            return None
