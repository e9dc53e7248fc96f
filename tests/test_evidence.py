"""What the workspace tells the guard: test-then-train evidence of recent saves, the classes a version was trained
on, and how far a candidate moves the unlabelled images' predictions."""

import numpy as np

from segdemo.corrections import Corrections
from segdemo.inference import Predictor
from segdemo.labels import LabelSet
from segdemo.models import build_model
from segdemo.promotion.evidence import changed_share, prediction_drift, recent_matrix, trained_classes
from segdemo.lru import LruCache
from segdemo.store import Workspace
from tests.drawing import ANIMALS, draw_animal, draw_scene

LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))


def test_recent_matrix_scores_the_prediction_made_before_the_save(tmp_path):
    workspace = Workspace(tmp_path / "ws", labels=LABELS)
    for seed in range(7):
        image, truth = draw_animal(seed, 2)
        workspace.save_sample(image, np.zeros_like(truth), truth, model="m", weights_version="v", sample_id=f"d{seed}")
    matrix = recent_matrix(Corrections(workspace), samples=5)
    assert matrix.shape == (3, 3) and matrix[2, 2] == 0 and matrix[2, 0] > 0, "every dog pixel was called background"
    assert matrix.sum() == sum((workspace.load_masks(f"d{s}")[1] != 255).sum() for s in range(2, 7))


def test_per_sample_matrices_kept_in_memory_are_bounded(tmp_path, monkeypatch):
    from segdemo.promotion import evidence

    monkeypatch.setattr(evidence, "_SAMPLE_MATRICES", LruCache(3))
    workspace = Workspace(tmp_path / "ws", labels=LABELS)
    for seed in range(5):
        image, truth = draw_animal(seed, 1)
        workspace.save_sample(image, np.zeros_like(truth), truth, model="m", weights_version="v", sample_id=f"c{seed}")
    first = recent_matrix(Corrections(workspace), samples=5)
    assert len(evidence._SAMPLE_MATRICES) == 3
    again = recent_matrix(Corrections(workspace), samples=5)
    assert np.array_equal(again, first), "an evicted sample is computed again"


def test_trained_classes_follow_the_lineage_or_the_shipped_label_set(tmp_path):
    camvid = Workspace(tmp_path / "camvid")
    assert trained_classes(Corrections(camvid), "fcn8s_compact", None, new_head=False) is None, \
        "shipped for these classes"
    animals = Workspace(tmp_path / "animals", labels=LABELS)
    assert trained_classes(Corrections(animals), "fcn8s_compact", None, new_head=True) == set()


def test_drift_is_zero_for_the_same_model_and_counts_changed_pixels(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    assert prediction_drift(workspace, None, None) is None, "no unlabelled image: nothing to measure"
    for seed in range(3):
        workspace.add_unlabelled(draw_scene(seed, 64, 96)[0], sample_id=f"u{seed}")
    shipped = Predictor.from_weights("fcn8s_compact")
    assert prediction_drift(workspace, shipped, shipped) == 0.0
    other = Predictor(build_model("fcn8s_compact", num_classes=11), base_size=None)
    assert 0.0 < prediction_drift(workspace, shipped, other) <= 1.0


def test_drift_is_the_share_of_changed_pixels_pooled_over_images():
    live = [np.zeros((2, 2), np.uint8), np.zeros((4, 3), np.uint8)]
    candidate = [np.array([[0, 1], [0, 0]], np.uint8), np.ones((4, 3), np.uint8)]
    assert changed_share(zip(live, candidate)) == 13 / 16
    assert changed_share([]) is None
