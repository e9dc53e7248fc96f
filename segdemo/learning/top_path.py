"""The Fine-tune job's top path: train the model's top longer than a Save does, on cached features, and prove it.

With fewer corrected samples than ``FinetuneSettings.encoder_after`` the job trains only the top (each family's
whole decoder on the shared Lite0 encoder), never the encoder: a few samples move a whole network toward the
block of images just seen (see README, "The Fine-tune button"). The run

1. starts from the trunk's own top (the shipped one; a new classifier for another label set), not from the live
   top the fast learner trained, so that it can be checked on samples it has not seen;
2. trains on the training samples' cached features, windows and mirrors (:mod:`segdemo.learning.top_training`), plus a
   KL term to the *live* model on the workspace's unlabelled images: what the live model knows about images
   no correction speaks for (a block of cats must not undo what it learned of dogs) is kept;
3. in two phases: first without the latest ``recent`` training samples, which it is then scored on against the
   predictions the live model made of them at save time (test-then-train: both saw only earlier samples), then
   with all of them. The guard judges on those recent samples pooled with the held-out ones.

:func:`refine_top` trains and gathers the evidence; :func:`finetune_top` is the path as the job runs it: that, then
the one judge and publish every learner calls (:mod:`segdemo.promotion.judge`).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from segdemo.corrections import Corrections
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.top_training import TopTrunk, train_top, trainable_top, trunk_entry
from segdemo.learning.train import machine_description
from segdemo.metrics import matrix_metrics
from segdemo.models import SegmentationModel, build_model
from segdemo.promotion.evidence import saved_matrix
from segdemo.promotion.judge import NewVersion, judge, publish_version
from segdemo.promotion.live import LiveModel
from segdemo.store import Workspace
from segdemo.weights import WeightsEntry, save_partial_weights

if TYPE_CHECKING:
    from segdemo.learning.finetune import JobState


@dataclass
class TopRefinement:
    """What the top path made and the evidence for the guard (confusion matrices (K, K), rows truth).

    ``heldout_before``/``heldout_after``: the live model and the candidate on the held-out samples;
    ``recent_before``/``recent_after``: the live model's predictions at save time and the first-phase candidate
    on the ``recent_ids`` training samples; ``drift``: share of unlabelled pixels the candidate changes."""

    model: SegmentationModel
    base: WeightsEntry
    base_shipped: bool
    steps: int
    stopped: str
    lr: float
    recent_ids: list[str]
    heldout_before: np.ndarray
    heldout_after: np.ndarray
    recent_before: np.ndarray
    recent_after: np.ndarray
    drift: float | None
    unlabelled: int


def refine_top(workspace: Workspace, model_name: str, live, settings, *, should_stop: Callable[[], bool],
               on_step: Callable[[int, float, float], None], on_message: Callable[[str], None],
               corrections: Corrections | None = None) -> TopRefinement:
    """Run the top path for ``model_name`` whose live model is ``live`` (a LiveModel), with ``settings`` (a
    FinetuneSettings) on the run's ``corrections`` (None: taken now); ``on_step(step, loss, progress)`` reports
    progress in [0, 1]. ``stopped`` is
    "cancelled" when ``should_stop`` said so (the evidence is then empty), "time budget" when the budget cut
    the steps short, else ""."""
    labels = workspace.labels
    base, base_shipped = trunk_entry(live)
    on_message("reading the features of the corrected images")
    trunk = TopTrunk(workspace, model_name, base, live.model)
    corrections = corrections or Corrections(workspace)
    train, heldout = corrections.train, [s.id for s in corrections.heldout]
    features, targets = trunk.training_data(train, corrections)
    if any(scale != 1.0 for scale in settings.top.scales):
        on_message("computing the corrected images' features at other scales")
        rescaled, rescaled_targets = trunk.rescaled_data(train, settings.top.scales, corrections)
        features, targets = {**features, **rescaled}, {**targets, **rescaled_targets}
    teacher = None if live.new_head else copy.deepcopy(live.model).eval()
    unlabelled = trunk.unlabelled(settings.unlabelled, settings.unlabelled) if teacher is not None else {}

    torch.manual_seed(settings.seed)
    student = build_model(model_name, num_classes=labels.num_classes, weights=base)
    same_classes = base.labels.same_classes(labels)
    if not same_classes:
        student.reset_classifier(labels.num_classes)
    student.eval()
    lr = settings.top.lr if same_classes else settings.top.new_lr
    optimizer = torch.optim.AdamW(trainable_top(student), lr=lr, weight_decay=1e-4)
    rng = random.Random(settings.seed)

    ids = [s.id for s in train]
    recent_count = min(settings.top.recent, len(ids) // 4)
    early, recent = ids[:len(ids) - recent_count], ids[len(ids) - recent_count:]
    total = int(min(settings.top.max_steps, max(settings.top.min_steps, settings.top.steps_per_sample * len(ids))))
    first = round(total * len(early) / len(ids)) if recent else total
    started, budget = time.monotonic(), settings.budget(len(ids))

    def report(offset: int) -> Callable[[int, float], None]:
        return lambda done, loss: on_step(offset + done, loss, (offset + done) / total)

    on_message(f"training the top on {len(early)} samples" + (f", then all {len(ids)}" if recent else ""))
    common = dict(features=features, targets=targets, unlabelled=unlabelled, teacher=teacher,
                  distill=settings.top.distill, crop=settings.top.crop, rng=rng, should_stop=should_stop)

    def view(sample_id: str) -> str:
        """``sample_id`` at one of ``settings.top.scales``, drawn at random (a key of ``features``)."""
        scales = settings.top.scales
        scale = rng.choice(scales) if len(scales) > 1 else scales[0]
        return sample_id if scale == 1.0 else f"{sample_id}@{scale:g}"

    done, stopped = train_top(student, optimizer, choose=lambda: view(rng.choice(early)), steps=first,
                              deadline=started + budget * first / total, on_step=report(0), **common)
    recent_before = recent_after = np.zeros((labels.num_classes, labels.num_classes), dtype=np.int64)
    if stopped != "stopped" and recent:
        on_message(f"scoring it on the {len(recent)} latest samples it has not seen")
        student.eval()
        recent_after = trunk.scorer.confusion(student, recent, corrections)
        recent_before = saved_matrix(corrections, [corrections.by_id[i] for i in recent])
        more, stopped_late = train_top(
            student, optimizer, choose=lambda: view(rng.choice(recent) if rng.random() < 0.5 else rng.choice(ids)),
            steps=total - first, deadline=started + budget, on_step=report(done), **common)
        done, stopped = done + more, stopped or stopped_late
    if stopped == "stopped":
        empty = np.zeros((labels.num_classes, labels.num_classes), dtype=np.int64)
        return TopRefinement(student, base, base_shipped, done, "cancelled", lr, recent, empty, empty, empty, empty,
                             None, len(unlabelled))
    on_message("measuring the new version on the held-out samples and the unlabelled images")
    student.eval()
    return TopRefinement(student, base, base_shipped, done, stopped, lr, recent,
                         trunk.scorer.confusion(live.model, heldout, corrections),
                         trunk.scorer.confusion(student, heldout, corrections),
                         recent_before, recent_after, trunk.scorer.drift(live.model, student, unlabelled), len(unlabelled))


def finetune_top(workspace: Workspace, model: str, live: LiveModel, settings: FinetuneSettings, *,
                 train_ids: list[str], heldout_ids: list[str], state: "JobState",
                 should_stop: Callable[[], bool]) -> NewVersion:
    """The top path as the job runs it: :func:`refine_top` on ``settings.top.threads`` threads, judged on the
    held-out samples and the latest saves, written as a partial version and promoted if the guard says so;
    progress goes to ``state``. ``version`` None when ``should_stop`` cancelled it."""
    labels = workspace.labels
    started = time.monotonic()
    corrections = Corrections(workspace)
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.top.threads)
    try:
        refined = refine_top(workspace, model, live, settings, should_stop=should_stop,
                             on_step=lambda step, loss, progress: state.step(step, loss, progress, "training the top"),
                             on_message=state.say, corrections=corrections)
    finally:
        torch.set_num_threads(threads)
    seconds = time.monotonic() - started

    def metrics_of(matrix: np.ndarray) -> dict:
        return matrix_metrics(matrix, labels.names, labels.ignore_index)

    heldout_before = metrics_of(refined.heldout_before)
    if refined.stopped == "cancelled":
        return NewVersion(model, None, False, None, live.source, live.described, seconds, train_ids, heldout_ids,
                          "cancelled", before=heldout_before)
    before_matrix = refined.heldout_before + refined.recent_before
    after_matrix = refined.heldout_after + refined.recent_after
    decision = judge(workspace, model, live, before_matrix, after_matrix,
                     images=len(heldout_ids) + len(refined.recent_ids), drift=refined.drift,
                     recent=len(refined.recent_ids), corrections=corrections)
    before, after = metrics_of(before_matrix), metrics_of(after_matrix)
    metrics = {"heldout_before": heldout_before, "heldout": metrics_of(refined.heldout_after),
               "recent_before": metrics_of(refined.recent_before), "recent": metrics_of(refined.recent_after),
               "evidence_before": before, "evidence": after}
    recipe = {"settings": asdict(settings), "path": "top", "lr": refined.lr, "steps": refined.steps,
              "unlabelled_images": refined.unlabelled, "machine": machine_description()}

    def write(path, version: str) -> None:
        save_partial_weights(refined.model, refined.model.top_modules(), path, base=refined.base,
                             shipped=refined.base_shipped, model_name=model, labels=labels, version=version,
                             meta={"parent": live.source, "job": "top", "train_ids": train_ids,
                                   "heldout_ids": heldout_ids, "recent_ids": refined.recent_ids,
                                   "metrics": metrics, "seconds": round(seconds, 2),
                                   "guard": {**decision.to_dict(), "explanation": decision.explain(live.described)},
                                   "stopped": refined.stopped or "steps done", "created": time.time(),
                                   "recipe": recipe})

    version = publish_version(workspace, model, decision, write)
    return NewVersion(model, version, decision.promote, decision, live.source, live.described, seconds, train_ids,
                      heldout_ids, refined.stopped or "steps done", before=before, after=after,
                      recent_ids=refined.recent_ids, steps=refined.steps)
