"""The promotion guard: does a fine-tuned version go live? Decided on paired, per-image evidence.

Each held-out image is scored by both the live model and the candidate: its mIoU (the zoo's metric, on the
classes the image shows) and its error (the share of its non-void pixels the model gets wrong: what a person
would repaint). The candidate goes live only when the paired mIoU gains say it is better beyond their own
noise, on enough images, and no image got much worse to repaint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MIN_IMAGES = 3
"""Fewer held-out images than this are too few to tell: the candidate is kept but not promoted."""
MAX_REGRESSION = 0.05
"""A candidate that makes any held-out image's error grow by this much (share of pixels) is not promoted."""
TIE = 0.002
"""Per-image mIoU gains within ±TIE count as ties."""


@dataclass(frozen=True)
class Decision:
    """``verdict``: "better", "worse", "unclear", "too few" or "new classifier"; ``gain``: mean per-image mIoU
    gain (> 0 is better) and ``spread`` its standard error; ``wins``/``losses``: images better / worse by more
    than TIE; ``worst``: the largest per-image error increase (share of pixels, ≥ 0)."""

    promote: bool
    verdict: str
    images: int
    gain: float
    spread: float
    wins: int
    losses: int
    worst: float

    def to_dict(self) -> dict:
        return asdict(self)

    def explain(self, live: str) -> str:
        """Why the candidate did or did not go live, for the UI and the CLI; ``live`` names the live version."""
        evidence = (f"{self.gain * 100:+.1f} mIoU points per image on {self.images} held-out image"
                    f"{'' if self.images == 1 else 's'} ({self.wins} better, {self.losses} worse)")
        if self.verdict == "new classifier":
            return f"{evidence}: promoted, the live classifier had never been trained for these classes"
        if self.verdict == "better":
            return f"{evidence}: better beyond noise (±{self.spread * 100:.1f}), promoted"
        if self.verdict == "too few":
            return (f"{evidence}: too few to tell (at least {MIN_IMAGES} needed) — kept {live} live; "
                    "promote anyway?")
        if self.verdict == "unclear":
            reason = (f"one image has {self.worst * 100:.1f} % more pixels wrong" if self.worst > MAX_REGRESSION
                      else f"within noise (±{self.spread * 100:.1f})")
            return f"{evidence}: {reason} — kept {live} live; promote anyway?"
        return f"{evidence}: worse — kept {live} live"


def decide(before_miou: list[float], after_miou: list[float], before_errors: list[float] | None = None,
           after_errors: list[float] | None = None, *, untrained_head: bool = False) -> Decision:
    """Decide on per-image scores in [0, 1] of the live model (``before_*``) and the candidate (``after_*``),
    image by image in the same order; the errors are optional (no regression check without them).

    Promote when the live classifier was never trained (any training beats it), or when there are at least
    MIN_IMAGES images, the mean mIoU gain exceeds one standard error of the paired gains, and no image's error
    grew by more than MAX_REGRESSION. A mean gain ≤ 0 is "worse"; otherwise "unclear" or "too few".
    """
    if len(before_miou) != len(after_miou) or (before_errors or after_errors) and not (
            len(before_errors or ()) == len(after_errors or ()) == len(before_miou)):
        raise ValueError("every list must hold one score per held-out image, in the same order")
    gains = [a - b for b, a in zip(before_miou, after_miou)]
    n = len(gains)
    mean = sum(gains) / n if n else 0.0
    spread = math.sqrt(sum((g - mean) ** 2 for g in gains) / (n - 1) / n) if n > 1 else float("inf")
    wins, losses = sum(g > TIE for g in gains), sum(g < -TIE for g in gains)
    worst = max([0.0] + [a - b for b, a in zip(before_errors or (), after_errors or ())])
    if untrained_head:
        verdict = "new classifier"
    elif n and mean <= 0:
        verdict = "worse"
    elif n < MIN_IMAGES:
        verdict = "too few"
    elif mean > spread and worst <= MAX_REGRESSION:
        verdict = "better"
    else:
        verdict = "unclear"
    return Decision(promote=verdict in ("better", "new classifier"), verdict=verdict, images=n, gain=mean,
                    spread=spread if math.isfinite(spread) else 0.0, wins=wins, losses=losses, worst=worst)
