"""Fill-in from strokes: after each stroke, a small classifier fitted on this image's painted pixels predicts
every pixel the person has not painted (the pixel classifiers of ilastik and napari-convpaint, on our encoder).

What a stroke trains is the same for every family on the zoo's shared encoder: a 1x1 classifier over the
encoder's stride-8, 16 and 32 maps (the last two resized to stride 8 and concatenated: 40 + 112 + 1280 channels),
whose logits, resized to the model's run size, are **added** to the live model's own logits of the image. It
starts at zero, so before a stroke the fill-in is the live prediction; the steps fit the painted pixels
(cross-entropy, each painted class weighted equally) plus a KL term that keeps the live prediction where no stroke
speaks, on the stride-8 grid, for a live classifier that came with the workspace's classes (the shipped one of its
label set; a classifier the workspace trained itself is young, and holding its guesses kept a new class from
spreading). That term is weighted per live class by the trust the strokes leave it (a class the person keeps
painting over is released). See README for the figures behind both choices. Encoder maps and live logits are computed
once per image (:meth:`StrokeFiller.prepare`), so a re-fit costs only the classifier's steps, whatever the family
(its decoder is never run again). A live classifier that learned nothing (a new label set) adds nothing: the fill-in
then comes from the strokes alone and starts once two classes are painted (:data:`MIN_CLASSES_COLD`).

Measured choice (``python -m segdemo bench-strokes``, see README): re-fitting the whole decoder needs about as
many clicks but takes ~2 s for U-Net; a classifier over the decoder's last map learns little of a new label set
(the street decoders' maps do not carry it); the encoder's maps do.

Painted pixels are the person's: the fill-in is for the others (the editor keeps painted pixels as painted).
A re-fit answers one ``serial`` (the editor's stroke count); one asked for after a newer one arrived is dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.inference import Predictor
from segdemo.learning.losses import pixel_kl

UNPAINTED = 255
"""Value of a pixel the person has not painted (or painted void) in the ``painted`` map a re-fit reads."""
MIN_CLASSES_COLD = 2
"""Classes that must be painted before a classifier that learned nothing fills in (one class would paint all)."""
FEATURE_TAPS = (2, 3, 4)
"""The encoder maps the stroke classifier reads: strides 8, 16 and 32."""


@dataclass(frozen=True)
class StrokeSettings:
    """``steps`` Adam steps per re-fit at ``lr`` (the classifier and its optimiser carry over from stroke to
    stroke on one image); ``keep`` weights the KL term to the live prediction at a stride-8 cell, times the trust
    the strokes leave its live class (:meth:`StrokeFiller.trust`, with ``trust_prior`` agreeing painted pixels,
    at the run size, assumed per class); ``max_points`` painted pixels (at the run size) a step reads at most,
    drawn at random."""

    steps: int = 30
    lr: float = 3e-3
    keep: float = 3.0
    max_points: int = 20_000
    weight_decay: float = 1e-4
    trust_prior: float = 300.0
    seed: int = 0


@dataclass(frozen=True)
class FillIn:
    """One re-fit's answer: ``mask`` uint8 (H, W) class per pixel of the image (painted ones included: the editor
    keeps its own there); ``serial`` the stroke it answers; ``seconds`` the re-fit's time; ``classes`` painted."""

    mask: np.ndarray
    serial: int
    seconds: float
    classes: int


def supports(predictor: Predictor) -> bool:
    """Whether ``predictor``'s model has the encoder maps a stroke classifier reads (the zoo's shared encoder)."""
    return getattr(predictor.model, "shared_trunk", "") == "lite0"


class StrokeFiller:
    """The fill-in of one image in one editor, from the strokes painted on it (see the module docstring).

    ``predictor``: the live model (its folded copy; only its ``trunk`` and ``top`` run, once, in :meth:`prepare`);
    ``image``: RGB uint8 (H, W, 3); ``cold``: the live classifier learned nothing of the workspace's classes (its
    logits are not used); ``segments``: the image's superpixels (int (H, W)), when given and the live prediction is
    not held the fill-in gives each superpixel one class (:func:`snap_to_segments`: boundaries follow the image's
    edges, not the stride-8 grid; a held live prediction keeps its decoder's own boundaries, thin poles included);
    ``hold``: keep the live prediction where no stroke speaks (a KL term, see :meth:`_held`): for a live
    classifier that came with the workspace's classes (:func:`segdemo.promotion.evidence.came_with_classes`, the
    rule the guard's drift limit follows); one the workspace trained itself is not held.
    Thread-safe: re-fits run one at a time, newest first.
    """

    def __init__(self, predictor: Predictor, image: np.ndarray, *, cold: bool,
                 segments: np.ndarray | None = None, hold: bool = False,
                 settings: StrokeSettings | None = None) -> None:
        if not supports(predictor):
            raise ValueError(f"fill-in needs a model on the shared encoder; {predictor.name or 'this model'} "
                             "has none")
        self.predictor, self.image, self.cold, self.segments = predictor, image, cold, segments
        self.hold = hold and not cold
        self.settings = settings or StrokeSettings()
        self.num_classes = predictor.labels.num_classes
        self.latest = 0
        self._prepared = threading.Lock()
        self._fitting = threading.Lock()
        self._features: torch.Tensor | None = None
        self._live: torch.Tensor | None = None
        self._live_grid: torch.Tensor | None = None
        self._live_points: torch.Tensor | None = None
        self._grid = (0, 0)
        self._run_size = (0, 0)
        self._padded_size = (0, 0)
        self._weight: torch.Tensor | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self.prepare_seconds = 0.0

    @torch.no_grad()
    def _compute(self) -> None:
        started = time.perf_counter()
        model = self.predictor.model
        padded, run_size = model.padded_input(self.predictor.model_input(self.image))
        maps = model.trunk(padded)
        taps = [maps[i].float() for i in FEATURE_TAPS]
        size = taps[0].shape[-2:]
        resized = [t if t.shape[-2:] == size else F.interpolate(t, size=size, mode="bilinear", align_corners=False)
                   for t in taps]
        features = torch.cat(resized, 1)[0]
        self._features = features.reshape(features.shape[0], -1).contiguous()  # (C, h8 * w8)
        self._grid = tuple(size)
        self._run_size, self._padded_size = tuple(run_size), tuple(padded.shape[-2:])
        if not self.cold:
            live = model.top(maps, self._padded_size).float()  # (1, K, Hp, Wp)
            self._live = live[0, :, :run_size[0], :run_size[1]].contiguous()
            self._live_grid = F.interpolate(live, size=size, mode="area")[0].reshape(self.num_classes, -1)
        self.prepare_seconds = time.perf_counter() - started

    def prepare(self) -> "StrokeFiller":
        """Compute the encoder maps and the live logits of the image once (later calls return at once)."""
        with self._prepared:
            if self._features is None:
                self._compute()
        return self

    def note(self, serial: int) -> None:
        """A stroke numbered ``serial`` was painted: re-fits for older strokes may stop."""
        self.latest = max(self.latest, serial)

    def refit(self, serial: int, painted: np.ndarray) -> FillIn | None:
        """Re-fit on ``painted`` (uint8 (H, W): the class of each painted pixel, :data:`UNPAINTED` elsewhere) and
        fill in → FillIn; None when a newer stroke arrived first (stale) or nothing can be filled in yet (a cold
        classifier with fewer than :data:`MIN_CLASSES_COLD` painted classes, or no painted pixel)."""
        self.note(serial)
        if painted.shape != self.image.shape[:2]:
            raise ValueError(f"painted map is {painted.shape[1]}x{painted.shape[0]}, the image "
                             f"{self.image.shape[1]}x{self.image.shape[0]}")
        classes = np.unique(painted[painted < self.num_classes])
        if len(classes) < (MIN_CLASSES_COLD if self.cold else 1):
            return None
        self.prepare()
        with self._fitting:
            if serial < self.latest:
                return None
            started = time.perf_counter()
            points, targets = self._painted_points(painted)
            self._fit(points, targets, serial)
            if serial < self.latest:
                return None
            mask = self._predict()
            return FillIn(mask, serial, time.perf_counter() - started, len(classes))

    def _painted_points(self, painted: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Painted pixels mapped to the run size (each run pixel once, the last painted class wins): their
        normalised (x, y) in the padded input for grid_sample (N, 2; the stride-8 grid spans the same padded input),
        and classes (N,) int64."""
        rows, cols = np.nonzero(painted < self.num_classes)
        labels = painted[rows, cols]
        (run_h, run_w), (pad_h, pad_w) = self._run_size, self._padded_size
        height, width = painted.shape
        run_rows = np.minimum(((rows + 0.5) * run_h / height).astype(np.int64), run_h - 1)
        run_cols = np.minimum(((cols + 0.5) * run_w / width).astype(np.int64), run_w - 1)
        flat = run_rows * run_w + run_cols
        flat, first = np.unique(flat[::-1], return_index=True)
        labels = labels[::-1][first]
        y, x = flat // run_w, flat % run_w
        grid = np.stack([(x + 0.5) / pad_w * 2 - 1, (y + 0.5) / pad_h * 2 - 1], 1).astype(np.float32)
        self._live_points = None
        if self._live is not None:
            self._live_points = self._live[:, torch.from_numpy(y), torch.from_numpy(x)]  # (K, N)
        return torch.from_numpy(grid), torch.from_numpy(labels.astype(np.int64))

    def _delta_grid(self, weight: torch.Tensor) -> torch.Tensor:
        """The classifier's logits on the stride-8 grid: (1, K, h8, w8)."""
        return (weight[:, :-1] @ self._features + weight[:, -1:]).reshape(1, self.num_classes, *self._grid)

    def _fit(self, points: torch.Tensor, targets: torch.Tensor, serial: int) -> None:
        settings = self.settings
        if self._weight is None:
            self._weight = torch.zeros(self.num_classes, self._features.shape[0] + 1, requires_grad=True)
            self._optimizer = torch.optim.AdamW([self._weight], lr=settings.lr, weight_decay=settings.weight_decay)
        counts = torch.bincount(targets, minlength=self.num_classes).float()
        class_weight = torch.where(counts > 0, counts.sum() / (counts.clamp(min=1) * (counts > 0).sum()), 0.0)
        generator = torch.Generator().manual_seed(settings.seed + serial)
        held = self._held(targets)
        live = self._live_grid.log_softmax(0) if held is not None else None
        for _ in range(settings.steps):
            if serial < self.latest:
                return
            chosen = slice(None)
            if len(targets) > settings.max_points:
                chosen = torch.randperm(len(targets), generator=generator)[:settings.max_points]
            delta_grid = self._delta_grid(self._weight)
            at = F.grid_sample(delta_grid, points[chosen][None, None], mode="bilinear",
                               align_corners=False)[0, :, 0]  # (K, n)
            logits = at if self._live_points is None else at + self._live_points[:, chosen]
            loss = F.cross_entropy(logits.T, targets[chosen], weight=class_weight)
            if held is not None:
                mixed = (self._live_grid + delta_grid.reshape(self.num_classes, -1)).log_softmax(0)
                loss = loss + (held * pixel_kl(mixed, live, dim=0)).mean()
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._optimizer.step()

    def _held(self, targets: torch.Tensor) -> torch.Tensor | None:
        """Weight (h8 * w8,) of the KL term to the live prediction at each stride-8 cell: ``keep`` x the trust the
        strokes leave the cell's live class; None (no term) unless :attr:`hold`."""
        if not self.hold or self._live_grid is None or not self.settings.keep:
            return None
        return self.settings.keep * self.trust(targets)[self._live_grid.argmax(0)]

    def trust(self, targets: torch.Tensor) -> torch.Tensor:
        """float (K,) in [0, 1]: for each class, the share of the painted pixels the live model called that class
        that the person painted it too, with ``StrokeSettings.trust_prior`` agreeing pixels assumed (a class no
        stroke touched is trusted whole). ``targets``: the painted pixels' classes, in :meth:`_painted_points`'s
        order."""
        prior = self.settings.trust_prior
        called = self._live_points.argmax(0)
        total = torch.bincount(called, minlength=self.num_classes).float()
        agree = torch.bincount(called[targets == called], minlength=self.num_classes).float()
        return (agree + prior) / (total + prior).clamp(min=1e-6)

    @torch.no_grad()
    def _predict(self) -> np.ndarray:
        """The live logits plus the classifier's, at the image's size → uint8 (H, W) classes."""
        run_h, run_w = self._run_size
        delta = F.interpolate(self._delta_grid(self._weight), size=self._padded_size, mode="bilinear",
                              align_corners=False)[0, :, :run_h, :run_w]
        logits = delta if self._live is None else delta + self._live
        height, width = self.image.shape[:2]
        if (run_h, run_w) != (height, width):
            logits = F.interpolate(logits[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        if self.segments is not None and not self.hold:
            return snap_to_segments(logits.softmax(0).numpy(), self.segments)
        return logits.argmax(0).to(torch.uint8).numpy()


def snap_to_segments(probability: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Class probabilities float (K, H, W) → uint8 (H, W): each superpixel (``segments`` int (H, W) labels
    0..N-1) whole takes the class of highest summed probability over its pixels."""
    flat = segments.ravel()
    count = int(flat.max()) + 1
    sums = np.stack([np.bincount(flat, weights=p.ravel(), minlength=count) for p in probability])
    return sums.argmax(0).astype(np.uint8)[segments]
