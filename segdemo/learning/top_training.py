"""Training a model's ``top`` on its frozen ``trunk``'s cached features: what both learners share.

The fast learner (:mod:`segdemo.learning.learner`, a few seconds after each Save) and the Fine-tune job's top path
(:mod:`segdemo.learning.top_path`, longer, on a press) train only a model's top (see ``SegmentationModel.trunk``/``top``).
The trunk's features of every workspace image are computed once and kept (:mod:`segdemo.learning.features`); a step
trains on a random stride-aligned window of one corrected sample's features (or its mirror's), plus a KL term to
a teacher's predictions on a window of an unlabelled image, which keeps what the teacher knew where no
correction speaks.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.corrections import Corrections
from segdemo.inference import Predictor
from segdemo.learning.features import FeatureCache, SampleFeatures, crop_maps, random_box
from segdemo.learning.losses import pixel_kl
from segdemo.lru import LruCache
from segdemo.metrics import ConfusionMatrix
from segdemo.models import SegmentationModel, build_model
from segdemo.picking import spread
from segdemo.priority import pausable, wait_for_foreground
from segdemo.promotion.evidence import changed_share
from segdemo.store import SHIPPED, Workspace
from segdemo.weights import WeightsEntry, WeightsError, submodule_state


def trunk_entry(live) -> tuple[WeightsEntry, bool]:
    """The full weights whose trunk ``live`` (a LiveModel) runs on, and whether they are the shipped ones."""
    if live.entry is None:
        raise WeightsError("this model has no trained weights to learn on top of")
    if live.entry.meta.get("base"):
        return live.entry.base_entry(), bool(live.entry.meta["base"].get("shipped"))
    return live.entry, live.source == SHIPPED


_TRUNK_DIGESTS: LruCache[str, str] = LruCache(256)
"""Weights file sha256 → its trunk's digest (a version per save: 256 are about a day of labelling)."""


def trunk_digest(entry: WeightsEntry) -> str:
    """sha256 of the tensors of ``entry``'s model outside its top (names and bytes): equal for two models whose
    trunks hold equal weights, whatever their tops. Remembered per weights file digest."""
    known = _TRUNK_DIGESTS.get(entry.sha256)
    if known is None:
        model = build_model(entry.model, weights=entry)
        top = submodule_state(model, model.top_modules())
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            if name not in top:
                digest.update(name.encode())
                digest.update(tensor.detach().contiguous().numpy().tobytes())
        known = digest.hexdigest()
        _TRUNK_DIGESTS.put(entry.sha256, known)
    return known


def mask_target(mask: np.ndarray, features: SampleFeatures, mirror: bool) -> torch.Tensor:
    """A corrected mask (H, W) → int64 (1, h, w) at the padded run size (nearest pixel), void (255) in the
    padding; mirrored left to right when ``mirror``."""
    (run_h, run_w), (pad_h, pad_w) = features.run_size, features.padded_size
    rows = np.minimum((np.arange(run_h) * mask.shape[0]) // run_h, mask.shape[0] - 1)
    cols = np.minimum((np.arange(run_w) * mask.shape[1]) // run_w, mask.shape[1] - 1)
    target = np.full((pad_h, pad_w), 255, dtype=np.int64)
    resized = mask[rows][:, cols]
    target[:run_h, :run_w] = resized[:, ::-1] if mirror else resized
    return torch.from_numpy(target)[None]


def run_logits(model: SegmentationModel, features: SampleFeatures) -> torch.Tensor:
    """Logits (1, K, h, w) ``model``'s top makes of view 0 of ``features``, at the run size (padding cut off)."""
    run_h, run_w = features.run_size
    return model.top(features.views[0], features.padded_size)[..., :run_h, :run_w]


def native_mask(model: SegmentationModel, features: SampleFeatures) -> np.ndarray:
    """The class mask (H, W) uint8 ``model``'s top makes of view 0 of ``features``, at the image's size."""
    logits = run_logits(model, features)
    if tuple(logits.shape[-2:]) != features.image_size:
        logits = F.interpolate(logits, size=features.image_size, mode="bilinear", align_corners=False)
    return logits[0].argmax(0).to(torch.uint8).numpy()


def random_window(features: SampleFeatures, view: int, crop: int | None,
                  rng: random.Random) -> tuple[tuple[torch.Tensor, ...], tuple[int, int, int, int]]:
    """View ``view`` of ``features`` cut to a random stride-aligned square of side ``crop`` (None: the whole
    padded input), and that box (top, left, height, width) in input pixels."""
    window = (crop, crop) if crop else features.padded_size
    box = random_box(features.padded_size, window, rng)
    return crop_maps(features.views[view], features.padded_size, *box), box


class TopTrunk:
    """What a learner trains a top on, for one trunk (rebuilt when the trunk changes): the feature cache, the
    training targets and the shipped teacher; ``scorer`` scores tops on the same cache. ``targets`` maps a sample id
    to (its ``updated`` time, [target, mirrored target]).

    Models that share a trunk (``SegmentationModel.shared_trunk``: FCN-8s, U-Net and SegNet over the shared
    Lite0 encoder) and run it with equal weights share one cache, so switching family recomputes nothing.
    ``teacher`` is the trunk's own model when its classifier knows the workspace's classes, else None."""

    def __init__(self, workspace: Workspace, model: str, entry: WeightsEntry, live_model: SegmentationModel) -> None:
        predictor = Predictor(live_model, labels=workspace.labels, mean=entry.mean, std=entry.std,
                              base_size=entry.base_size)
        self.workspace = workspace
        self.key = self.key_of(entry)
        self.cache = FeatureCache(workspace, live_model.shared_trunk or model, predictor, self.key)
        self.targets: dict[str, tuple[float, list[torch.Tensor]]] = {}
        self.scorer = TopScorer(workspace, self.cache)
        self.teacher: SegmentationModel | None = None
        if entry.labels.same_classes(workspace.labels):
            self.teacher = build_model(model, weights=entry).eval()

    @staticmethod
    def key_of(entry: WeightsEntry) -> str:
        """What identifies a trunk's features: the digest of its weights and the scale images are fed at."""
        return f"{trunk_digest(entry)}-{entry.base_size}"

    def training_data(self, samples: list, corrections: Corrections) -> tuple[dict[str, SampleFeatures],
                                                                               dict[str, list[torch.Tensor]]]:
        """Features (with mirrors) and [target, mirrored target] of ``samples`` (SampleMeta of labelled samples),
        by id; targets are rebuilt (from the run's ``corrections``) only for samples saved again since."""
        features = {s.id: self.cache.get(s.id) for s in samples}
        for s in samples:
            if self.targets.get(s.id, (None,))[0] != s.updated:
                mask = corrections.corrected(s.id)
                self.targets[s.id] = (s.updated, [mask_target(mask, features[s.id], m) for m in (False, True)])
        return features, {s.id: self.targets[s.id][1] for s in samples}

    def rescaled_data(self, samples: list, scales: tuple[float, ...],
                      corrections: Corrections) -> tuple[dict[str, SampleFeatures], dict[str, list[torch.Tensor]]]:
        """Like :meth:`training_data` at each of ``scales`` other than 1 (computed now, not cached), keyed
        ``"<id>@<scale>"``: scale augmentation for a longer run than a Save's update."""
        features, targets = {}, {}
        for s in samples:
            image, mask = self.workspace.load_image(s.id), corrections.corrected(s.id)
            for scale in scales:
                if scale != 1.0:
                    key = f"{s.id}@{scale:g}"
                    features[key] = self.cache.compute(image, scale=scale)
                    targets[key] = [mask_target(mask, features[key], m) for m in (False, True)]
        return features, targets

    def unlabelled(self, count: int, new_per_run: int) -> dict[str, SampleFeatures]:
        """Features of up to ``count`` unlabelled images (by id), evenly spread over them; at most
        ``new_per_run`` are computed now, the others come from the cache or wait for a later run."""
        found, computed = {}, 0
        for meta in spread(self.workspace.list_unlabelled(), count):
            cached = self.cache.has(meta.id)
            if cached or computed < new_per_run:
                found[meta.id] = self.cache.get(meta.id, mirrored=False)
                computed += not cached
        return found


class TopScorer:
    """Scores tops on a trunk's cached features (``cache``): confusion matrices against the corrections, and drift
    on unlabelled images. Remembers one model's predictions (the live model's) while it stays the same, so they are
    computed once per live version, not once per update."""

    def __init__(self, workspace: Workspace, cache: FeatureCache) -> None:
        self.workspace, self.cache = workspace, cache
        self._memo: dict[tuple, object] = {}
        self._memo_key = ""

    def _remembered(self, memo: str, key: tuple, compute: Callable[[], object]):
        """``compute()``, kept under ``key`` while ``memo`` (what identifies the model, "" for nothing) stays
        the same: the live model's predictions are computed once per live version, not once per update."""
        if not memo:
            return compute()
        if memo != self._memo_key:
            self._memo, self._memo_key = {}, memo
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @torch.no_grad()
    def confusion(self, model: SegmentationModel, ids: list[str], corrections: Corrections, *,
                  memo: str = "") -> np.ndarray:
        """The (K, K) confusion matrix of ``model``'s top on the samples ``ids`` against their corrected masks in
        ``corrections`` (``memo``: see :meth:`_remembered`)."""
        labels = self.workspace.labels
        matrix = ConfusionMatrix(labels.num_classes, labels.ignore_index)
        with pausable(*model.top_modules()):
            for sample_id in ids:
                mask = self._remembered(memo, ("mask", sample_id),
                                        lambda: native_mask(model, self.cache.get(sample_id, mirrored=False)))
                matrix.update(mask, corrections.corrected(sample_id))
        return matrix.matrix

    @torch.no_grad()
    def drift(self, before: SegmentationModel, after: SegmentationModel, unlabelled: dict[str, SampleFeatures], *,
              memo: str = "") -> float | None:
        """Share in [0, 1] of the ``unlabelled`` images' pixels whose class the tops of ``before`` and ``after``
        disagree on (None without images; ``memo`` keeps ``before``'s predictions, see :meth:`_remembered`)."""
        with pausable(*before.top_modules(), *after.top_modules()):
            return changed_share(
                (self._remembered(memo, ("run", sample_id), lambda: run_logits(before, sample).argmax(1).numpy()),
                 run_logits(after, sample).argmax(1).numpy())
                for sample_id, sample in unlabelled.items())


def trainable_top(model: SegmentationModel) -> list[torch.nn.Parameter]:
    """Freeze ``model`` but its top; the top's parameters."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trained = [p for module in model.top_modules() for p in module.parameters()]
    for parameter in trained:
        parameter.requires_grad_(True)
    return trained


def train_top(student: SegmentationModel, optimizer: torch.optim.Optimizer, *, choose: Callable[[], str],
              features: dict[str, SampleFeatures], targets: dict[str, list[torch.Tensor]],
              unlabelled: dict[str, SampleFeatures], teacher: SegmentationModel | None, distill: float,
              crop: int | None, rng: random.Random, steps: int, deadline: float,
              should_stop: Callable[[], bool] = lambda: False,
              on_step: Callable[[int, float], None] | None = None) -> tuple[int, str]:
    """Up to ``steps`` steps of ``student``'s top (until time.monotonic() passes ``deadline``); each on a window
    of the sample ``choose()`` names (one of its views at random), plus ``distill`` x the KL divergence from
    ``teacher``'s class probabilities on a window of a random ``unlabelled`` image. Gives way to foreground
    work between steps and between layers (:func:`segdemo.priority.pausable`). → (steps done, why it stopped
    early: "" / "stopped" / "time budget")."""
    with pausable(*student.top_modules(), *(teacher.top_modules() if teacher is not None else [])):
        for step in range(steps):
            wait_for_foreground()
            if should_stop():
                return step, "stopped"
            if time.monotonic() > deadline:
                return step, "time budget"
            sample_id = choose()
            sample = features[sample_id]
            view = rng.randrange(len(sample.views))
            maps, (top, left, height, width) = random_window(sample, view, crop, rng)
            target = targets[sample_id][view][:, top:top + height, left:left + width]
            loss = F.cross_entropy(student.top(maps, (height, width)), target, ignore_index=255)
            if unlabelled and teacher is not None and distill:
                maps, (_, _, height, width) = random_window(unlabelled[rng.choice(list(unlabelled))], 0, crop, rng)
                with torch.no_grad():
                    taught = teacher.top(maps, (height, width)).log_softmax(1)
                loss = loss + distill * pixel_kl(student.top(maps, (height, width)).log_softmax(1), taught).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step + 1, loss.item())
        return steps, ""
