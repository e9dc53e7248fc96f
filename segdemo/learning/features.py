"""The feature cache: what a model's frozen trunk makes of each workspace image, computed once and kept.

The fast learner (:mod:`segdemo.learning.learner`) trains only a model's cheap ``top`` on the features its ``trunk``
gives (see ``SegmentationModel.trunk``); those do not change while the trunk does not, so they are computed once
per image, at the scale the predictor feeds the model, for the image and its horizontal mirror, and stored as

    ROOT/cache/features/<trunk name>/<trunk key[:16]>/<sample id>.safetensors

(float16 tensors ``view<v>.<i>``, the run size and the image digest in the file's metadata), written atomically
like every other workspace file. A file whose digest no longer matches its sample, or that cannot be read, is
recomputed; when a cache is opened, the folders of older trunks of the same name are deleted (the last
:data:`KEPT_TRUNKS` are kept). The trunk name is shared by models with the same trunk (see
``SegmentationModel.shared_trunk``), so switching between them recomputes nothing. Recently used entries also stay in
memory, up to ``memory_bytes``.
"""

from __future__ import annotations

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

from segdemo.fileio import atomic_write_bytes
from segdemo.inference import Predictor
from segdemo.priority import pausable
from segdemo.store import StoreError, Workspace
from segdemo.weights import safetensors_metadata

KEPT_TRUNKS = 2
"""Trunk folders kept per trunk name: the one opened last and the one before (two families on different
encoder weights, used in turn, do not evict each other)."""

MEMORY_BYTES = 1 << 30
"""Default bound on the features kept in memory (the disk copy is bounded by the workspace's images)."""


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
        return self._path(sample_id).is_file()

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

    def _path(self, sample_id: str) -> Path:
        return self.folder / f"{self.workspace.check_id(sample_id)}.safetensors"

    def _write(self, sample_id: str, digest: str, features: SampleFeatures) -> None:
        tensors = {f"view{v}.{i}": t.to(torch.float16).contiguous()
                   for v, view in enumerate(features.views) for i, t in enumerate(view)}
        sizes = {"run": features.run_size, "padded": features.padded_size, "image": features.image_size}
        metadata = {"digest": digest, **{k: f"{h}x{w}" for k, (h, w) in sizes.items()}}
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._path(sample_id), save_tensors(tensors, metadata=metadata))

    def _read(self, sample_id: str, digest: str, mirrored: bool) -> SampleFeatures | None:
        """The stored features, or None when absent, stale (another image digest) or unreadable."""
        path = self._path(sample_id)
        try:
            data = path.read_bytes()
            tensors = load_tensors(data)
            metadata = safetensors_metadata(data)
        except (FileNotFoundError, SafetensorError, OSError, ValueError):
            return None
        if metadata.get("digest") != digest:
            return None
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

