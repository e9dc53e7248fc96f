"""One snapshot of the corrections per run (segdemo.corrections): the splits in their orders, and a fast update that
reads each mask at most once (it read the newest sample's three times, and every held-out one twice)."""

from collections import Counter

import numpy as np

from segdemo.corrections import Corrections
from segdemo.labels import LabelSet
from segdemo.learning.learner import LearnerSettings, learn
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from tests.drawing import ANIMALS, draw_animal

MODEL = "fcn8s_compact"
ANIMAL_LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))


def save(workspace, seed, sample_id):
    image, truth = draw_animal(seed, 1 + seed % 2)
    predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
    workspace.save_sample(image, predictor.predict(image).mask, truth, model=MODEL,
                          weights_version=predictor.version, sample_id=sample_id)


def test_the_snapshot_lists_the_splits_and_reads_a_mask_once(tmp_path, monkeypatch):
    workspace = Workspace(tmp_path / "ws", labels=ANIMAL_LABELS)
    for seed in range(5):
        save(workspace, seed, f"s{seed}")
    corrections = Corrections(workspace)
    assert [s.id for s in corrections.saved] == [f"s{seed}" for seed in range(5)]
    assert {s.id for s in corrections.train} | {s.id for s in corrections.heldout} == set(corrections.by_id)
    assert [s.id for s in corrections.heldout] == workspace.split_ids("heldout")
    reads = Counter()
    original = Workspace.load_masks
    monkeypatch.setattr(Workspace, "load_masks", lambda self, i: (reads.update([i]), original(self, i))[1])
    first = corrections.corrected("s1")
    assert np.array_equal(corrections.corrected("s1"), first) and reads == {"s1": 1}


def test_a_fast_update_reads_each_mask_at_most_once(tmp_path, monkeypatch):
    workspace = Workspace(tmp_path / "ws", labels=ANIMAL_LABELS)  # a new label set: the lineage's classes count too
    settings = LearnerSettings(seconds=120, max_steps=40)
    held = {}

    def update():
        return learn(workspace, MODEL, settings, trunk=held.get("trunk"), on_trunk=lambda t: held.update(trunk=t))

    for seed in range(8):
        save(workspace, seed, f"s{seed}")
        update()
    save(workspace, 50, "newest")
    reads = Counter()
    original = Workspace.load_masks
    monkeypatch.setattr(Workspace, "load_masks", lambda self, i: (reads.update([i]), original(self, i))[1])
    assert update().version is not None
    heldout = set(workspace.split_ids("heldout"))
    assert max(reads.values()) == 1, reads
    assert set(reads) <= heldout | {"newest"}, reads  # the others' targets and evidence are kept from earlier
