"""A simulated person who clicks instead of repainting: ``python -m segdemo bench-strokes``.

The person works through a split as :func:`segdemo.session.bench_session`'s does (a new workspace, the folder
imported, the fast learner after each save). On each image it looks at what the editor shows, clicks the interior
(the distance-transform maximum) of the largest connected wrong region, with that region's true class, using the
superpixel brush at the editor's default size (:data:`segdemo.tools.BRUSH_SIZE`), until 95 % of the non-void
pixels are right or after :data:`MAX_CLICKS` clicks; then it saves the ground truth.

What the editor shows: with ``assist`` the painted pixels and, elsewhere, the fill-in of a
:class:`segdemo.learning.strokes.StrokeFiller` re-fitted after every click (nothing before two classes are painted when
the live classifier learned nothing yet: void, all wrong); without it the live model's prediction plus the
painted pixels, as the editor showed before the fill-in existed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from segdemo import tools
from segdemo.data import image_path, mask_path, read_mask, split_ids
from segdemo.fileio import read_rgb
from segdemo.labels import dataset_labels
from segdemo.learning.strokes import UNPAINTED, StrokeFiller, StrokeSettings
from segdemo.metrics import pixel_error
from segdemo.promotion.evidence import came_with_classes
from segdemo.session import Person, session_images
from segdemo.store import Workspace

MAX_CLICKS = 30
TARGET = 0.95
"""Share of non-void pixels right at which the person stops clicking."""
NEAR = 0.90
"""A lower mark, also reported: where 95 % is out of reach (CamVid's many small regions), the clicks to 90 %."""


def next_click(shown: np.ndarray, truth: np.ndarray, ignore_index: int = 255,
               skip: frozenset = frozenset()) -> tuple[int, int, int] | None:
    """(x, y, class) of the next click: the interior point (farthest from the region's border, the image's
    edge counting as border) of the largest 4-connected region of pixels ``shown`` wrong that share one true
    class, not one of ``skip`` while another is wrong; None when nothing is wrong. ``shown`` and ``truth``: uint8
    (H, W)."""
    wrong = (shown != truth) & (truth != ignore_index)
    classes = np.unique(truth[wrong])
    best, best_area = None, 0
    for cls in [c for c in classes if c not in skip] or classes:
        count, regions, stats, _ = cv2.connectedComponentsWithStats((wrong & (truth == cls)).astype(np.uint8),
                                                                    connectivity=4)
        if count < 2:
            continue
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[largest, cv2.CC_STAT_AREA] > best_area:
            best_area, best = int(stats[largest, cv2.CC_STAT_AREA]), (int(cls), regions == largest)
    if best is None:
        return None
    cls, region = best
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(x), int(y), cls


class Editor:
    """What the editor shows the simulated person: :meth:`show` (painted uint8 (H, W), stroke serial) → uint8
    (H, W). With a ``filler`` (assist on) the painted pixels over the latest fill-in (before any: the live
    prediction, or void for a classifier that learned nothing: ``waiting`` for a stroke of each class); without,
    the painted pixels over ``prediction``. ``refits`` collects each re-fit's seconds."""

    def __init__(self, prediction: np.ndarray, filler: StrokeFiller | None, void: int) -> None:
        self.filler, self.refits = filler, []
        self.waiting = filler is not None and filler.cold
        self.filled = np.full_like(prediction, void) if self.waiting else prediction

    def show(self, painted: np.ndarray, serial: int) -> np.ndarray:
        if self.filler is not None and serial:
            answer = self.filler.refit(serial, painted)
            if answer is not None:
                self.refits.append(answer.seconds)
                self.filled, self.waiting = answer.mask, False
        return np.where(painted != UNPAINTED, painted, self.filled)


def label_image(editor: Editor, truth: np.ndarray, segments: np.ndarray, *, ignore_index: int,
                max_clicks: int = MAX_CLICKS) -> dict:
    """Click until what ``editor`` shows is :data:`TARGET` right; while it asks for a stroke of each class, the
    person clicks a class not painted yet (as the editor's hint says) → {clicks, reached, accuracy (after the
    last click), clicks90 (clicks until :data:`NEAR` right, or ``max_clicks``)}."""
    painted = np.full(truth.shape, UNPAINTED, np.uint8)
    shown = editor.show(painted, 0)
    clicks, clicks90 = 0, None
    while True:
        accuracy = 1.0 - pixel_error(shown, truth, ignore_index)
        if accuracy >= NEAR and clicks90 is None:
            clicks90 = clicks
        if accuracy >= TARGET or clicks >= max_clicks:
            return {"clicks": clicks, "reached": accuracy >= TARGET, "accuracy": round(accuracy, 4),
                    "clicks90": max_clicks if clicks90 is None else clicks90}
        skip = frozenset(np.unique(painted[painted != UNPAINTED]).tolist()) if editor.waiting else frozenset()
        click = next_click(shown, truth, ignore_index, skip)
        if click is None:
            return {"clicks": clicks, "reached": True, "accuracy": round(accuracy, 4), "clicks90": clicks}
        x, y, cls = click
        painted[np.isin(segments, tools.superpixels_under(segments, x + 0.5, y + 0.5))] = cls
        clicks += 1
        shown = editor.show(painted, clicks)


def bench_strokes(model: str, data: str | Path, split: str, *, images: int = 20, order: str = "spread",
                  start: int = 0, assist: bool = True, workspace_dir: str | Path,
                  settings: StrokeSettings | None = None, max_clicks: int = MAX_CLICKS) -> dict:
    """Run the simulated person (see the module docstring) on ``images`` of ``split`` (``order``/``start``: see
    :func:`segdemo.session.session_images`); ``workspace_dir`` must be a new folder.

    → {model, assist, images, ids, clicks (per image), clicks_mean, clicks_first5, clicks_last10, reached (share
    of images that reached 95 %), accuracy (per image, after its last click) and its mean, clicks90 (per image,
    to 90 % right) and its mean, refit_s_median, refit_s_p95
    (one re-fit: what a person waits for after a stroke), prepare_s_median (the image's encoder maps and live
    logits, computed once when it opens), save_to_learned_median_s, seconds}."""
    started = time.monotonic()
    data = Path(data)
    labels = dataset_labels(data)
    pool = session_images(split_ids(data, split), images, order, start)
    person = Person(Workspace(workspace_dir, labels=labels), model, data)
    person.import_folder(pool)
    refits, prepares, rows = [], [], []
    for sample_id in pool:
        image = read_rgb(image_path(data, sample_id))
        truth = read_mask(mask_path(data, sample_id), labels)
        segments = tools.superpixels(image)
        live = person.live()
        predictor = live.predictor(person.workspace, model)
        prediction = predictor.predict(image).mask
        filler = StrokeFiller(predictor, image, cold=live.new_head, segments=segments,
                              hold=came_with_classes(person.workspace, model), settings=settings).prepare() \
            if assist else None
        if filler is not None:
            prepares.append(filler.prepare_seconds)
        editor = Editor(prediction, filler, labels.ignore_index)
        row = label_image(editor, truth, segments, ignore_index=labels.ignore_index, max_clicks=max_clicks)
        rows.append(row)
        refits += editor.refits
        person.correct(sample_id, image, truth, predictor, prediction)
    clicks = [r["clicks"] for r in rows]
    seconds = [u["seconds"] for u in person.learning]
    return {
        "model": model, "assist": assist, "images": len(pool), "order": order, "split": split, "data": str(data),
        "ids": pool, "clicks": clicks, "clicks_mean": round(statistics.mean(clicks), 2),
        "clicks_first5": round(statistics.mean(clicks[:5]), 2),
        "clicks_last10": round(statistics.mean(clicks[-10:]), 2),
        "reached": round(sum(r["reached"] for r in rows) / len(rows), 3), "accuracy": [r["accuracy"] for r in rows],
        "accuracy_mean": round(statistics.mean(r["accuracy"] for r in rows), 4),
        "clicks90": [r["clicks90"] for r in rows],
        "clicks90_mean": round(statistics.mean(r["clicks90"] for r in rows), 2),
        "refit_s_median": round(statistics.median(refits), 3) if refits else None,
        "refit_s_p95": round(float(np.percentile(refits, 95)), 3) if refits else None,
        "refits": len(refits),
        "prepare_s_median": round(statistics.median(prepares), 3) if prepares else None,
        "save_to_learned_median_s": round(statistics.median(seconds), 2) if seconds else None,
        "seconds": round(time.monotonic() - started, 1),
    }
