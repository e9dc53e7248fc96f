"""One run's snapshot of a workspace's corrections: which samples are in which split, and their masks, each read
from disk at most once.

A learner takes one :class:`Corrections` when its update starts and hands it to everything that reads masks during
that update: the training targets, the scoring on held-out samples and the learning evidence. A sample saved again
after the snapshot was taken is seen as it was (the update that follows the new save sees the new mask).
"""

from __future__ import annotations

import threading

import numpy as np

from segdemo.store import SampleMeta, Workspace


class Corrections:
    """The corrected samples of ``workspace`` as listed now.

    ``saved``: every corrected sample, oldest save first (``(updated, id)``); ``train``: those in the train split,
    in that order; ``heldout``: those held out, in the workspace's listing order (created, id).
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        listed = workspace.list_samples()
        self.by_id: dict[str, SampleMeta] = {s.id: s for s in listed}
        self.saved = sorted(listed, key=lambda s: (s.updated, s.id))
        self.train = [s for s in self.saved if s.split == "train"]
        self.heldout = [s for s in listed if s.split == "heldout"]
        self._masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def masks(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(the model's prediction at save time, the corrected mask) of ``sample_id``, uint8 (H, W) class indices
        (255 = void); read on first use. StoreError / OSError when the sample is gone or unreadable."""
        with self._lock:
            known = self._masks.get(sample_id)
        if known is None:
            prediction, corrected, _ = self.workspace.load_masks(sample_id)
            known = (prediction, corrected)
            with self._lock:
                self._masks[sample_id] = known
        return known

    def corrected(self, sample_id: str) -> np.ndarray:
        """The corrected mask of ``sample_id`` (see :meth:`masks`)."""
        return self.masks(sample_id)[1]
