"""How many masks one fast update reads from disk: a drawn workspace of 8 saves (updated after each), one new save,
then the update that learns it, with every ``Workspace.load_masks`` call counted.

    python -m benchmarks.mask_reads

Prints, for a new label set (the lineage's classes are read too) and for CamVid's: the samples, the held-out ones,
the reads during that update and the most reads of one mask. The counting test is ``tests/test_corrections.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter

from segdemo.labels import LabelSet
from segdemo.learning.learner import LearnerSettings, learn
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from tests.drawing import ANIMALS, draw_animal

MODEL = "fcn8s_compact"
ANIMAL_LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))


def count(labels: LabelSet | None) -> dict:
    workspace = Workspace(tempfile.mkdtemp(prefix="segdemo-reads-") + "/ws", labels=labels)
    settings, held = LearnerSettings(seconds=120, max_steps=40), {}

    def save(seed: int, sample_id: str) -> None:
        image, truth = draw_animal(seed, 1 + seed % 2)
        truth = truth if labels is not None else truth % workspace.labels.num_classes
        predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
        workspace.save_sample(image, predictor.predict(image).mask, truth, model=MODEL,
                              weights_version=predictor.version, sample_id=sample_id)

    def update() -> None:
        learn(workspace, MODEL, settings, trunk=held.get("trunk"), on_trunk=lambda t: held.update(trunk=t))

    for seed in range(8):
        save(seed, f"s{seed}")
        update()
    save(50, "newest")
    reads, original = Counter(), Workspace.load_masks

    def counting(self, sample_id):
        reads[sample_id] += 1
        return original(self, sample_id)

    Workspace.load_masks = counting
    try:
        update()
    finally:
        Workspace.load_masks = original
    samples = workspace.list_samples()
    return {"label_set": workspace.labels.name, "samples": len(samples),
            "heldout": sum(s.split == "heldout" for s in samples), "reads": sum(reads.values()),
            "most_of_one_mask": max(reads.values(), default=0)}


def main() -> None:
    for labels in (ANIMAL_LABELS, None):
        row = count(labels)
        print(f"{row['label_set']}: {row['samples']} samples ({row['heldout']} held out): {row['reads']} mask reads "
              f"in one fast update, at most {row['most_of_one_mask']} of one mask")


if __name__ == "__main__":
    main()
