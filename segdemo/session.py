"""A simulated person labelling a dataset split with the app: the loop's figures come from here.

The person has imported the images as a folder (unlabelled samples), works through them one at a time: the live
model predicts, the person repaints what it got wrong (the error: share of non-void pixels) and saves the ground
truth as the correction exactly as Save does; after each save the fast learner runs (:mod:`segdemo.learning.learner`, as
the app runs it in the background), and every ``every`` saves the person presses Fine-tune (the whole-network
job, :mod:`segdemo.learning.finetune`). Both go live only through the guard.

:func:`bench_session` reports the effort over a whole session; :func:`bench_loop` saves ``n`` corrections,
presses the button once, and scores the live model on the split's other images after each stage.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segdemo.data import SegmentationDataset, image_path, mask_path, read_mask, split_ids
from segdemo.fileio import read_rgb
from segdemo.inference import Predictor
from segdemo.labels import dataset_labels
from segdemo.learning.finetune import FinetuneJob
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.learner import FastLearner, LearnerSettings
from segdemo.learning.train import evaluate
from segdemo.metrics import pixel_error
from segdemo.models import build_model
from segdemo.picking import evenly_spaced
from segdemo.promotion.live import LiveModel, load_live, start_from
from segdemo.store import StoreError, Workspace
from segdemo.weights import WeightsEntry

ORDERS = ("sequential", "spread", "shuffled", "uncertainty")


def pick_ids(ids: list[str], n: int, pick: str, start: int = 0) -> list[str]:
    """``n`` of ``ids``: "spread" (evenly spaced over the sorted ids) or "consecutive" (``n`` in a row from
    position ``start`` of the sorted ids: one scene)."""
    if pick == "spread":
        return evenly_spaced(ids, n)
    if pick == "consecutive":
        ordered = sorted(ids)
        if not 0 <= start <= len(ordered) - n:
            raise ValueError(f"cannot take {n} consecutive ids from position {start} of {len(ordered)}")
        return ordered[start:start + n]
    raise ValueError(f"pick must be 'spread' or 'consecutive', not {pick!r}")


def session_images(ids: list[str], images: int, order: str, start: int = 0) -> list[str]:
    """The ids a session works through. "sequential": ``images`` consecutive ids of the sorted split from
    ``start`` (a video, frame after frame); "spread": ``images`` ids evenly spaced over the split in sorted
    order (a folder in name order: with names like ``Breed_123.jpg`` the classes come in blocks); "shuffled":
    the same ids in a random order seeded by ``start``; "uncertainty": reordered by the queue as it goes."""
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


@dataclass
class Person:
    """A person with a workspace, a model and a dataset: imports, saves ground truth as corrections, and lets
    the fast learner run after each save (``fast``) as the app does. ``learning`` lists each update:
    {after, seconds, promoted, verdict, version}."""

    workspace: Workspace
    model: str
    data: Path
    fast: bool = True
    learner_settings: LearnerSettings | None = None
    learning: list[dict] = field(default_factory=list)
    _learner: FastLearner | None = None

    def import_folder(self, ids: list[str]) -> None:
        """Add ``ids`` as unlabelled samples (what importing the folder does)."""
        for sample_id in ids:
            self.workspace.add_unlabelled(read_rgb(image_path(self.data, sample_id)), source_name=sample_id,
                                          sample_id=sample_id)

    def live(self) -> LiveModel:
        return load_live(self.workspace, self.model)

    def predictor(self) -> Predictor:
        return self.live().predictor(self.workspace, self.model)

    def correct(self, sample_id: str, image: np.ndarray, truth: np.ndarray, predictor: Predictor,
                prediction: np.ndarray) -> None:
        """Save ``truth`` as the correction of ``prediction``, then run the fast learner on it."""
        self.workspace.save_sample(image, prediction, truth, model=self.model, weights_version=predictor.version,
                                   source_name=sample_id, sample_id=sample_id)
        if not self.fast:
            return
        if self._learner is None:
            self._learner = FastLearner(self.workspace, self.model, self.learner_settings)
        started = time.monotonic()
        result = self._learner.run_once()
        self.learning.append({"after": len(self.learning) + 1, "seconds": round(time.monotonic() - started, 2),
                              "promoted": result.promoted, "version": result.version,
                              "verdict": result.decision.verdict if result.decision else result.stopped})

    def press_finetune(self, settings: FinetuneSettings | None) -> dict:
        started = time.monotonic()
        try:
            result = FinetuneJob(self.workspace, self.model, settings).run()
        except StoreError as err:
            return {"seconds": 0.0, "promoted": False, "verdict": str(err), "version": None}
        return {"seconds": round(time.monotonic() - started, 2), "promoted": result.promoted,
                "verdict": result.decision.verdict, "version": result.version,
                "explanation": result.decision.explain(result.live_name)}


def learning_summary(learning: list[dict]) -> dict:
    """Seconds from a save to the end of its fast update: median, the largest, and how many went live."""
    seconds = [u["seconds"] for u in learning]
    return {"fast_updates": len(learning), "fast_promoted": sum(u["promoted"] for u in learning),
            "save_to_learned_median_s": round(statistics.median(seconds), 2) if seconds else None,
            "save_to_learned_max_s": max(seconds) if seconds else None,
            "fast_seconds_total": round(sum(seconds), 1)}


def bench_session(model: str, data: str | Path, split: str, *, images: int = 40, every: int = 5,
                  order: str = "sequential", start: int = 0, settings: FinetuneSettings | None = None,
                  workspace_dir: str | Path, weights: str | Path | None = None, fast: bool = True,
                  learner_settings: LearnerSettings | None = None) -> dict:
    """Simulate the session; ``workspace_dir`` must be a new folder; ``every`` 0 never presses Fine-tune.

    Returns ``errors`` (per image, in the order worked), ``effort`` (their sum), ``effort_no_loop`` (the same
    images scored by the starting model), ``effort_ratio``, ``last10_error``, ``learning`` (each fast update:
    {after, seconds, promoted, verdict, version}), ``finetunes`` ([{after, seconds, promoted, verdict}]), the
    :func:`learning_summary` figures, ``ids`` (in order) and ``seconds``. ``weights`` starts from those
    instead of the shipped weights."""
    if every < 0:
        raise ValueError("every must be 0 (never) or more")
    started = time.monotonic()
    data = Path(data)
    labels = dataset_labels(data)
    pool = session_images(split_ids(data, split), images, order, start)
    person = Person(Workspace(workspace_dir, labels=labels), model, data, fast, learner_settings)
    if weights is not None:
        start_from(person.workspace, model, weights)
    person.import_folder(pool)
    pictures = {i: read_rgb(image_path(data, i)) for i in pool}
    truths = {i: read_mask(mask_path(data, i), labels) for i in pool}
    starting = person.predictor()
    first = {i: starting.predict(pictures[i]) for i in pool}
    no_loop = {i: pixel_error(first[i].mask, truths[i], labels.ignore_index) for i in pool}
    scores = {}
    if order == "uncertainty":
        from segdemo.queue import uncertainty

        scores = {i: uncertainty(first[i]) for i in pool}
    remaining, worked, errors, finetunes = list(pool), [], [], []
    while remaining:
        sample_id = max(remaining, key=scores.__getitem__) if order == "uncertainty" else remaining[0]
        remaining.remove(sample_id)
        predictor = person.predictor()
        prediction = predictor.predict(pictures[sample_id])
        errors.append(pixel_error(prediction.mask, truths[sample_id], labels.ignore_index))
        worked.append(sample_id)
        person.correct(sample_id, pictures[sample_id], truths[sample_id], predictor, prediction.mask)
        if every and not len(worked) % every and remaining:
            finetunes.append({"after": len(worked), **person.press_finetune(settings)})
        if order == "uncertainty" and remaining and (person.learning or finetunes):
            live = person.predictor()
            scores = {i: uncertainty(live.predict(pictures[i])) for i in remaining}
    effort, effort_no_loop = sum(errors), sum(no_loop[i] for i in worked)
    return {
        "model": model, "data": str(data), "split": split, "images": len(worked), "every": every, "order": order,
        "start": start, "fast": fast, "ids": worked, "errors": [round(e, 5) for e in errors],
        "errors_no_loop": [round(no_loop[i], 5) for i in worked],
        "effort": round(effort, 4), "effort_no_loop": round(effort_no_loop, 4),
        "effort_ratio": round(effort / effort_no_loop, 4) if effort_no_loop else None,
        "last10_error": round(sum(errors[-10:]) / len(errors[-10:]), 4),
        **learning_summary(person.learning), "learning": person.learning,
        "finetunes": finetunes, "seconds": round(time.monotonic() - started, 1),
    }


def bench_loop(model: str, data: str | Path, split: str, n: int, *, settings: FinetuneSettings | None = None,
               workspace_dir: str | Path, pick: str = "spread", start: int = 0,
               weights: str | Path | None = None, fast: bool = True, press: bool = True,
               learner_settings: LearnerSettings | None = None) -> dict:
    """Simulate a user who imports the split as a folder, saves ``n`` of its images (ground truth as the
    corrections) one by one as Save does (the fast learner after each), then presses Fine-tune once (unless
    ``press`` is False); the live model is scored on the split's other images before, after the saves alone
    (``miou_saves``) and after the button (``miou_after``, the final live model). Fractions in [0, 1].

    ``miou_candidate`` scores the button's version whether or not the guard promoted it. The other images were
    in the workspace unlabelled (their pixels, never their masks, may serve the fast learner's distillation).
    ``pick``/``start``: see :func:`pick_ids`; ``weights`` starts from those instead of the shipped weights.
    """
    data = Path(data)
    labels = dataset_labels(data)
    ids = split_ids(data, split)
    chosen = pick_ids(ids, n, pick, start)
    remaining = sorted(set(ids) - set(chosen))
    if not remaining:
        raise ValueError(f"split {split!r} has no ids left to score after picking {n}")
    person = Person(Workspace(workspace_dir, labels=labels), model, data, fast, learner_settings)
    if weights is not None:
        start_from(person.workspace, model, weights)
    person.import_folder(sorted(ids))
    scoring_set = SegmentationDataset(data, remaining, labels=labels)
    predictor = person.predictor()
    before = evaluate(predictor, scoring_set)
    for sample_id in chosen:
        image = read_rgb(image_path(data, sample_id))
        predictor = person.predictor()
        person.correct(sample_id, image, read_mask(mask_path(data, sample_id), labels), predictor,
                       predictor.predict(image).mask)
    saves = evaluate(person.predictor(), scoring_set)
    row = {"model": model, "data": str(data), "split": split, "n": n, "pick": pick, "start": start,
           "seed": (settings or FinetuneSettings()).seed, "scored": len(remaining), "fast": fast,
           "miou_before": before["miou"], "miou_saves": saves["miou"], "pixel_acc_before": before["pixel_acc"],
           "pixel_acc_saves": saves["pixel_acc"], **learning_summary(person.learning), "learning": person.learning,
           "per_class_iou_before": before["per_class_iou"], "per_class_iou_saves": saves["per_class_iou"]}
    if not press:
        return {**row, "miou_after": saves["miou"], "pixel_acc_after": saves["pixel_acc"], "promoted": False,
                "miou_candidate": None, "button": None, "per_class_iou_after": saves["per_class_iou"]}
    button = person.press_finetune(settings)
    after = evaluate(person.predictor(), scoring_set)
    candidate = after
    if button["version"] is not None and not button["promoted"]:
        entry = WeightsEntry.from_json(person.workspace.checkpoint_dir(model) / f"{button['version']}.json")
        candidate = evaluate(Predictor(build_model(model, weights=entry), labels=labels, mean=entry.mean,
                                       std=entry.std, base_size=entry.base_size), scoring_set)
    return {**row, "miou_after": after["miou"], "miou_candidate": candidate["miou"],
            "pixel_acc_after": after["pixel_acc"], "promoted": button["promoted"], "button": button,
            "seconds": button["seconds"], "explanation": button.get("explanation", button["verdict"]),
            "per_class_iou_after": after["per_class_iou"]}
