"""How far one Save moves each family on the next image: the scene of ``tests/browser/test_learning.py`` without
the browser.

    python -m benchmarks.one_save [--steps 30 60 100] [--seeds 0 1 2]

Two drawn street scenes are imported; the first is saved with the lower third of the live model's mask painted
Fence; one fast update learns it; the second image is predicted by the resulting live version. Prints, per offered
model, the share of the second image's lower third that is Fence before and after, for the default update
(``LearnerSettings().seconds`` of training, the steps that fit) and for each counted number of ``--steps``
(``--seeds`` sets the update's seed). Measure on an idle machine: the timed row depends on its speed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.importer import import_paths
from segdemo.inference import Predictor, configure_threads
from segdemo.learning.learner import FastLearner, LearnerSettings
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from segdemo.web.models import offered_models
from tests.drawing import draw_scene

FENCE = 7
SCENE_SEEDS = (51, 52)


def fence_share(mask: np.ndarray) -> float:
    """Share of the lower third (below two thirds of the height, 4 rows of margin) that is Fence."""
    return float((mask[int(mask.shape[0] * 2 / 3) + 4:] == FENCE).mean())


def one_save(model: str, settings: LearnerSettings) -> dict:
    """One save of the Fence correction and one update → {steps, promoted, before, after}."""
    folder = Path(tempfile.mkdtemp(prefix="segdemo-one-save-"))
    paths = []
    for seed in SCENE_SEEDS:
        paths.append(folder / f"drawn-{seed}.png")
        Image.fromarray(draw_scene(seed, 180, 240)[0]).save(paths[-1])
    workspace = Workspace(folder / "ws")
    import_paths(workspace, paths)
    painted_sample, other_sample = workspace.list_unlabelled()[:2]
    shipped = Predictor.from_weights(model)
    image = workspace.load_image(painted_sample.id)
    prediction = shipped.predict(image).mask
    painted = np.zeros(prediction.shape, bool)
    painted[int(prediction.shape[0] * 2 / 3) + 2:] = True
    corrected = np.where(painted, FENCE, prediction).astype(np.uint8)
    workspace.save_sample(image, prediction, corrected, model=model, weights_version=shipped.version,
                          sample_id=painted_sample.id, painted=painted)
    result = FastLearner(workspace, model, settings).run_once()
    other = workspace.load_image(other_sample.id)
    after = load_live(workspace, model).predictor(workspace, model).predict(other).mask
    return {"steps": result.steps, "promoted": result.promoted,
            "before": fence_share(shipped.predict(other).mask), "after": fence_share(after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[30, 60, 100])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    configure_threads()
    runs = [("default", LearnerSettings(), 0)]
    runs += [(f"{steps} steps", LearnerSettings(seconds=600, max_steps=steps, seed=seed), seed)
             for steps in args.steps for seed in args.seeds]
    print("| model | update | seed | steps | went live | Fence before | Fence after |")
    print("|---|---|---|---|---|---|---|")
    for model in offered_models():
        for name, settings, seed in runs:
            row = one_save(model, settings)
            print(f"| {model} | {name} | {seed} | {row['steps']} | {row['promoted']} | {row['before']:.2%} | "
                  f"{row['after']:.2%} |", flush=True)


if __name__ == "__main__":
    main()
