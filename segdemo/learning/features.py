"""Feature caches: what a frozen trunk makes of each image, computed once and kept, so that only a top trains.

Two caches, one file store (:class:`TensorFiles`: one safetensors file per sample, stamped with what it was computed
from, written atomically; a file with another stamp, or one that cannot be read, reads as absent) and one way to
cut a window out of cached maps (:func:`random_box`, :func:`crop_maps`):

- :class:`FeatureCache`, the workspace's, for the learners;
- :class:`EncodedDataset`, a dataset's under the zoo's shared encoder, for decoder training
  (:mod:`segdemo.learning.train_decoder`).

**The workspace's.** The fast learner (:mod:`segdemo.learning.learner`) trains only a model's cheap ``top`` on the features its ``trunk``
gives (see ``SegmentationModel.trunk``); those do not change while the trunk does not, so they are computed once
per image, at the scale the predictor feeds the model, for the image and its horizontal mirror, and stored as

    ROOT/cache/features/<trunk name>/<trunk key[:16]>/<sample id>.safetensors

(float16 tensors ``view<v>.<i>``, the run size and the image digest in the file's metadata), written atomically
like every other workspace file. A file whose digest no longer matches its sample, or that cannot be read, is
recomputed; when a cache is opened, the folders of older trunks of the same name are deleted (the last
:data:`KEPT_TRUNKS` are kept). The trunk name is shared by models with the same trunk (see
``SegmentationModel.shared_trunk``), so switching between them recomputes nothing. Recently used entries also stay in
memory, up to ``memory_bytes``.

**A dataset's.** Every decoder in the zoo reads the same five EfficientNet-Lite0 feature maps (strides 2, 4, 8, 16,
32; see ``models/encoders/efficientnet.py``). With the encoder frozen those maps never change, so they are computed
once per image, for a few scales and the horizontal mirror, and a decoder's epoch costs only the decoder:

    FOLDER/<sample id>.safetensors   float16 ``<scale>.<flip>.<tap>`` maps of the padded input, uint8
                                     ``<scale>.mask`` (the mask at the run size, padded with 255)

stamped with the encoder's sha256, the scales, the mirror and the base size; a file made under another encoder or
other scales is recomputed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import OrderedDict
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
from segdemo.inference import Predictor
from segdemo.labels import LabelSet
from segdemo.models.encoders.efficientnet import EfficientNetLite0Encoder
from segdemo.priority import pausable
from segdemo.store import StoreError, Workspace
from segdemo.weights import safetensors_metadata

KEPT_TRUNKS = 2
"""Trunk folders kept per trunk name: the one opened last and the one before (two families on different
encoder weights, used in turn, do not evict each other)."""

MEMORY_BYTES = 1 << 30
"""Default bound on the features kept in memory (the disk copy is bounded by the workspace's images)."""

STRIDE = EfficientNetLite0Encoder.output_stride
"""A dataset's inputs are padded (replicate) to multiples of the shared encoder's output stride; windows are
aligned to it."""


class TensorFiles:
    """One safetensors file per name in ``folder``, stamped (metadata ``digest``) with what it was computed from."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.safetensors"

    def has(self, name: str) -> bool:
        """Whether a file exists (not whether its stamp is current)."""
        return self.path(name).is_file()

    def read(self, name: str, digest: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """(tensors, metadata) of the file, or None when it is absent, stamped otherwise or unreadable."""
        try:
            data = self.path(name).read_bytes()
            metadata = safetensors_metadata(data)
            if metadata.get("digest") != digest:
                return None
            return load_tensors(data), metadata
        except (FileNotFoundError, SafetensorError, OSError, ValueError):
            return None

    def write(self, name: str, tensors: dict[str, torch.Tensor], digest: str,
              metadata: dict[str, str] | None = None) -> None:
        """Write the file atomically, stamped with ``digest``, with ``metadata`` beside the stamp."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path(name), save_tensors(tensors, metadata={"digest": digest, **(metadata or {})}))


def random_box(padded_size: tuple[int, int], crop: tuple[int, int], rng) -> tuple[int, int, int, int]:
    """A random (top, left, height, width) of at most ``crop`` inside ``padded_size``, aligned to :data:`STRIDE`;
    ``rng`` is a ``random.Random`` or numpy Generator."""
    height = min(crop[0], padded_size[0]) // STRIDE * STRIDE
    width = min(crop[1], padded_size[1]) // STRIDE * STRIDE
    draw = rng.randrange if hasattr(rng, "randrange") else rng.integers
    top = STRIDE * int(draw((padded_size[0] - height) // STRIDE + 1))
    left = STRIDE * int(draw((padded_size[1] - width) // STRIDE + 1))
    return top, left, height, width


def crop_maps(maps: tuple[torch.Tensor, ...], padded_size: tuple[int, int], top: int, left: int, height: int,
              width: int) -> tuple[torch.Tensor, ...]:
    """The parts of feature maps (..., h_i, w_i) of a padded input of ``padded_size`` that cover the input's box
    (top, left, height, width); every bound a multiple of the coarsest map's stride."""
    cropped = []
    for feature in maps:
        stride = padded_size[0] // feature.shape[-2]
        cropped.append(feature[..., top // stride:(top + height) // stride, left // stride:(left + width) // stride])
    return tuple(cropped)


@dataclass(frozen=True)
class SampleFeatures:
    """``views[0]`` the image's trunk features, ``views[1]`` its mirror's (absent when not asked for); each a
    tuple of float32 (1, C, h_i, w_i) tensors. ``run_size``: the (h, w) the model saw the image at, before
    padding to ``padded_size``; ``image_size``: the image's own (H, W)."""

    views: tuple[tuple[torch.Tensor, ...], ...]
    run_size: tuple[int, int]
    padded_size: tuple[int, int]
    image_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * 2 for view in self.views for t in view)


class FeatureCache:
    """Trunk features of ``workspace``'s images for one trunk (``key``: the digest of its weights and scale).

    ``predictor`` runs the model whose trunk is cached (its BatchNorm folded; its top is never used here).
    Thread-safe; :meth:`get` computes and stores what is missing.
    """

    def __init__(self, workspace: Workspace, trunk_name: str, predictor: Predictor, key: str, *,
                 memory_bytes: int = MEMORY_BYTES) -> None:
        self.workspace, self.predictor, self.key = workspace, predictor, key
        trunk_dir = workspace.root / "cache" / "features" / workspace.check_id(trunk_name)
        self.folder = trunk_dir / key[:16]
        self.files = TensorFiles(self.folder)
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[str, SampleFeatures] = OrderedDict()
        self._lock = threading.Lock()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.utime(self.folder)
        others = sorted((p for p in trunk_dir.iterdir() if p.is_dir() and p != self.folder),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for other in others[KEPT_TRUNKS - 1:]:
            shutil.rmtree(other, ignore_errors=True)

    def get(self, sample_id: str, *, mirrored: bool = True) -> SampleFeatures:
        """Features of one sample (with its mirror when ``mirrored``); StoreError if the sample is gone."""
        meta = self.workspace.sample_meta(sample_id)
        if meta is None:
            raise StoreError(f"no sample {sample_id!r} in this workspace")
        with self._lock:
            cached = self._memory.get(sample_id)
            if cached is not None and len(cached.views) >= 1 + mirrored:
                self._memory.move_to_end(sample_id)
                return cached
        features = self._read(sample_id, meta.image_sha256, mirrored)
        if features is None:
            features = self.compute(self.workspace.load_image(sample_id), mirrored=mirrored)
            self._write(sample_id, meta.image_sha256, features)
        self._remember(sample_id, features)
        return features

    def has(self, sample_id: str) -> bool:
        """Whether the sample's features are in memory or on disk (not whether they are still current)."""
        with self._lock:
            if sample_id in self._memory:
                return True
        return self.files.has(self.workspace.check_id(sample_id))

    def _remember(self, key: str, features: SampleFeatures) -> None:
        with self._lock:
            self._memory[key] = features
            self._memory.move_to_end(key)
            total = sum(f.nbytes for f in self._memory.values())
            while total > self.memory_bytes and len(self._memory) > 1:
                _, dropped = self._memory.popitem(last=False)
                total -= dropped.nbytes

    @torch.no_grad()
    def compute(self, image: np.ndarray, *, mirrored: bool = True, scale: float = 1.0) -> SampleFeatures:
        """The trunk's features of ``image`` (RGB uint8 (H, W, 3)), with its mirror's when ``mirrored``, at
        ``scale`` x the size the predictor feeds the model; neither stored nor remembered. For the background
        learners only: it gives way to foreground work between layers (:func:`segdemo.priority.pausable`)."""
        model = self.predictor.model
        x = self.predictor.model_input(image)
        if scale != 1.0:
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=scale < 1.0, align_corners=False)
        padded, run_size = model.padded_input(x)
        with pausable(model):
            views = [tuple(f.float().contiguous() for f in model.trunk(padded))]
            if mirrored:
                mirror, _ = model.padded_input(x.flip(-1))
                views.append(tuple(f.float().contiguous() for f in model.trunk(mirror)))
        return SampleFeatures(tuple(views), tuple(run_size), tuple(padded.shape[-2:]), tuple(image.shape[:2]))

    def _write(self, sample_id: str, digest: str, features: SampleFeatures) -> None:
        tensors = {f"view{v}.{i}": t.to(torch.float16).contiguous()
                   for v, view in enumerate(features.views) for i, t in enumerate(view)}
        sizes = {"run": features.run_size, "padded": features.padded_size, "image": features.image_size}
        self.files.write(self.workspace.check_id(sample_id), tensors, digest,
                         {k: f"{h}x{w}" for k, (h, w) in sizes.items()})

    def _read(self, sample_id: str, digest: str, mirrored: bool) -> SampleFeatures | None:
        """The stored features, or None when absent, stale (another image digest) or unreadable."""
        found = self.files.read(self.workspace.check_id(sample_id), digest)
        if found is None:
            return None
        tensors, metadata = found
        views = []
        for v in range(2 if mirrored else 1):
            view = []
            while f"view{v}.{len(view)}" in tensors:
                view.append(tensors[f"view{v}.{len(view)}"].float())
            if not view:
                return None
            views.append(tuple(view))
        try:
            run, padded, image = (tuple(int(n) for n in metadata[k].split("x")) for k in ("run", "padded", "image"))
        except (KeyError, ValueError):
            return None
        return SampleFeatures(tuple(views), run, padded, image)


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
        self.files = TensorFiles(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def ensure(self, sample_id: str) -> None:
        """Compute and write the sample's file unless a current one exists."""
        self._tensors(sample_id)

    def load(self, sample_id: str) -> SampleViews:
        """The sample's views, computed first if missing."""
        tensors = self._tensors(sample_id)
        features, masks = {}, {}
        for scale in self.scales:
            masks[scale] = tensors[f"{scale}.mask"].long()
            for flip in (0, 1) if self.flips else (0,):
                features[(scale, flip)] = tuple(tensors[f"{scale}.{flip}.{tap}"] for tap in range(5))
        return SampleViews(features=features, masks=masks)

    def _tensors(self, sample_id: str) -> dict[str, torch.Tensor]:
        """The tensors of the sample's current file, computed and written first when there is none."""
        found = self.files.read(sample_id, self.signature)
        if found is not None:
            return found[0]
        image = read_rgb(image_path(self.root, sample_id))
        mask = read_mask(mask_path(self.root, sample_id), self.labels)
        tensors = encode_sample(self.encoder, image, mask, scales=self.scales, flips=self.flips,
                                base_size=self.base_size, mean=self.mean, std=self.std)
        self.files.write(sample_id, tensors, self.signature)
        found = self.files.read(sample_id, self.signature)
        if found is None:
            raise RuntimeError(f"feature cache for {sample_id!r} could not be written to {self.folder}")
        return found[0]
