import numpy as np
import pytest

from segdemo.metrics import ConfusionMatrix


def test_hand_computed_case():
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    prediction = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    matrix = ConfusionMatrix(3)
    matrix.update(prediction, target)
    m = matrix.compute(["a", "b", "c"])
    assert m["pixels"] == 6
    assert m["pixel_acc"] == pytest.approx(4 / 6)
    assert m["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 1 / 2})
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["mean_acc"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_class_absent_everywhere_is_left_out_of_miou():
    matrix = ConfusionMatrix(4)
    matrix.update(np.array([0, 1, 1]), np.array([0, 1, 1]))
    m = matrix.compute()
    assert m["per_class_iou"]["2"] is None and m["per_class_iou"]["3"] is None
    assert m["miou"] == 1.0


def test_class_predicted_but_absent_counts_as_zero():
    matrix = ConfusionMatrix(3)
    matrix.update(np.array([0, 2]), np.array([0, 0]))
    m = matrix.compute()
    assert m["per_class_iou"]["2"] == 0.0
    assert m["miou"] == pytest.approx((1 / 2 + 0) / 2)


def test_accumulates_over_batches_and_merges():
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update(np.array([0, 1]), np.array([0, 0]))
    b.update(np.array([1]), np.array([1]))
    a.merge(b)
    assert a.matrix.tolist() == [[1, 1], [0, 1]]


def test_all_void_gives_zero_pixels():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([0, 1]), np.array([255, 255]))
    assert matrix.compute()["pixels"] == 0


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        ConfusionMatrix(2).update(np.zeros(3), np.zeros(4))
