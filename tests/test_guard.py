"""The promotion guard's decision on hand-made per-image scores."""

import numpy as np
import pytest

from segdemo.guard import MAX_REGRESSION, MIN_IMAGES, decide
from segdemo.metrics import image_miou, pixel_error


def test_thin_evidence_is_too_few_to_tell_even_when_it_looks_good():
    decision = decide([0.50, 0.40], [0.60, 0.55])
    assert decision.verdict == "too few" and not decision.promote and decision.images == 2
    assert decision.gain == pytest.approx(0.125)
    text = decision.explain("v3")
    assert "too few to tell" in text and "kept v3 live" in text and "promote anyway?" in text
    assert "+12.5 mIoU points per image on 2 held-out images" in text


def test_a_clear_gain_on_enough_images_is_promoted():
    decision = decide([0.50, 0.55, 0.40, 0.45], [0.58, 0.60, 0.49, 0.50], [0.2] * 4, [0.18] * 4)
    assert decision.verdict == "better" and decision.promote
    assert decision.wins == 4 and decision.losses == 0 and decision.worst == 0
    assert "promoted" in decision.explain("the shipped weights")


def test_a_clear_loss_is_refused():
    decision = decide([0.60, 0.60, 0.60], [0.55, 0.58, 0.50])
    assert decision.verdict == "worse" and not decision.promote and decision.losses == 3
    assert "worse" in decision.explain("v1") and "promote anyway" not in decision.explain("v1")


def test_one_image_much_more_to_repaint_blocks_an_average_gain():
    before_iou, after_iou = [0.40, 0.40, 0.40, 0.40, 0.80], [0.60, 0.60, 0.60, 0.60, 0.78]
    before_err, after_err = [0.3, 0.3, 0.3, 0.3, 0.10], [0.2, 0.2, 0.2, 0.2, 0.10 + MAX_REGRESSION + 0.05]
    decision = decide(before_iou, after_iou, before_err, after_err)
    assert decision.gain > decision.spread and decision.verdict == "unclear" and not decision.promote
    assert "one image has 10.0 % more pixels wrong" in decision.explain("v2")


def test_a_gain_within_the_noise_is_unclear():
    decision = decide([0.50, 0.50, 0.50, 0.50], [0.46, 0.53, 0.45, 0.58])
    assert 0 < decision.gain < decision.spread and decision.verdict == "unclear" and not decision.promote
    assert "within noise" in decision.explain("v1")


def test_an_untrained_classifier_is_replaced_whatever_the_evidence():
    decision = decide([0.1], [0.05], untrained_head=True)
    assert decision.promote and decision.verdict == "new classifier"


def test_minimum_is_what_the_rule_says():
    assert decide([0.5] * MIN_IMAGES, [0.6] * MIN_IMAGES).promote
    assert not decide([0.5] * (MIN_IMAGES - 1), [0.6] * (MIN_IMAGES - 1)).promote


def test_mismatched_lists_are_refused():
    with pytest.raises(ValueError):
        decide([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        decide([0.1, 0.2], [0.1, 0.3], [0.5], [0.4])


def test_per_image_scores():
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    prediction = np.array([[0, 0, 1, 0], [0, 2, 1, 1]])
    assert pixel_error(prediction, target) == pytest.approx(2 / 7)
    # class 0: tp 3, union 5; class 1: tp 2, union 3; class 2: tp 0, union 1
    assert image_miou(prediction, target, 3) == pytest.approx((3 / 5 + 2 / 3 + 0) / 3)
    assert image_miou(prediction, np.full_like(target, 255), 3) == 1.0
