"""How a new version is judged and published: the one place every learner (the fast learner after a Save, the
Fine-tune job's top path and its whole-network path) hands its candidate to.

:func:`judge` gathers what the guard (:mod:`segdemo.promotion.guard`, pure policy) decides on besides the two
pooled confusion matrices: the classes being learned (:mod:`segdemo.promotion.evidence`), whether the live classifier
is untrained, and the drift limit, which applies only where the live classifier came with the workspace's classes
(:func:`segdemo.promotion.evidence.came_with_classes`). :func:`publish_version` writes the candidate as the next
version under the workspace lock and makes it live when the guard promoted it. Every learner reports its run as
one :class:`NewVersion`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from segdemo.corrections import Corrections
from segdemo.promotion.evidence import learning_evidence, trained_classes
from segdemo.promotion.guard import MAX_DRIFT, Decision, decide
from segdemo.store import Workspace


@dataclass
class NewVersion:
    """One learner's run: the fast learner's update after a Save, or a Fine-tune press on either path.

    ``version`` None when nothing was written (nothing to learn, stopped for a newer save, cancelled: ``stopped``
    says which); ``parent`` the live version it started from and ``live_name`` how messages name it; ``seconds`` the
    whole run and ``train_seconds`` its training steps. ``before``/``after``: metrics of the live model and the
    candidate on the evidence the guard judged (the job's; the fast learner's decision holds its figures);
    ``recent_ids`` the latest saves scored test-then-train (the top path). ``top``: the fast learner's trained top
    (tensors by name, and the trunk key it was trained on), where its next update may continue from."""

    model: str
    version: str | None
    promoted: bool
    decision: Decision | None
    parent: str
    live_name: str
    seconds: float
    train_ids: list[str] = field(default_factory=list)
    heldout_ids: list[str] = field(default_factory=list)
    stopped: str = ""
    before: dict | None = None
    after: dict | None = None
    recent_ids: list[str] = field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0
    top: dict | None = None

    @property
    def samples(self) -> int:
        """How many training samples it learned from."""
        return len(self.train_ids)


def judge(workspace: Workspace, model: str, live, before: np.ndarray, after: np.ndarray, *, images: int,
          drift: float | None = None, recent: int = 0, corrections: Corrections | None = None) -> Decision:
    """The guard's decision on a candidate of ``model`` against ``live`` (a :class:`segdemo.promotion.live.LiveModel`):
    ``before`` and ``after`` the (K, K) confusion matrices of the live model and the candidate pooled over
    ``images`` evidence images (``recent`` of them latest saves scored test-then-train); ``drift`` the share of
    unlabelled pixels the candidate changes (None: not measured); ``corrections`` the run's snapshot of the
    workspace's corrections (None: taken now)."""
    corrections = corrections or Corrections(workspace)
    trained = trained_classes(corrections, model, live.entry, new_head=live.new_head)
    return decide(before, after, images=images, names=workspace.labels.names,
                  learning=learning_evidence(corrections, trained), drift=drift, untrained_head=live.new_head,
                  recent=recent, drift_limit=MAX_DRIFT if trained is None else None)


def publish_version(workspace: Workspace, model: str, decision: Decision,
                    write: Callable[[Path, str], None]) -> str:
    """Write a candidate as ``model``'s next version and make it live when ``decision`` promotes it → the version.
    ``write(path, version)`` writes the weights file ``path`` (its entry JSON beside it) named ``version``; both
    happen under the workspace lock, so two learners never take the same version."""
    with workspace.version_slot(model) as version:
        write(workspace.checkpoint_dir(model) / f"{version}.safetensors", version)
        if decision.promote:
            workspace.set_live(model, version)
    return version
