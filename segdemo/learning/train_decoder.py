"""Training a family's decoder on the zoo's frozen shared encoder, from cached features.

The encoder (the shipped ``fcn8s_lite0``'s, see :func:`shared_encoder`) never changes, so its five feature maps
of every training image are computed once (:mod:`segdemo.learning.features`, a few scales and the mirror) and an
epoch costs only the decoder. Each step draws ``batch_size`` samples, each at a random cached scale and flip,
and a random crop aligned to the encoder's stride, so every feature map is cropped exactly. The schedule counts
epochs (one-cycle AdamW), a checkpoint is written after each, and a run resumes from it. No selection on the
scored splits: the weights are those of the last epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.data import median_frequency
from segdemo.labels import LabelSet
from segdemo.learning.features import SampleViews, crop_maps, random_box
from segdemo.learning.train import load_checkpoint, one_cycle, save_checkpoint
from segdemo.metrics import ConfusionMatrix
from segdemo.models import SegmentationModel, shipped_weights
from segdemo.models.encoders.efficientnet import EfficientNetLite0Encoder
from segdemo.weights import WeightsEntry, WeightsError

SHARED_ENCODER_SOURCE = "fcn8s_lite0"
"""The shipped model whose encoder every decoder of the zoo is trained on."""


def shared_encoder() -> tuple[EfficientNetLite0Encoder, WeightsEntry]:
    """The zoo's shared encoder in eval mode, loaded from the shipped weights of :data:`SHARED_ENCODER_SOURCE`,
    and that weights entry (its sha256 names the encoder)."""
    entry = shipped_weights(SHARED_ENCODER_SOURCE)
    if entry is None:
        raise WeightsError(f"the shared encoder comes from the shipped {SHARED_ENCODER_SOURCE} weights, which are missing")
    encoder = EfficientNetLite0Encoder(with_head=True)
    prefix = "encoder."
    encoder.load_state_dict({k[len(prefix):]: v for k, v in entry.load_state_dict().items() if k.startswith(prefix)})
    return encoder.eval(), entry


@dataclass
class DecoderConfig:
    """A decoder run; logged at its start and stored in the weights' recipe."""

    epochs: int = 30
    batch_size: int = 4
    crop: tuple[int, int] = (288, 384)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    class_weight_power: float = 0.5
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def class_weights(samples: list[SampleViews], num_classes: int, power: float) -> torch.Tensor:
    """``data.median_frequency`` weights from the masks at each sample's first cached scale; float32 (K,)."""
    counts, image_pixels = np.zeros(num_classes), np.zeros(num_classes)
    for sample in samples:
        mask = next(iter(sample.masks.values()))
        histogram = np.bincount(mask.numpy().ravel(), minlength=256)[:num_classes]
        counts += histogram
        image_pixels += (histogram > 0) * int((mask != 255).sum())
    return median_frequency(counts, image_pixels, power=power)


def random_batch(samples: list[SampleViews], config: DecoderConfig,
                 rng: np.random.Generator) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """``batch_size`` random views, each cropped at a random stride-aligned offset to ``config.crop`` (or to the
    smallest view's padded size where that is smaller): float32 features (B, C, h, w) per tap and int64 masks
    (B, H, W)."""
    views = []
    for index in rng.integers(len(samples), size=config.batch_size):
        sample = samples[index]
        scale = list(sample.masks)[rng.integers(len(sample.masks))]
        flips = sorted({flip for (s, flip) in sample.features if s == scale})
        views.append(sample.view(scale, flips[rng.integers(len(flips))]))
    crop = (min(config.crop[0], *(mask.shape[0] for _, mask in views)),
            min(config.crop[1], *(mask.shape[1] for _, mask in views)))
    features, masks = [], []
    for maps, mask in views:
        top, left, height, width = random_box(tuple(mask.shape), crop, rng)
        masks.append(mask[top:top + height, left:left + width])
        features.append(crop_maps(maps, tuple(mask.shape), top, left, height, width))
    return tuple(torch.cat([f[tap] for f in features]).float() for tap in range(len(features[0]))), torch.stack(masks)


@torch.inference_mode()
def evaluate_views(model: SegmentationModel, samples: list[SampleViews], labels: LabelSet) -> dict:
    """Pooled metrics (``metrics.ConfusionMatrix``) of ``model.top`` on each sample's unflipped view at the cached
    scale nearest 1, at that view's (padded) size, the padding being void."""
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(labels.num_classes, labels.ignore_index)
    for sample in samples:
        scale = min(sample.masks, key=lambda s: abs(s - 1.0))
        maps, mask = sample.view(scale, 0)
        logits = model.top(tuple(f.float() for f in maps), tuple(mask.shape))
        matrix.update(logits.argmax(1)[0], mask)
    model.train(was_training)
    metrics = matrix.compute(labels.names)
    metrics["images"] = len(samples)
    return metrics


def fit_decoder(model: SegmentationModel, labels: LabelSet, train: list[SampleViews],
                scored: dict[str, list[SampleViews]], config: DecoderConfig, *, checkpoint: Path,
                log: Callable[[str], None] = print) -> dict:
    """Train ``model.top_modules()`` on ``train`` for ``config.epochs``, resuming from ``checkpoint`` when it
    exists and writing it after every epoch; score every split of ``scored`` at the end. Returns
    ``{"history": [...], "metrics": {split: metrics}, "seconds": s}`` (seconds of training, this run and the
    resumed ones)."""
    modules = model.top_modules()
    parameters = [p for module in modules for p in module.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    weights = class_weights(train, labels.num_classes, config.class_weight_power)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = config.epochs * steps_per_epoch
    state = {"epoch": 0, "seconds": 0.0, "history": []}
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, model, optimizer)
        log(f"resumed from {checkpoint} after epoch {state['epoch']}")
    rng = np.random.default_rng([config.seed, state["epoch"]])
    model.train()
    for epoch in range(state["epoch"], config.epochs):
        start, losses = time.perf_counter(), []
        for step in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * one_cycle((epoch * steps_per_epoch + step) / total, config.warmup)
            features, masks = random_batch(train, config, rng)
            logits = model.top(features, tuple(masks.shape[-2:]))
            loss = F.cross_entropy(logits, masks, weight=weights, ignore_index=labels.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - start
        state["epoch"], state["seconds"] = epoch + 1, state["seconds"] + seconds
        state["history"].append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 5),
                                 "seconds": round(seconds, 2)})
        save_checkpoint(checkpoint, model, optimizer, state)
        log(f"epoch {epoch + 1}/{config.epochs} loss {np.mean(losses):.4f} {seconds:.0f}s")
    metrics = {split: evaluate_views(model, samples, labels) for split, samples in scored.items()}
    for split, values in metrics.items():
        log(f"{split}: mIoU {values['miou']:.4f} pixel acc {values['pixel_acc']:.4f} on {values['images']} images")
    return {"history": state["history"], "metrics": metrics, "seconds": round(state["seconds"], 1)}


def describe_run(config: DecoderConfig, **extra) -> str:
    """One JSON line describing a run, for its log."""
    return json.dumps({"config": config.to_dict(), **extra})


def train_and_save(model_name: str, data: str | Path, out: str | Path, config: DecoderConfig, *,
                   train_split: str, score_splits: tuple[str, ...], hold_out: str | None, scales: tuple[float, ...],
                   cache: str | Path, version: str, command: str, log: Callable[[str], None] = print) -> WeightsEntry:
    """The whole recipe: cache the shared encoder's features of ``data`` (``train_split`` at ``scales`` with
    mirrors; each of ``score_splits`` at scale 1), train ``model_name``'s decoder on the training ids whose names
    do not start with ``hold_out``, score the held-out ids (as split ``held-out:<prefix>``) and the score splits,
    and write the full model (shared encoder + decoder) to ``out`` with its entry. ``out``'s ``.last`` file is the
    resumable checkpoint."""
    from segdemo.bench import count_gflops, count_params
    from segdemo.data import split_ids
    from segdemo.labels import dataset_labels
    from segdemo.learning.features import EncodedDataset
    from segdemo.learning.train import machine_description
    from segdemo.models import build_model, get_spec, list_models
    from segdemo.models.encoders.efficientnet import LITE_MEAN, LITE_STD
    from segdemo.weights import save_weights

    torch.manual_seed(config.seed)
    labels = dataset_labels(data)
    encoder, source = shared_encoder()
    model = build_model(model_name, num_classes=labels.num_classes)
    if model.shared_trunk != "lite0":
        raise ValueError(f"{model_name} does not run on the shared encoder; choose one of: "
                         + ", ".join(n for n in list_models() if build_model(n).shared_trunk == "lite0"))
    model.encoder.load_state_dict(encoder.state_dict())
    base_size = source.base_size or 360

    def encoded(split: str, split_scales: tuple[float, ...], flips: bool) -> EncodedDataset:
        folder = Path(cache) / f"{Path(data).name}-{split}"
        return EncodedDataset(data, folder, labels=labels, encoder=encoder, encoder_sha256=source.sha256,
                              scales=split_scales, flips=flips, base_size=base_size, mean=LITE_MEAN, std=LITE_STD)

    started = time.perf_counter()
    train_cache = encoded(train_split, scales, True)
    ids = split_ids(data, train_split)
    train_ids = [i for i in ids if not (hold_out and i.startswith(hold_out))]
    if not train_ids:
        raise ValueError(f"no training images left in {train_split!r} after holding out the ids starting with {hold_out!r}")
    train = [train_cache.load(i) for i in train_ids]
    scored = {split: [encoded(split, (1.0,), False).load(i) for i in split_ids(data, split)] for split in score_splits}
    if hold_out:
        scored[f"held-out:{hold_out}"] = [train_cache.load(i) for i in ids if i.startswith(hold_out)]
    cache_seconds = time.perf_counter() - started
    log(f"{model_name}: {len(train)} training images ({len(ids) - len(train)} held out), features ready in "
        f"{cache_seconds:.0f}s; " + describe_run(config))
    out = Path(out).with_suffix(".safetensors")
    result = fit_decoder(model, labels, train, scored, config, checkpoint=out.with_suffix(".last.safetensors"), log=log)
    meta = {
        "family": get_spec(model_name).family, "params": count_params(model), "gflops": round(count_gflops(model), 3),
        "encoder": {"model": SHARED_ENCODER_SOURCE, "file": source.file.name, "sha256": source.sha256,
                    "version": source.version, "frozen": True},
        "recipe": {"command": command, "epochs": config.epochs, "config": config.to_dict(), "data": Path(data).name, "train_split": train_split,
                   "hold_out": hold_out, "train_images": len(train), "scales": list(scales), "flips": True,
                   "machine": machine_description(), "cores": torch.get_num_threads(),
                   "seconds": result["seconds"], "cache_seconds": round(cache_seconds, 1),
                   "history": result["history"]},
        "metrics": result["metrics"],
    }
    return save_weights(model, out, model_name=model_name, labels=labels, input_scale=model.input_scale,
                        base_size=base_size, mean=LITE_MEAN, std=LITE_STD, version=version, meta=meta)
