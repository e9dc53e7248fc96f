"""What a workspace can tell the guard beyond its held-out images: what the user is correcting now.

Every corrected sample keeps the prediction the live model made before anyone trained on it (``predictions/``)
beside the user's mask (``masks/``): scored against each other they are test-then-train evidence of how the
live model did on what the user works on, pooled over the latest saves.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from segdemo.corrections import Corrections
from segdemo.lru import LruCache
from segdemo.metrics import ConfusionMatrix
from segdemo.picking import spread
from segdemo.promotion.guard import learning_classes
from segdemo.store import SampleMeta, StoreError, Workspace
from segdemo.weights import WeightsEntry, shipped_entries

RECENT_SAMPLES = 5
"""How many of the latest corrected samples speak for "what the user is correcting now"."""

SAMPLE_MATRICES_KEPT = 20_000
"""Per-sample matrices kept in memory, least recently used dropped first (11 classes: about 1 kB each)."""
_SAMPLE_MATRICES: LruCache[tuple[str, str, float], np.ndarray] = LruCache(SAMPLE_MATRICES_KEPT)


def sample_matrix(corrections: Corrections, meta: SampleMeta) -> np.ndarray | None:
    """The (K, K) confusion matrix of one corrected sample (rows: the user's mask, columns: the model's prediction
    at save time), computed once per save and kept while it is among the :data:`SAMPLE_MATRICES_KEPT` most
    recently used; None when its masks cannot be read."""
    workspace = corrections.workspace
    key = (str(workspace.root), meta.id, meta.updated)
    cached = _SAMPLE_MATRICES.get(key)
    if cached is None:
        labels = workspace.labels
        matrix = ConfusionMatrix(labels.num_classes, labels.ignore_index)
        try:
            prediction, corrected = corrections.masks(meta.id)
        except (StoreError, OSError, ValueError):
            return None
        matrix.update(prediction, corrected)
        cached = matrix.matrix.astype(np.int64)
        _SAMPLE_MATRICES.put(key, cached)
    return cached


def saved_matrix(corrections: Corrections, metas: list[SampleMeta]) -> np.ndarray:
    """:func:`sample_matrix` summed over the samples ``metas``."""
    labels = corrections.workspace.labels
    total = np.zeros((labels.num_classes, labels.num_classes), dtype=np.int64)
    for meta in metas:
        matrix = sample_matrix(corrections, meta)
        if matrix is not None:
            total += matrix
    return total


def recent_matrix(corrections: Corrections, *, samples: int = RECENT_SAMPLES) -> np.ndarray:
    """:func:`saved_matrix` over the latest ``samples`` corrected samples, whatever their split."""
    return saved_matrix(corrections, corrections.saved[-samples:])


def record_matrix(corrections: Corrections, *, recent: int = RECENT_SAMPLES) -> np.ndarray:
    """:func:`saved_matrix` over the corrected samples older than the latest ``recent``: the live lineage's
    record."""
    return saved_matrix(corrections, corrections.saved[:max(0, len(corrections.saved) - recent)])


def learning_evidence(corrections: Corrections, trained: set[int] | None) -> list[int]:
    """The classes being learned (:func:`segdemo.promotion.guard.learning_classes`) from the workspace's saves."""
    return learning_classes(recent_matrix(corrections), trained, record_matrix(corrections))


def came_with_classes(workspace: Workspace, model: str) -> bool:
    """Whether ``model``'s shipped classifier came with ``workspace``'s label set: its predictions where no one
    corrected are knowledge to keep (a classifier the workspace trained itself gives only a young model's guesses
    there)."""
    shipped = shipped_entries().get(model)
    return shipped is not None and shipped.labels.same_classes(workspace.labels)


def trained_classes(corrections: Corrections, model: str, entry: WeightsEntry | None, *,
                    new_head: bool) -> set[int] | None:
    """Classes the live classifier of ``model`` (version ``entry``; None: shipped) was trained on. None means
    all of them: the shipped weights come with the workspace's label set. Otherwise the classes in the masks of
    the samples its lineage trained on (``train_ids`` of each version; read from their :func:`sample_matrix`);
    empty for an untrained classifier."""
    workspace = corrections.workspace
    if new_head:
        return set()
    if came_with_classes(workspace, model):
        return None
    chain = [] if entry is None else [entry] + workspace.lineage(model, str(entry.meta.get("parent", "")))
    trained_ids = {sample_id for version in chain for sample_id in version.meta.get("train_ids", [])}
    classes: set[int] = set()
    for sample_id in sorted(trained_ids):
        meta = corrections.by_id.get(sample_id)
        matrix = sample_matrix(corrections, meta) if meta is not None else None
        if matrix is not None:
            classes.update(int(c) for c in np.flatnonzero(matrix.sum(1)))
    return classes


DRIFT_IMAGES = 20
"""How many unlabelled images (evenly spread over them) measure how far a candidate moves the predictions."""


def prediction_drift(workspace: Workspace, before, after, *, images: int = DRIFT_IMAGES) -> float | None:
    """Share in [0, 1] of pixels whose predicted class differs between the Predictors ``before`` (the live
    model) and ``after`` (a candidate) on up to ``images`` of the workspace's unlabelled images, which no
    correction speaks for; None when it has none."""
    pool = workspace.list_unlabelled()
    if not pool:
        return None

    def masks():
        for meta in spread(pool, images):
            try:
                image = workspace.load_image(meta.id)
            except (StoreError, OSError):
                continue
            yield before.predict(image).mask, after.predict(image).mask

    return changed_share(masks())


def changed_share(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """The drift of a candidate: the share in [0, 1] of pixels whose class differs between the two masks of each
    pair (the live model's, the candidate's; any equal shapes), pooled over the pairs; None without pixels."""
    changed = total = 0
    for a, b in pairs:
        changed += int((a != b).sum())
        total += a.size
    return changed / total if total else None
