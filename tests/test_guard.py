"""The promotion guard's decision on hand-made confusion matrices (rows: truth, columns: prediction)."""

import numpy as np
import pytest

from segdemo.promotion.guard import (CLEAR_GAIN, ERROR_TOLERANCE, FORGET_TOLERANCE, MAX_DRIFT, MIN_IMAGES, decide,
                           learning_classes, scores)

NAMES = ("background", "cat", "dog")


def matrix(rows):
    return np.array(rows, dtype=np.int64)


def test_scores_pool_one_matrix_like_the_zoo():
    pooled = scores(matrix([[80, 10, 0], [10, 90, 0], [0, 0, 0]]))
    assert pooled["miou"] == pytest.approx((80 / 100 + 90 / 110) / 2)
    assert pooled["error"] == pytest.approx(20 / 190)
    assert pooled["iou"][2] is None


def test_one_spurious_blob_costs_little_pooled():
    """A small 'dog' blob on cat images: per-image mIoU would fall by a third; pooled it barely moves."""
    live = matrix([[900, 0, 0], [0, 1000, 0], [0, 0, 0]])
    candidate = matrix([[900, 0, 0], [0, 990, 10], [0, 0, 0]])
    decision = decide(live, candidate, images=5, names=NAMES)
    assert decision.error_after - decision.error_before == pytest.approx(10 / 1900)
    assert decision.verdict in ("worse", "unclear") and not decision.promote


def test_a_class_that_appears_late_is_learned():
    """Held-out images are all cats; the recent saves are dogs the live model called cats."""
    recent = matrix([[500, 20, 0], [0, 0, 0], [30, 450, 0]])
    assert learning_classes(recent, trained={0, 1}) == [2]
    live = matrix([[900, 50, 0], [40, 1000, 0], [0, 0, 0]])
    candidate = matrix([[895, 45, 10], [45, 975, 20], [0, 0, 0]])  # cats a little worse, dog appears
    decision = decide(live, candidate, images=4, names=NAMES, learning=[2])
    assert decision.verdict == "learning" and decision.promote and decision.learning == ("dog",)
    assert decision.kept_change > -FORGET_TOLERANCE
    assert "learning dog" in decision.explain("v2")
    assert decide(live, candidate, images=4, names=NAMES).verdict == "worse", "without the recent evidence"


def test_a_class_never_trained_is_learned_even_with_no_held_out_image():
    recent = matrix([[500, 0, 0], [100, 300, 0], [0, 0, 0]])
    assert learning_classes(recent, trained={0}) == [1]
    empty = np.zeros((3, 3), dtype=np.int64)
    decision = decide(empty, empty, images=0, names=NAMES, learning=[1])
    assert decision.verdict == "learning" and decision.promote


def test_learning_a_class_may_not_forget_the_others():
    live = matrix([[900, 50, 0], [40, 1000, 0], [0, 0, 0]])
    forgetting = matrix([[700, 50, 200], [40, 700, 300], [0, 0, 0]])
    decision = decide(live, forgetting, images=4, names=NAMES, learning=[2])
    assert decision.verdict == "forgets" and not decision.promote
    assert decision.error_after - decision.error_before > ERROR_TOLERANCE
    assert "forgets" in decision.explain("v3") and "kept v3 live" in decision.explain("v3")


def test_classes_found_on_recent_saves_are_not_being_learned():
    recent = matrix([[500, 20, 0], [10, 400, 0], [2, 2, 1]])  # class 2: under 1 % of the pixels
    assert learning_classes(recent, trained=None) == []
    assert learning_classes(np.zeros((3, 3)), trained=set()) == []


def test_a_class_the_shipped_model_always_finds_poorly_is_not_being_learned():
    """CamVid's poles: the shipped classifier finds a third of them, on the earlier saves as on the recent."""
    recent = matrix([[900, 0, 0], [0, 500, 0], [40, 0, 20]])
    record = matrix([[2000, 0, 0], [0, 900, 0], [70, 0, 30]])
    assert learning_classes(recent, trained=None, record=record) == []
    assert learning_classes(recent, trained=None) == [2], "new to the workspace's corrections, and under half found"


def test_a_class_clearly_worse_than_its_record_is_being_learned():
    recent = matrix([[900, 0, 0], [0, 500, 0], [50, 0, 10]])  # finds 1/6 of class 2 now
    record = matrix([[2000, 0, 0], [0, 900, 0], [30, 0, 70]])  # found 70 % before
    assert learning_classes(recent, trained=None, record=record) == [2]
    slightly = matrix([[900, 0, 0], [0, 500, 0], [28, 0, 32]])  # 53 %: within LEARNING_DROP of 70 %
    assert learning_classes(slightly, trained=None, record=record) == []


def test_a_workspace_classifier_learns_a_class_without_a_record_until_it_finds_it():
    recent = matrix([[500, 20, 0], [0, 300, 0], [30, 250, 150]])  # dogs: 35 % found, no dog in the record
    record = matrix([[900, 0, 0], [50, 600, 0], [0, 0, 0]])
    assert learning_classes(recent, trained={0, 1, 2}, record=record) == [2]
    found = matrix([[500, 20, 0], [0, 300, 0], [30, 50, 350]])
    assert learning_classes(found, trained={0, 1, 2}, record=record) == []


def test_a_one_scene_regression_is_refused():
    """Same classes; the candidate got worse on the held-out images: no class to learn excuses it."""
    live = matrix([[800, 100, 100], [50, 900, 50], [30, 30, 500]])
    candidate = matrix([[700, 150, 150], [60, 880, 60], [40, 40, 480]])
    decision = decide(live, candidate, images=MIN_IMAGES, names=NAMES)
    assert decision.verdict == "worse" and not decision.promote
    assert "worse" in decision.explain("v1") and "promote anyway" not in decision.explain("v1")


def test_a_gain_that_moves_the_unlabelled_images_is_refused_as_forgetting():
    live = matrix([[800, 100, 100], [50, 900, 50], [30, 30, 500]])
    candidate = matrix([[850, 75, 75], [40, 920, 40], [30, 30, 500]])
    assert decide(live, candidate, images=5, names=NAMES, drift=0.01).verdict == "better"
    moved = decide(live, candidate, images=5, names=NAMES, drift=MAX_DRIFT + 0.05)
    assert moved.verdict == "forgets" and not moved.promote and "unlabelled pixels change" in moved.explain("v1")


def test_noise_is_neither_better_nor_worse():
    live = matrix([[800, 100, 100], [50, 900, 50], [30, 30, 500]])
    candidate = matrix([[801, 99, 100], [51, 899, 50], [30, 30, 500]])
    decision = decide(live, candidate, images=6, names=NAMES)
    assert decision.verdict == "unclear" and not decision.promote and "promote anyway?" in decision.explain("v2")


def test_thin_evidence_needs_a_clear_gain():
    live = matrix([[800, 100, 100], [50, 900, 50], [30, 30, 500]])
    slightly = matrix([[820, 90, 90], [45, 910, 45], [30, 30, 500]])
    clearly = matrix([[950, 25, 25], [10, 980, 10], [10, 10, 540]])
    assert decide(live, slightly, images=MIN_IMAGES - 1, names=NAMES).verdict == "too few"
    decision = decide(live, clearly, images=1, names=NAMES)
    assert decision.gain >= CLEAR_GAIN and decision.verdict == "better" and decision.promote


def test_a_new_classifier_is_always_promoted_and_shapes_must_match():
    empty = np.zeros((3, 3))
    assert decide(empty, empty, images=0, names=NAMES, untrained_head=True).verdict == "new classifier"
    with pytest.raises(ValueError):
        decide(np.zeros((3, 3)), np.zeros((2, 2)), images=1, names=NAMES)
