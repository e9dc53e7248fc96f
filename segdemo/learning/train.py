"""The training loop shared by ``python -m segdemo train`` and the app's fine-tune job.

One-cycle AdamW (warm-up then cosine), class-weighted cross-entropy with optional per-pixel weights,
best-on-validation selection, resumable safetensors checkpoints, and data-parallel training when launched
by ``torchrun`` (DDP over gloo on CPU).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save as save_tensors
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from segdemo.data import Augment, SegmentationDataset, median_frequency_weights, normalize
from segdemo.fileio import atomic_write_bytes, atomic_write_text
from segdemo.inference import Predictor
from segdemo.labels import LabelSet
from segdemo.learning.losses import pixel_kl, weighted_cross_entropy
from segdemo.metrics import ConfusionMatrix, image_miou, pixel_error
from segdemo.models import SegmentationModel
from segdemo.weights import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class TrainConfig:
    """Everything that defines a run; logged at its start and stored in the weights' recipe."""

    epochs: int = 60
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: float = 0.1
    class_weight_power: float = 0.5
    bf16: bool = False
    augment: Augment = field(default_factory=Augment)
    seconds: float | None = None
    patience: int | None = None
    val_every: int = 1
    freeze_bn: bool = False
    non_classifier_lr_mult: float = 1.0
    encoder_lr_mult: float = 1.0
    distill: float = 0.0
    l2sp: float = 0.0
    seed: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    epoch: int
    step: int
    seconds: float
    loss: float
    lr: float
    val: dict | None = None


@dataclass
class FitResult:
    """``best_metrics`` is None when no validation ran; ``stopped`` says why the loop ended."""

    best_metrics: dict | None
    best_epoch: int
    history: list[EpochRecord]
    seconds: float
    stopped: str


def one_cycle(progress: float, warmup: float) -> float:
    """LR multiplier for progress in [0, 1]: linear warm-up from 1/25 to 1, then cosine down to ~0."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return 1 / 25 + (1 - 1 / 25) * progress / warmup
    return 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / max(1e-9, 1 - warmup)))


@torch.inference_mode()
def evaluate(predictor: Predictor, dataset: SegmentationDataset) -> dict:
    """Score ``predictor`` on every sample of ``dataset`` at the masks' native size (void ignored);
    ``image_errors`` and ``image_miou`` list each image's :func:`pixel_error` and :func:`image_miou`, in the
    dataset's order; ``matrix`` is the pooled (K, K) confusion matrix as nested lists (rows truth)."""
    matrix = ConfusionMatrix(predictor.labels.num_classes, predictor.labels.ignore_index)
    errors, ious = [], []
    labels = predictor.labels
    for image, mask in zip(dataset.images, dataset.masks):
        prediction = predictor.predict_arrays([image.permute(1, 2, 0).numpy()])[0]
        matrix.update(prediction.mask, mask.numpy())
        errors.append(round(pixel_error(prediction.mask, mask.numpy(), labels.ignore_index), 6))
        ious.append(round(image_miou(prediction.mask, mask.numpy(), labels.num_classes, labels.ignore_index), 6))
    metrics = matrix.compute(predictor.labels.names)
    metrics["images"] = len(dataset)
    metrics["image_errors"] = errors
    metrics["image_miou"] = ious
    metrics["matrix"] = matrix.matrix.tolist()
    return metrics


def distributed_context() -> tuple[int, int]:
    """(rank, world size); initialises the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _set_bn_eval(module: torch.nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.eval()


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Model + AdamW moments as safetensors, loop state as JSON beside it; both written atomically."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for index, param_state in optimizer.state_dict()["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().contiguous()
    atomic_write_bytes(path, save_tensors(tensors))
    atomic_write_text(path.with_suffix(".json"), json.dumps(state) + "\n")


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    tensors = load_file(path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optim_state, "param_groups": optimizer.state_dict()["param_groups"]})
    return json.loads(path.with_suffix(".json").read_text())


def fit(model: SegmentationModel, labels: LabelSet, train_set: SegmentationDataset,
        val_set: SegmentationDataset | None, config: TrainConfig, *,
        checkpoint: Path | None = None, resume: bool = False,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        on_best: Callable[[SegmentationModel, dict, int], None] | None = None,
        on_step: Callable[[int, float, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None, progress_bar: bool = True,
        teacher: SegmentationModel | None = None) -> FitResult:
    """Train ``model`` in place; ``on_best(model, metrics, epoch)`` fires whenever validation mIoU improves.

    With ``teacher`` (a frozen model of the same classes) and ``config.distill`` > 0 the loss adds
    ``distill`` x the pixel-mean KL divergence from the teacher's class probabilities to the model's, on every
    pixel of the training crops: what the model knew about classes the corrections do not show is kept.

    Ends after ``config.epochs``, when ``config.seconds`` run out, after ``config.patience`` validations
    without improvement, or when ``should_stop()`` turns true. ``on_step(step, loss, progress)`` reports
    progress in [0, 1]. With ``checkpoint`` the loop state is saved each epoch and, with ``resume``, restored.
    """
    rank, world = distributed_context()
    torch.manual_seed(config.seed + rank)
    generator = torch.Generator().manual_seed(config.seed)
    class_weights = median_frequency_weights(train_set, power=config.class_weight_power)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, seed=config.seed) if world > 1 else None
    per_rank_batch = max(1, config.batch_size // world)
    drop_last = len(train_set) >= per_rank_batch * world * 2
    loader = DataLoader(train_set, batch_size=per_rank_batch, shuffle=sampler is None, sampler=sampler,
                        drop_last=drop_last, generator=generator)
    steps_per_epoch = max(1, len(loader))
    total_steps = steps_per_epoch * config.epochs

    model = model.to(memory_format=torch.channels_last).train()
    head_params = {id(p) for p in model.classifier().parameters()}
    encoder_params = {id(p) for p in model.encoder_parameters()}
    non_classifier = [p for p in model.parameters() if id(p) not in head_params]
    groups = [
        {"params": [p for p in non_classifier if id(p) in encoder_params],
         "lr_mult": config.non_classifier_lr_mult * config.encoder_lr_mult},
        {"params": [p for p in non_classifier if id(p) not in encoder_params], "lr_mult": config.non_classifier_lr_mult},
        {"params": [p for p in model.parameters() if id(p) in head_params], "lr_mult": 1.0},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, weight_decay=config.weight_decay)
    anchor = [p.detach().clone() for p in non_classifier] if config.l2sp > 0 else None
    network = DistributedDataParallel(model) if world > 1 else model

    start_epoch, step, best_metrics, best_epoch, history = 0, 0, None, -1, []
    if checkpoint is not None and resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, model, optimizer)
        start_epoch, step, best_epoch = state["epoch"] + 1, state["step"], state["best_epoch"]
        best_metrics = state["best_metrics"]
        history = [EpochRecord(**record) for record in state["history"]]
    elapsed_before = history[-1].seconds if history else 0.0
    started, stopped, stale = time.monotonic(), "epochs", 0

    def progress() -> float:
        by_steps = step / total_steps
        by_time = (elapsed_before + time.monotonic() - started) / config.seconds if config.seconds else 0.0
        return max(by_steps, by_time)

    for epoch in range(start_epoch, config.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        if config.freeze_bn:
            _set_bn_eval(model)
        losses = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=None if progress_bar and rank == 0 else True)
        for images, masks, weights in bar:
            multiplier = one_cycle(progress(), config.warmup)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * multiplier * group["lr_mult"]
            x = normalize(images, config.mean, config.std).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = network(x)
            loss = weighted_cross_entropy(logits.float(), masks, class_weights, weights, labels.ignore_index)
            if teacher is not None and config.distill > 0:
                with torch.no_grad():
                    target = teacher(x).float().log_softmax(1)
                loss = loss + config.distill * pixel_kl(logits.float().log_softmax(1), target).mean()
            if anchor is not None:
                loss = loss + config.l2sp * sum(((p - a) ** 2).sum() for p, a in zip(non_classifier, anchor))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if on_step is not None:
                on_step(step, losses[-1], progress())
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
        record = EpochRecord(epoch=epoch, step=step, seconds=round(elapsed_before + time.monotonic() - started, 2),
                             loss=float(np.mean(losses)) if losses else float("nan"),
                             lr=optimizer.param_groups[-1]["lr"])
        out_of_time = config.seconds is not None and progress() >= 1.0
        last = epoch == config.epochs - 1 or out_of_time or stopped == "cancelled"
        if rank == 0 and val_set is not None and ((epoch + 1) % config.val_every == 0 or last):
            predictor = Predictor(model, labels=labels, mean=config.mean, std=config.std,
                                  base_size=config.augment.base_size)
            record.val = evaluate(predictor, val_set)
            if best_metrics is None or record.val["miou"] > best_metrics["miou"]:
                best_metrics, best_epoch, stale = record.val, epoch, 0
                if on_best is not None:
                    on_best(model, best_metrics, epoch)
            else:
                stale += 1
            model.train()
        history.append(record)
        if rank == 0 and on_epoch is not None:
            on_epoch(record)
        if rank == 0 and checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, {
                "epoch": epoch, "step": step, "best_epoch": best_epoch, "best_metrics": best_metrics,
                "history": [asdict(r) for r in history], "config": config.to_dict()})
        if stopped == "cancelled":
            break
        finish = torch.tensor([float(out_of_time or (config.patience is not None and stale > config.patience))])
        if world > 1:
            dist.broadcast(finish, src=0)
        if finish.item():
            stopped = "time budget" if out_of_time else "early stopping"
            break
    return FitResult(best_metrics=best_metrics, best_epoch=best_epoch, history=history,
                     seconds=round(elapsed_before + time.monotonic() - started, 2), stopped=stopped)


def write_history(path: Path, history: list[EpochRecord]) -> None:
    """The per-epoch log as CSV (loss, lr, val mIoU / pixel accuracy) and JSON (everything)."""
    atomic_write_text(path.with_suffix(".log.json"), json.dumps([asdict(r) for r in history], indent=1) + "\n")
    rows = [["epoch", "step", "seconds", "loss", "lr", "val_miou", "val_pixel_acc"]]
    for r in history:
        rows.append([r.epoch, r.step, r.seconds, f"{r.loss:.5f}", f"{r.lr:.6g}",
                     "" if r.val is None else f"{r.val['miou']:.5f}", "" if r.val is None else f"{r.val['pixel_acc']:.5f}"])
    table = io.StringIO(newline="")
    csv.writer(table).writerows(rows)
    atomic_write_text(path.with_suffix(".log.csv"), table.getvalue())


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bfloat16 in hardware (x86 AVX512-BF16 or AMX-BF16, from /proc/cpuinfo).

    Elsewhere bfloat16 is emulated and slower than float32, so mixed precision is only worth it here.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_description() -> str:
    return f"{platform.machine()} {platform.processor() or 'cpu'}, {os.cpu_count()} cores, torch {torch.__version__}"
