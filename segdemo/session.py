"""A simulated labelling session: the product's headline figure, how much a person must repaint.

A person works through images of a dataset split one at a time: the live model predicts, the person repaints
what it got wrong (the error: share of non-void pixels), saves the ground truth as the correction exactly as
Save does, and every ``every`` saves presses Fine-tune (the button's defaults and guard).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from segdemo.data import image_path, mask_path, read_mask, split_ids
from segdemo.fileio import read_rgb
from segdemo.finetune import FinetuneJob, FinetuneSettings, evenly_spaced, load_live, pick_ids, start_from
from segdemo.labels import dataset_labels
from segdemo.metrics import pixel_error
from segdemo.store import StoreError, Workspace

ORDERS = ("sequential", "spread", "shuffled", "uncertainty")


def session_images(ids: list[str], images: int, order: str, start: int = 0) -> list[str]:
    """The ids a session works through. "sequential": ``images`` consecutive ids of the sorted split from
    ``start`` (a video, frame after frame); "spread", "shuffled" and "uncertainty": ``images`` ids evenly spaced
    over the split, in sorted order, in a random order seeded by ``start`` (a folder whose names say nothing of
    their content), or reordered by the queue as the session goes."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    if images < 1 or images > len(ids):
        raise ValueError(f"cannot work through {images} of the split's {len(ids)} images")
    if order == "sequential":
        return pick_ids(ids, images, "consecutive", start)
    chosen = evenly_spaced(ids, images)
    if order == "shuffled":
        random.Random(start).shuffle(chosen)
    return chosen


def bench_session(model: str, data: str | Path, split: str, *, images: int = 40, every: int = 5,
                  order: str = "sequential", start: int = 0, settings: FinetuneSettings | None = None,
                  workspace_dir: str | Path, weights: str | Path | None = None) -> dict:
    """Simulate the session; ``workspace_dir`` must be a new folder. Returns ``errors`` (per image, in the
    order worked), ``effort`` (their sum), ``effort_no_loop`` (the same images scored by the starting model),
    ``effort_ratio``, ``finetunes`` ([{after, seconds, promoted, verdict}]), ``ids`` (in order) and ``seconds``.
    ``weights`` starts from those instead of the shipped weights."""
    if every < 1:
        raise ValueError("every must be at least 1")
    started = time.monotonic()
    labels = dataset_labels(data)
    pool = session_images(split_ids(data, split), images, order, start)
    workspace = Workspace(workspace_dir, labels=labels)
    if weights is not None:
        start_from(workspace, model, weights)
    pictures = {i: read_rgb(image_path(data, i)) for i in pool}
    truths = {i: read_mask(mask_path(data, i), labels) for i in pool}
    starting = load_live(workspace, model).predictor(workspace, model)
    first = {i: starting.predict(pictures[i]) for i in pool}
    no_loop = [pixel_error(first[i].mask, truths[i], labels.ignore_index) for i in pool]

    predictor, scores = starting, {}
    if order == "uncertainty":
        from segdemo.queue import uncertainty

        scores = {i: uncertainty(first[i]) for i in pool}
    remaining, worked, errors, finetunes = list(pool), [], [], []
    while remaining:
        sample_id = max(remaining, key=scores.__getitem__) if order == "uncertainty" else remaining[0]
        remaining.remove(sample_id)
        prediction = predictor.predict(pictures[sample_id])
        errors.append(pixel_error(prediction.mask, truths[sample_id], labels.ignore_index))
        worked.append(sample_id)
        workspace.save_sample(pictures[sample_id], prediction.mask, truths[sample_id], model=model,
                              weights_version=predictor.version, source_name=sample_id, sample_id=sample_id)
        if len(worked) % every or not remaining:
            continue
        job_started = time.monotonic()
        try:
            result = FinetuneJob(workspace, model, settings).run()
        except StoreError as err:
            finetunes.append({"after": len(worked), "seconds": 0.0, "promoted": False, "verdict": str(err)})
            continue
        finetunes.append({"after": len(worked), "seconds": round(time.monotonic() - job_started, 2),
                          "promoted": result.promoted, "verdict": result.decision.verdict,
                          "explanation": result.decision.explain(result.live_name)})
        if result.promoted:
            predictor = load_live(workspace, model).predictor(workspace, model)
            if order == "uncertainty":
                scores = {i: uncertainty(predictor.predict(pictures[i])) for i in remaining}
    effort, effort_no_loop = sum(errors), sum(no_loop[pool.index(i)] for i in worked)
    return {
        "model": model, "data": str(data), "split": split, "images": len(worked), "every": every, "order": order,
        "start": start, "ids": worked, "errors": [round(e, 5) for e in errors],
        "errors_no_loop": [round(no_loop[pool.index(i)], 5) for i in worked],
        "effort": round(effort, 4), "effort_no_loop": round(effort_no_loop, 4),
        "effort_ratio": round(effort / effort_no_loop, 4) if effort_no_loop else None,
        "last10_error": round(sum(errors[-10:]) / len(errors[-10:]), 4),
        "finetunes": finetunes, "seconds": round(time.monotonic() - started, 1),
    }
