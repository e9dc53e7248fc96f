"""Picking a few items evenly from many: the two rules the learners and the simulated sessions use.

:func:`spread` keeps the items' order and steps through them from the first (the learners: unlabelled images for
distillation and drift, evidence samples); :func:`evenly_spaced` sorts ids and always includes the first and the
last (the benchmarks' "spread" pick of a split, so a protocol's images are the same whatever the listing order).
"""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def spread(items: Sequence[T], count: int) -> list[T]:
    """Up to ``count`` of ``items`` in their order: index floor(i * len / count) for i = 0 … count-1 (all of them
    when there are no more than ``count``)."""
    step = max(1.0, len(items) / max(count, 1))
    return [items[int(i * step)] for i in range(min(count, len(items)))]


def evenly_spaced(ids: Sequence[str], n: int) -> list[str]:
    """``n`` ids spread over the sorted list: index round(i * (len - 1) / (n - 1)) for i = 0 … n-1; ValueError
    when ``n`` is not in 1 … len(ids)."""
    ordered = sorted(ids)
    if n < 1 or n > len(ordered):
        raise ValueError(f"cannot pick {n} of {len(ordered)} ids")
    if n == 1:
        return [ordered[0]]
    return list(dict.fromkeys(ordered[round(i * (len(ordered) - 1) / (n - 1))] for i in range(n)))
