"""The promotion guard's decision on hand-made per-image errors."""

import pytest

from segdemo.guard import MAX_REGRESSION, MIN_IMAGES, decide


def test_thin_evidence_is_too_few_to_tell_even_when_it_looks_good():
    decision = decide([0.30, 0.40], [0.20, 0.25])
    assert decision.verdict == "too few" and not decision.promote and decision.images == 2
    assert decision.gain == pytest.approx(0.125)
    text = decision.explain("v3")
    assert "too few to tell" in text and "kept v3 live" in text and "promote anyway?" in text
    assert "+12.5 % pixels right on 2 held-out images" in text


def test_a_clear_gain_on_enough_images_is_promoted():
    decision = decide([0.30, 0.25, 0.40, 0.35], [0.22, 0.20, 0.31, 0.30])
    assert decision.verdict == "better" and decision.promote
    assert decision.wins == 4 and decision.losses == 0 and decision.worst == 0
    assert "promoted" in decision.explain("the shipped weights")


def test_a_clear_loss_is_refused():
    decision = decide([0.20, 0.20, 0.20], [0.25, 0.22, 0.30])
    assert decision.verdict == "worse" and not decision.promote and decision.losses == 3
    assert "worse" in decision.explain("v1") and "promote anyway" not in decision.explain("v1")


def test_one_image_much_worse_blocks_an_average_gain():
    before = [0.40, 0.40, 0.40, 0.40, 0.10]
    after = [0.20, 0.20, 0.20, 0.20, 0.10 + MAX_REGRESSION + 0.05]
    decision = decide(before, after)
    assert decision.gain > 0 and decision.verdict == "unclear" and not decision.promote
    assert "got 10.0 % worse" in decision.explain("v2")


def test_a_gain_within_the_noise_is_unclear():
    decision = decide([0.30, 0.30, 0.30, 0.30], [0.26, 0.33, 0.25, 0.34])
    assert 0 < decision.gain < decision.spread and decision.verdict == "unclear" and not decision.promote
    assert "within noise" in decision.explain("v1")


def test_an_untrained_classifier_is_replaced_whatever_the_evidence():
    decision = decide([0.9], [0.95], untrained_head=True)
    assert decision.promote and decision.verdict == "new classifier"


def test_minimum_is_what_the_rule_says():
    assert decide([0.3] * MIN_IMAGES, [0.2] * MIN_IMAGES).promote
    assert not decide([0.3] * (MIN_IMAGES - 1), [0.2] * (MIN_IMAGES - 1)).promote


def test_mismatched_lists_are_refused():
    with pytest.raises(ValueError):
        decide([0.1, 0.2], [0.1])
