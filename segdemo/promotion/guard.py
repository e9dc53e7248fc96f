"""The promotion guard: does a new version go live? Decided on evidence pooled over images.

Both learners (the fast learner after each Save, the Fine-tune job) hand the guard one confusion matrix of the
live model and one of the candidate, each summed over the held-out images (never trained on): the zoo's mIoU
from one matrix, and the pixel error (the share of non-void pixels a person would repaint). A mean of per-image
mIoUs is not used: one small spurious blob of a third class drops an image's own mIoU by a third, which punishes
exactly the step of learning a new class.

Held-out images lag behind what the user works on now, so the guard also takes the classes the live model is
*learning*: classes in the recent corrections that it was never trained on, that are new to the workspace's
corrections and mostly missed, or that it now finds clearly less of than it did on the earlier saves
(test-then-train: each saved sample was scored by the live model before anything trained on it; see
:func:`learning_classes`). Such a class cannot block its own learning: the candidate then only has to keep the
other classes (no IoU loss beyond ``FORGET_TOLERANCE``) and not add more than ``ERROR_TOLERANCE`` of
pixels to repaint on the held-out images. Forgetting elsewhere is refused through ``drift``: the share of pixels
whose class the candidate changes on the workspace's unlabelled images, which no correction speaks for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from segdemo.metrics import class_iou

MIN_IMAGES = 3
"""Fewer held-out images than this are too few to tell a refinement (no class being learned) from noise."""
CLEAR_GAIN = 0.05
"""On fewer than MIN_IMAGES images, a refinement goes live only when mIoU gains this and pixel error falls by
half of it: clearly better even on little evidence."""
GAIN = 0.003
"""A refinement goes live when pooled mIoU gains at least this and the pixel error does not grow, or when the
pixel error falls by at least this and mIoU does not fall by more than TIE."""
TIE = 0.002
"""Changes of pooled mIoU or pixel error within ±TIE count as ties."""
FORGET_TOLERANCE = 0.03
"""While learning a class, the mean IoU of the held-out images' other classes may fall by at most this."""
ERROR_TOLERANCE = 0.02
"""While learning a class, the held-out pixel error may grow by at most this (share of pixels)."""
MAX_DRIFT = 0.08
"""A candidate that changes the class of more than this share of the unlabelled images' pixels, without a class
to learn that would explain it, is refused as forgetting: when the live classifier came with the workspace's
classes (the shipped weights of its label set), whose predictions there are knowledge to keep. A classifier the
workspace trained itself is still learning everywhere: on pets3, 20 corrections, a U-Net version that fixed half
the pixels wrong on the evidence (21.8 → 10.3 %) changed 31 % of the unlabelled pixels, and 0.695 → 0.748 mIoU
on the 280 photos never corrected."""
LEARNING_MIN_SHARE = 0.01
"""A class counts as being learned only where it covers at least this share of the recent corrections' pixels."""
LEARNING_DROP = 0.2
"""... and the live model found a share of its pixels in them lower by more than this than its record: the
share it found on the earlier saves (test-then-train as well)."""
LEARNING_MAX_RECALL = 0.5
"""A class the earlier saves do not show (new to the workspace's corrections) has no record yet: it counts as
being learned while the live model finds less than this share of it."""


def scores(matrix: np.ndarray, classes: list[int] | None = None) -> dict:
    """A (K, K) confusion matrix (rows truth, columns prediction) → ``miou`` over ``classes`` (default: those in
    the truth or the prediction), ``error`` (share of pixels wrong), ``iou`` per class (None where absent)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    iou = class_iou(matrix)
    chosen = [c for c in range(len(iou)) if iou[c] is not None] if classes is None else classes
    values = [iou[c] if iou[c] is not None else 0.0 for c in chosen]
    total = matrix.sum()
    return {"miou": float(np.mean(values)) if values else 0.0,
            "error": float(1 - true_positive.sum() / total) if total else 0.0, "iou": iou}


def learning_classes(recent: np.ndarray, trained: set[int] | None, record: np.ndarray | None = None) -> list[int]:
    """Classes the live model is learning: what changed in the latest saves. ``recent`` and ``record`` are
    confusion matrices (K, K) of the predictions the live model made of the latest saved samples and of the
    earlier ones, each before anything trained on that sample. A class qualifies when it covers at least
    LEARNING_MIN_SHARE of the recent pixels and

    - the live classifier was never trained on it (not in ``trained``; None: trained on every class, as the
      shipped weights of the workspace's label set are), or
    - the record shows it (LEARNING_MIN_SHARE of the record's pixels) and the share of it found fell by more than
      LEARNING_DROP, or
    - the record does not show it (the class is new to the workspace's corrections) and less than
      LEARNING_MAX_RECALL of it was found.

    A class the shipped classifier always finds poorly (CamVid's poles and signs) is therefore "being learned"
    only while the workspace's first corrections show it, not for the rest of the session unless it gets
    clearly worse."""
    recent = np.asarray(recent, dtype=np.float64)
    total = recent.sum()
    if not total:
        return []
    truth = recent.sum(1)
    found = np.diag(recent) / np.maximum(truth, 1)
    record = np.zeros_like(recent) if record is None else np.asarray(record, dtype=np.float64)
    record_truth = record.sum(1)
    record_found = np.diag(record) / np.maximum(record_truth, 1)
    shown = record_truth >= LEARNING_MIN_SHARE * max(record.sum(), 1)

    def changed(c: int) -> bool:
        if trained is not None and c not in trained:
            return True
        if shown[c]:
            return found[c] < record_found[c] - LEARNING_DROP
        return found[c] < LEARNING_MAX_RECALL

    return [c for c in range(len(truth)) if truth[c] / total >= LEARNING_MIN_SHARE and changed(c)]


@dataclass(frozen=True)
class Decision:
    """``verdict``: "new classifier", "learning", "better", "worse", "forgets", "unclear" or "too few".

    ``miou_before``/``miou_after`` and ``error_before``/``error_after``: pooled over the ``images`` held-out
    images (fractions); ``kept_change``: mean IoU change of the classes not being learned; ``drift``: share of
    unlabelled pixels whose class changed (None when there were none); ``learning``: names of the classes
    being learned."""

    promote: bool
    verdict: str
    images: int
    miou_before: float
    miou_after: float
    error_before: float
    error_after: float
    kept_change: float
    drift: float | None = None
    learning: tuple[str, ...] = field(default_factory=tuple)
    recent: int = 0
    """How many of the ``images`` are latest saves the candidate was not trained on (the rest are held out)."""

    @property
    def gain(self) -> float:
        return self.miou_after - self.miou_before

    def to_dict(self) -> dict:
        return {**asdict(self), "gain": self.gain}

    def explain(self, live: str) -> str:
        """Why the candidate did or did not go live, for the UI and the CLI; ``live`` names the live version."""
        heldout = self.images - self.recent
        where = f"{heldout} held-out image{'' if heldout == 1 else 's'}"
        if self.recent:
            where += f" + {self.recent} latest save{'' if self.recent == 1 else 's'} it was not trained on"
        evidence = (f"{'' if self.recent else 'held-out '}mIoU {self.miou_before:.3f} → {self.miou_after:.3f}, "
                    f"pixels wrong {self.error_before * 100:.1f} → {self.error_after * 100:.1f} % on "
                    f"{where}") if self.images else "no held-out image yet"
        if self.drift is not None:
            evidence += f"; {self.drift * 100:.1f} % of unlabelled pixels change"
        learning = ", ".join(self.learning)
        if self.verdict == "new classifier":
            return f"promoted: {live} had never been trained for these classes"
        if self.verdict == "learning":
            return f"{evidence}: promoted, learning {learning} (new, or found clearly less, on your recent saves)"
        if self.verdict == "better":
            return f"{evidence}: better, promoted"
        if self.verdict == "too few":
            kind = "images" if self.recent else "held-out images"
            return (f"{evidence}: too few {kind} to tell (at least {MIN_IMAGES}) — kept {live} live; "
                    "promote anyway?")
        if self.verdict == "forgets":
            return f"{evidence}: forgets what {live} knew — kept {live} live; promote anyway?"
        if self.verdict == "unclear":
            return f"{evidence}: no clear change — kept {live} live; promote anyway?"
        return f"{evidence}: worse — kept {live} live"


def decide(live: np.ndarray, candidate: np.ndarray, *, images: int, names: tuple[str, ...] | list[str],
           learning: list[int] = (), drift: float | None = None, untrained_head: bool = False,
           recent: int = 0, drift_limit: float | None = MAX_DRIFT) -> Decision:
    """Decide on the pooled confusion matrices (K, K) of the live model and the candidate over ``images``
    images: the held-out ones, and ``recent`` latest saves the candidate was not trained on (the live model's
    predictions of those made at save time).

    Promote when the live classifier was never trained ("new classifier"); when classes are being learned
    (``learning``) and the candidate keeps the other classes within FORGET_TOLERANCE and the pixel error within
    ERROR_TOLERANCE ("learning"; with no held-out image yet it is promoted on the recent evidence alone); or,
    with no class being learned, when mIoU gains GAIN without more pixel error, or pixel error falls by GAIN
    without an mIoU loss beyond TIE, on at least MIN_IMAGES images (on fewer, only a clear gain of CLEAR_GAIN),
    and the candidate moves at most ``drift_limit`` of the unlabelled pixels ("better"; None: no limit, for a
    live classifier the workspace trained itself, whose predictions on unlabelled images are only a young
    model's guesses). mIoU is over the classes either model predicts or the truth shows.
    """
    live, candidate = np.asarray(live), np.asarray(candidate)
    if live.shape != candidate.shape or live.ndim != 2 or live.shape[0] != live.shape[1]:
        raise ValueError("live and candidate need confusion matrices of the same (K, K) shape")
    present = [c for c in range(live.shape[0])
               if live[c].sum() or live[:, c].sum() or candidate[c].sum() or candidate[:, c].sum()]
    before, after = scores(live, present), scores(candidate, present)
    kept = [c for c in range(live.shape[0]) if live[c].sum() and c not in learning]
    kept_before, kept_after = scores(live, kept), scores(candidate, kept)
    kept_change = kept_after["miou"] - kept_before["miou"] if kept else 0.0
    miou_gain, error_gain = after["miou"] - before["miou"], before["error"] - after["error"]
    drifted = drift is not None and drift_limit is not None and drift > drift_limit
    if untrained_head:
        verdict = "new classifier"
    elif learning and (not images or kept_change >= -FORGET_TOLERANCE and -error_gain <= ERROR_TOLERANCE):
        verdict = "learning"
    elif learning:
        verdict = "forgets"
    elif images < MIN_IMAGES and not (images and miou_gain >= CLEAR_GAIN and error_gain >= CLEAR_GAIN / 2):
        verdict = "too few"
    elif (miou_gain >= GAIN and error_gain >= -TIE) or (error_gain >= GAIN and miou_gain >= -TIE):
        verdict = "forgets" if drifted else "better"
    elif miou_gain <= TIE and error_gain <= TIE and min(miou_gain, error_gain) < -TIE:
        verdict = "worse"
    else:
        verdict = "unclear"
    return Decision(promote=verdict in ("new classifier", "learning", "better"), verdict=verdict, images=images,
                    miou_before=before["miou"], miou_after=after["miou"], error_before=before["error"],
                    error_after=after["error"], kept_change=kept_change, drift=drift,
                    learning=tuple(names[c] for c in learning), recent=recent)
