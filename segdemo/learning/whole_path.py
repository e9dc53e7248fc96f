"""The Fine-tune job's whole-network path (from ``FinetuneSettings.encoder_after`` training samples on): train the
whole live network on the workspace's ``train`` samples with :func:`segdemo.learning.train.fit`, judged on the
held-out samples (by then a fifth of the samples) through the one judge and publish every learner calls
(:mod:`segdemo.promotion.judge`)."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from segdemo.data import BASE_SIZE, Augment, SegmentationDataset
from segdemo.inference import Predictor
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.train import TrainConfig, cpu_has_native_bf16, evaluate, fit, machine_description
from segdemo.models import SegmentationModel
from segdemo.models.fuse import fold_batchnorm
from segdemo.picking import spread
from segdemo.promotion.evidence import came_with_classes, prediction_drift
from segdemo.promotion.judge import NewVersion, judge, publish_version
from segdemo.promotion.live import LiveModel
from segdemo.store import Workspace
from segdemo.weights import save_weights

if TYPE_CHECKING:
    from segdemo.learning.finetune import JobState


def finetune_whole(workspace: Workspace, model_name: str, live: LiveModel, settings: FinetuneSettings, *,
                   train_ids: list[str], heldout_ids: list[str], state: "JobState",
                   should_stop: Callable[[], bool]) -> NewVersion:
    """Train the whole of ``live.model`` (in place) on ``train_ids``, judged on ``heldout_ids``, written as a full
    version and promoted if the guard says so; progress goes to ``state``. ``version`` None when ``should_stop``
    cancelled it."""
    whole = settings.whole
    parent = live.source
    live_name = live.described
    labels = workspace.labels
    pixel_weights = changed_pixel_weights(workspace, train_ids, whole.changed_weight)
    augment = Augment(crop=whole.crop, base_size=live.base_size or BASE_SIZE)
    train_set = SegmentationDataset(workspace.root, train_ids, labels=labels, augment=augment,
                                    pixel_weights=pixel_weights)
    heldout_set = SegmentationDataset(workspace.root, heldout_ids, labels=labels)
    state.say("measuring the live model on held-out samples")
    live_predictor = live.predictor(workspace, model_name)  # a folded copy: training below changes live.model
    before = evaluate(live_predictor, heldout_set)

    new_head = live.new_head
    select = whole.select_on_heldout and not new_head
    steps_per_epoch = max(1, -(-len(train_set) // whole.batch_size))
    check_every = max(1, -(-whole.steps_between_checks // steps_per_epoch))
    config = TrainConfig(epochs=whole.max_epochs, batch_size=whole.batch_size,
                         lr=whole.new_head_lr if new_head else whole.lr,
                         seconds=settings.budget(len(train_ids)),
                         patience=whole.patience if select else None,
                         augment=augment,
                         val_every=check_every if select else whole.max_epochs + 1,
                         freeze_bn=whole.freeze_bn and not new_head,
                         non_classifier_lr_mult=1.0 if new_head else whole.non_classifier_lr_mult,
                         l2sp=0.0 if new_head else whole.l2sp, seed=settings.seed,
                         encoder_lr_mult=whole.new_head_encoder_lr_mult if new_head else whole.encoder_lr_mult,
                         distill=whole.distill,
                         bf16=cpu_has_native_bf16() if whole.bf16 is None else whole.bf16,
                         mean=live.mean, std=live.std)
    model = live.model
    best: dict = {}

    def on_best(current: SegmentationModel, metrics: dict, epoch: int) -> None:
        best.update(state=copy.deepcopy(current.state_dict()), metrics=metrics, epoch=epoch)

    def on_step(step: int, loss: float, progress: float) -> None:
        state.step(step, loss, progress, "training")

    teacher = fold_batchnorm(model) if whole.distill > 0 and not new_head else None
    unlabelled = spread(workspace.list_unlabelled(), settings.unlabelled) if teacher is not None else []
    if unlabelled:
        state.say("reading unlabelled images for the distillation")
        train_set.add_unlabelled([workspace.load_image(m.id) for m in unlabelled])
    start = copy.deepcopy(model.state_dict()) if whole.average > 0 and not new_head else None
    result = fit(model, labels, train_set, heldout_set, config, on_best=on_best if select else None,
                 on_step=on_step, should_stop=should_stop, progress_bar=False, teacher=teacher)
    if result.stopped == "cancelled":
        return NewVersion(model_name, None, False, None, parent, live_name, result.seconds, train_ids, heldout_ids,
                          "cancelled", before=before)
    if select:
        model.load_state_dict(best["state"])
        after, kept_epoch = best["metrics"], best["epoch"]
    else:
        after, kept_epoch = result.history[-1].val, result.history[-1].epoch
    if start is not None:
        blend_weights(model, start, whole.average)
        after = evaluate(Predictor(model, labels=labels, mean=live.mean, std=live.std,
                                   base_size=augment.base_size), heldout_set)
    drift = None
    if not live.new_head and came_with_classes(workspace, model_name):  # keep what it knew where no one corrected
        state.say("measuring how far the new version moves the unlabelled images' predictions")
        drift = prediction_drift(workspace, live_predictor,
                                 Predictor(model, labels=labels, mean=live.mean, std=live.std,
                                           base_size=augment.base_size))
    decision = judge(workspace, model_name, live, np.array(before["matrix"]), np.array(after["matrix"]),
                     images=len(heldout_ids), drift=drift)
    promoted = decision.promote
    recipe = {"settings": {**asdict(settings), "seconds": config.seconds, "bf16": config.bf16}, "path": "whole",
              "unlabelled_images": len(unlabelled),
              "machine": machine_description()}

    def write(path, version: str) -> None:
        save_weights(model, path, model_name=model_name, labels=labels, input_scale=model.input_scale,
                     base_size=augment.base_size, mean=live.mean, std=live.std, version=version,
                     meta={"parent": parent, "job": "whole", "train_ids": train_ids, "heldout_ids": heldout_ids,
                           "metrics": {"heldout_before": before, "heldout": after}, "seconds": result.seconds,
                           "guard": {**decision.to_dict(), "explanation": decision.explain(live_name)},
                           "stopped": result.stopped, "kept_epoch": kept_epoch, "created": time.time(),
                           "recipe": recipe, "history": [asdict(r) for r in result.history]})

    version = publish_version(workspace, model_name, decision, write)
    return NewVersion(model_name, version, promoted, decision, parent, live_name, result.seconds, train_ids,
                      heldout_ids, result.stopped, before=before, after=after)


def blend_weights(model: torch.nn.Module, start: dict[str, torch.Tensor], weight: float) -> None:
    """Set ``model``'s floating-point tensors to ``weight`` x ``start`` + (1 − weight) x their current value."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.mul_(1 - weight).add_(start[name], alpha=weight)


def changed_pixel_weights(workspace: Workspace, ids: list[str], changed_weight: float) -> dict[str, np.ndarray] | None:
    """Per sample of ``ids``: ``changed_weight`` where the user changed the model's prediction, 1 elsewhere (float64
    (H, W)); None when ``changed_weight`` is 1 (every pixel weighs the same)."""
    if changed_weight == 1.0:
        return None
    weights = {}
    for sample_id in ids:
        _, prediction, corrected, _ = workspace.load_sample(sample_id)
        weights[sample_id] = np.where(prediction != corrected, changed_weight, 1.0)
    return weights
