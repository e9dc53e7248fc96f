"""The labelling queue: uncertainty scores, both strategies, stored scores and the background scorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segdemo.inference import Prediction
from segdemo.queue import Scorer, load_scores, queue_order, rank_by_uncertainty, save_scores, score_images, uncertainty
from segdemo.store import Workspace

from tests.drawing import draw_scene


class DoubtByBrightness:
    """A stand-in predictor: the darker the image, the less sure it is (confidence = mean brightness)."""

    version = "v7"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, image: np.ndarray) -> Prediction:
        self.calls += 1
        level = float(image.mean()) / 255
        return Prediction(mask=np.zeros(image.shape[:2], np.uint8),
                          confidence=np.full(image.shape[:2], level, np.float32))


def test_uncertainty_of_predictions_confidence_maps_and_logits():
    logits = torch.randn(5, 12, 16)
    expected = float(1 - logits.softmax(0).max(0).values.mean())
    assert uncertainty(logits) == pytest.approx(expected, abs=1e-6)
    assert uncertainty(logits.numpy()) == pytest.approx(expected, abs=1e-6)
    confidence = np.full((4, 4), 0.75, np.float32)
    assert uncertainty(confidence) == pytest.approx(0.25)
    assert uncertainty(Prediction(np.zeros((4, 4), np.uint8), confidence)) == pytest.approx(0.25)
    assert uncertainty(torch.zeros(3, 2, 2)) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shape"):
        uncertainty(np.zeros(5))


def test_rank_by_uncertainty_puts_the_least_sure_first():
    images = [np.full((20, 20, 3), level, np.uint8) for level in (200, 30, 120, 30)]
    assert score_images(DoubtByBrightness(), images) == pytest.approx([1 - v / 255 for v in (200, 30, 120, 30)])
    assert rank_by_uncertainty(DoubtByBrightness(), images) == [1, 3, 2, 0]


def test_queue_order_for_both_strategies():
    ids = ["a", "b", "c", "d"]
    scores = {"b": 0.1, "c": 0.7, "d": 0.4}
    assert queue_order(ids, "order", scores) == ids
    assert queue_order(ids, "uncertainty", scores) == ["c", "d", "b", "a"]
    assert queue_order(ids, "uncertainty", {}) == ids
    with pytest.raises(ValueError, match="unknown strategy"):
        queue_order(ids, "random", scores)


def test_scorer_scores_unlabelled_samples_in_the_background_and_keeps_them_per_version(tmp_path):
    workspace = Workspace(tmp_path)
    metas = [workspace.add_unlabelled((draw_scene(seed)[0] // (seed + 1)).astype(np.uint8), source_name=f"{seed}.png")
             for seed in range(4)]
    predictor = DoubtByBrightness()
    scorer = Scorer(workspace, "fcn8s_compact", predictor).start()
    scorer.join(60)
    assert scorer.state.status == "done" and scorer.state.done == 4
    scores = load_scores(workspace, "fcn8s_compact", "v7")
    assert queue_order([m.id for m in metas], "uncertainty", scores) == [m.id for m in reversed(metas)]
    assert load_scores(workspace, "fcn8s_compact", "v8") == {}, "a new version's scores start empty"
    assert load_scores(workspace, "fcn8s_compact") == scores, "... but the queue keeps ranking by the latest ones"
    again = Scorer(workspace, "fcn8s_compact", predictor)
    again.run()
    assert predictor.calls == 4 and again.state.total == 0, "scored images are not scored twice"


def test_a_new_version_rescores_in_the_background_over_the_earlier_scores(tmp_path):
    workspace = Workspace(tmp_path)
    metas = [workspace.add_unlabelled(draw_scene(seed)[0], source_name=f"{seed}.png") for seed in range(3)]
    save_scores(workspace, "m", "v1", {metas[0].id: 0.5, metas[1].id: 0.2})
    save_scores(workspace, "m", "v2", {metas[1].id: 0.9})
    assert load_scores(workspace, "m") == {metas[0].id: 0.5, metas[1].id: 0.9}
    assert load_scores(workspace, "m", "v1") == {metas[0].id: 0.5}
    scorer = Scorer(workspace, "m", DoubtByBrightness())
    scorer.version = "v2"
    scorer.run()
    assert scorer.state.total == 2, "the image v2 scored is not scored again"
    assert set(load_scores(workspace, "m", "v2")) == {m.id for m in metas}


def test_cancelled_scorer_keeps_what_it_scored(tmp_path):
    workspace = Workspace(tmp_path)
    for seed in range(3):
        workspace.add_unlabelled(draw_scene(seed)[0], source_name=f"{seed}.png")
    save_scores(workspace, "m", "v1", {})
    scorer = Scorer(workspace, "m", DoubtByBrightness())
    scorer.cancel()
    assert scorer.run().status == "cancelled" and load_scores(workspace, "m", "v1") == {}
