"""The labelling queue: which unlabelled image to correct next.

Two strategies: ``"uncertainty"`` (most uncertain first, scored by the live model) and ``"order"`` (import order).
An image's uncertainty is the model's mean *least confidence*, 1 − top-class probability averaged over its pixels
(0 = sure everywhere, up to 1 − 1/K): the same per-pixel quantity the editor outlines as doubtful pixels.

Scores are kept per model in ``WORKSPACE/queue/<model>.json``, each with the weights version that made it. A new live
version (after a Save or a Fine-tune) makes them stale: they are computed again in the background, and until an
image's new score arrives the queue ranks it by its latest one, so "most uncertain first" keeps its meaning while the
model changes save after save. :class:`Scorer` computes them in a background
thread (cancellable); :func:`uncertainty`, :func:`score_images` and :func:`rank_by_uncertainty` are the pure parts.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from segdemo.fileio import atomic_write_text
from segdemo.priority import wait_for_foreground
from segdemo.store import StoreError, Workspace

STRATEGIES = {"uncertainty": "most uncertain first", "order": "in order"}


def uncertainty(prediction_or_logits) -> float:
    """Mean least confidence of one image, in [0, 1 − 1/K].

    Takes a :class:`segdemo.inference.Prediction` (its ``confidence``), a confidence map float (H, W) in [0, 1],
    or logits (K, H, W) as a numpy array or torch tensor (softmax over K is taken here).
    """
    value = getattr(prediction_or_logits, "confidence", prediction_or_logits)
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 3:
        shifted = np.exp(array - array.max(axis=0, keepdims=True))
        array = shifted.max(axis=0) / shifted.sum(axis=0)
    elif array.ndim != 2:
        raise ValueError(f"expected a confidence map (H, W) or logits (K, H, W), got shape {array.shape}")
    return float(1.0 - array.mean()) if array.size else 0.0


def score_images(predictor, images: Sequence, *, cancel: threading.Event | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list[float]:
    """:func:`uncertainty` of each image (RGB uint8 array or path) under ``predictor``; stops early on ``cancel``
    (the list is then shorter)."""
    scores = []
    for index, image in enumerate(images):
        if cancel is not None and cancel.is_set():
            break
        scores.append(uncertainty(predictor.predict(image)))
        if progress is not None:
            progress(index + 1, len(images))
    return scores


def rank_by_uncertainty(predictor, images: Sequence) -> list[int]:
    """Indices into ``images``, most uncertain first (ties keep the input order)."""
    scores = score_images(predictor, images)
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def queue_order(ids: Sequence[str], strategy: str, scores: dict[str, float]) -> list[str]:
    """The unlabelled ``ids`` (in import order) in the order the queue serves them.

    ``"uncertainty"``: scored ids by falling score, then the not yet scored ones in import order; ``"order"``: ids.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    if strategy == "order":
        return list(ids)
    position = {sample_id: index for index, sample_id in enumerate(ids)}
    return sorted(ids, key=lambda i: (i not in scores, -scores.get(i, 0.0), position[i]))


# -- stored scores ------------------------------------------------------------------------------------------------


def _stored(workspace: Workspace, model: str) -> dict[str, tuple[float, str]]:
    """Every stored score of ``model``: id → (score, version that made it); {} when there are none."""
    try:
        data = json.loads(workspace.path("queue", f"{workspace.check_id(model)}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return {}
    scores = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(scores, dict):
        return {}
    stored = {}
    for key, value in scores.items():
        if isinstance(value, list) and len(value) == 2:
            stored[str(key)] = (float(value[0]), str(value[1]))
        elif isinstance(value, (int, float)) and "version" in data:  # the older one-version layout
            stored[str(key)] = (float(value), str(data["version"]))
    return stored


def load_scores(workspace: Workspace, model: str, version: str | None = None) -> dict[str, float]:
    """Scores of ``model``: those made by weights ``version``; with None the latest score of every image,
    whatever version made it."""
    return {k: score for k, (score, made_by) in _stored(workspace, model).items()
            if version is None or made_by == version}


def save_scores(workspace: Workspace, model: str, version: str, scores: dict[str, float]) -> None:
    """Store ``scores`` as made by ``version``, over the stored scores of other images."""
    stored = _stored(workspace, model)
    stored.update({k: (float(v), version) for k, v in scores.items()})
    payload = {"model": model, "scores": {k: [score, made_by] for k, (score, made_by) in stored.items()}}
    path = workspace.path("queue", f"{workspace.check_id(model)}.json")
    atomic_write_text(path, json.dumps(payload, indent=0) + "\n")


@dataclass
class ScorerState:
    status: str = "idle"
    """"idle", "running", "done", "cancelled" or "failed"."""
    done: int = 0
    total: int = 0
    message: str = ""
    started: float = field(default_factory=time.time)


class Scorer:
    """Scores a workspace's unlabelled samples that have no score from ``predictor``'s version, in a thread,
    giving way to foreground work between images (:mod:`segdemo.priority`).

    Scores are saved every few images, so a cancel or a crash keeps what was done.
    """

    SAVE_EVERY = 16

    def __init__(self, workspace: Workspace, model: str, predictor) -> None:
        self.workspace, self.model, self.predictor = workspace, model, predictor
        self.version = predictor.version
        self.state = ScorerState()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Scorer":
        self.state.status = "running"
        self._thread = threading.Thread(target=self.run, name=f"segdemo-scorer-{self.model}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> ScorerState:
        state = self.state
        state.status = "running"
        try:
            known = load_scores(self.workspace, self.model)
            current = load_scores(self.workspace, self.model, self.version)
            pending = [s.id for s in self.workspace.list_unlabelled() if s.id not in current]
            todo = [i for i in pending if i not in known] + [i for i in pending if i in known]  # unscored first
            scores: dict[str, float] = {}
            state.total = len(todo)
            for sample_id in todo:
                wait_for_foreground()
                if self._cancel.is_set():
                    break
                try:
                    image = self.workspace.load_image(sample_id)
                except (StoreError, OSError):
                    continue  # deleted or labelled meanwhile
                scores[sample_id] = uncertainty(self.predictor.predict(image))
                state.done += 1
                if state.done % self.SAVE_EVERY == 0:
                    save_scores(self.workspace, self.model, self.version, scores)
            save_scores(self.workspace, self.model, self.version, scores)
            state.status = "cancelled" if self._cancel.is_set() else "done"
            state.message = f"scored {state.done} of {state.total} images with {self.model} {self.version}"
        except Exception as err:  # reported in the UI; the queue falls back to import order
            state.status, state.message = "failed", f"scoring failed: {err}"
        return state
