"""The promotion guard: does a fine-tuned version go live? Decided on paired, per-image evidence.

Each held-out image is scored by both the live model and the candidate: its *error* is the share of its
non-void pixels the model gets wrong (what a person would repaint). The candidate goes live only when the
paired gains say it is better beyond their own noise, on enough images, and no image got much worse.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MIN_IMAGES = 3
"""Fewer held-out images than this are too few to tell: the candidate is kept but not promoted."""
MAX_REGRESSION = 0.05
"""A candidate that makes any held-out image this much worse (share of its pixels) is not promoted."""
TIE = 0.002
"""Per-image gains within ±TIE count as ties."""


@dataclass(frozen=True)
class Decision:
    """``verdict``: "better", "worse", "unclear", "too few" or "new classifier"; ``gain``: mean per-image error
    reduction (share of pixels, > 0 is better) and ``spread`` its standard error; ``wins``/``losses``: images
    better / worse by more than TIE; ``worst``: the largest per-image error increase (≥ 0)."""

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
        evidence = (f"{self.gain * 100:+.1f} % pixels right on {self.images} held-out image"
                    f"{'' if self.images == 1 else 's'} ({self.wins} better, {self.losses} worse)")
        if self.verdict == "new classifier":
            return f"{evidence}: promoted, the live classifier had never been trained for these classes"
        if self.verdict == "better":
            return f"{evidence}: better beyond noise, promoted"
        if self.verdict == "too few":
            return (f"{evidence}: too few to tell (at least {MIN_IMAGES} needed) — kept {live} live; "
                    "promote anyway?")
        if self.verdict == "unclear":
            reason = (f"one image got {self.worst * 100:.1f} % worse" if self.worst > MAX_REGRESSION
                      else f"within noise (±{self.spread * 100:.1f} %)")
            return f"{evidence}: {reason} — kept {live} live; promote anyway?"
        return f"{evidence}: worse — kept {live} live"


def decide(before: list[float], after: list[float], *, untrained_head: bool = False) -> Decision:
    """Decide on per-image errors in [0, 1] of the live model (``before``) and the candidate (``after``),
    image by image in the same order.

    Promote when the live classifier was never trained (any training beats it), or when there are at least
    MIN_IMAGES images, the mean gain exceeds one standard error of the paired gains, and no image got worse by
    more than MAX_REGRESSION. A mean gain ≤ 0 is "worse"; otherwise "unclear" or "too few".
    """
    if len(before) != len(after):
        raise ValueError(f"{len(before)} errors before but {len(after)} after")
    gains = [b - a for b, a in zip(before, after)]
    n = len(gains)
    mean = sum(gains) / n if n else 0.0
    spread = math.sqrt(sum((g - mean) ** 2 for g in gains) / (n - 1) / n) if n > 1 else float("inf")
    wins, losses = sum(g > TIE for g in gains), sum(g < -TIE for g in gains)
    worst = max([0.0] + [-g for g in gains])
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
