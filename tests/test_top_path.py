"""The Fine-tune job's top path: what it trains, its distillation to the live model, and the evidence it is
judged on (the held-out samples pooled with the latest saves it was not trained on)."""

import numpy as np
import pytest
import torch

from tests.drawing import draw_scene
from segdemo.corrections import Corrections
from segdemo.learning.finetune import FinetuneJob
from segdemo.learning.finetune_settings import FinetuneSettings, TopPathSettings
from segdemo.models import build_model, shipped_weights
from segdemo.promotion.evidence import saved_matrix
from segdemo.promotion.guard import MAX_DRIFT, decide
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from segdemo.web.models import offered_models

MODEL = "fcn8s_compact"
STEPS = FinetuneSettings(seconds=120, unlabelled=6, top=TopPathSettings(min_steps=40, max_steps=40))
"""A fixed number of steps (the budget never cuts them), so two runs differ only in what a test changes."""
NAMES = ("background", "cat", "dog")


def fill(workspace, seeds, *, truth=None):
    """Save drawn scenes as corrections of the live model's predictions (``truth``: a class painted over the
    whole image instead of the drawing's own classes)."""
    predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
    for seed in seeds:
        image, drawn = draw_scene(seed)
        mask = drawn % workspace.labels.num_classes if truth is None else np.full_like(drawn, truth)
        workspace.save_sample(image, predictor.predict(image).mask, mask, model=MODEL,
                              weights_version=predictor.version, source_name=f"s{seed}.png")


def unlabelled(workspace, seeds):
    for seed in seeds:
        workspace.add_unlabelled(draw_scene(seed)[0], source_name=f"u{seed}.png")


def test_the_top_path_trains_only_the_top_and_is_judged_on_the_latest_saves(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    fill(workspace, range(10))
    result = FinetuneJob(workspace, MODEL, STEPS).run()
    entry = workspace.versions(MODEL)[0]
    assert entry.meta["job"] == "top" and entry.meta["recipe"]["steps"] == 40
    assert entry.meta["base"] == {"shipped": True, "sha256": shipped_weights(MODEL).sha256}

    train = workspace.split_ids("train")
    assert len(train) == 7 and result.recent_ids == entry.meta["recent_ids"]
    assert len(result.recent_ids) == 1 and result.recent_ids[0] == fill_order(workspace)[-1]
    recent_meta = [workspace.sample_meta(i) for i in result.recent_ids]
    assert entry.meta["metrics"]["recent_before"]["matrix"] == saved_matrix(Corrections(workspace), recent_meta).tolist(), \
        "the live side of the latest saves is what the live model predicted at save time"
    guard = entry.meta["guard"]
    assert guard["images"] == 3 + 1 and guard["recent"] == 1
    assert "1 latest save it was not trained on" in guard["explanation"]

    candidate, shipped = build_model(MODEL, weights=entry), build_model(MODEL, weights="default")
    top = {name for module in candidate.top_modules() for name, _ in module.named_parameters()}
    assert top
    moved = [name for name, tensor in candidate.state_dict().items()
             if not torch.equal(tensor, shipped.state_dict()[name])]
    assert moved and all(any(name.endswith(t) for t in top) for name in moved), "only the top's tensors change"


def fill_order(workspace):
    """The training samples' ids, oldest save first."""
    train = [s for s in workspace.list_samples() if s.labelled and s.split == "train"]
    return [s.id for s in sorted(train, key=lambda s: (s.updated, s.id))]


def test_the_job_keeps_the_live_models_predictions_on_unlabelled_images(tmp_path):
    """Corrections that paint every pixel one class pull the top toward it everywhere; distillation to the live
    model on the unlabelled images holds it back there."""
    drifts = {}
    for distill in (0.0, 3.0):
        workspace = Workspace(tmp_path / f"distill{distill}")
        unlabelled(workspace, range(20, 26))
        fill(workspace, range(6), truth=3)
        settings = STEPS.with_values({"top.distill": distill, "top.lr": 3e-3})
        drifts[distill] = FinetuneJob(workspace, MODEL, settings).run().decision.drift
    assert drifts[0.0] > 0.2, "without distillation the top learns to paint the unlabelled images one class"
    assert drifts[3.0] < drifts[0.0] / 2


def test_a_clear_gain_on_the_latest_saves_is_promoted_where_the_held_out_images_alone_are_too_few():
    """Two held-out images alone are too few; with five latest saves scored test-then-train the gain is clear."""
    heldout_live = np.array([[800, 100, 0], [100, 700, 0], [0, 0, 0]])
    heldout_new = np.array([[810, 90, 0], [95, 705, 0], [0, 0, 0]])
    assert decide(heldout_live, heldout_new, images=2, names=NAMES).verdict == "too few"
    recent_live = np.array([[2000, 300, 200], [200, 1500, 300], [300, 200, 1000]])
    recent_new = np.array([[2300, 100, 100], [100, 1800, 100], [100, 100, 1300]])
    decision = decide(heldout_live + recent_live, heldout_new + recent_new, images=7, names=NAMES, recent=5)
    assert decision.verdict == "better" and decision.promote
    assert "2 held-out images + 5 latest saves" in decision.explain("v3")


def test_a_version_specialised_on_the_latest_block_is_not_promoted():
    """Better on the latest saves (a block of dogs), worse on the held-out cats than it gains there."""
    heldout_live = np.array([[3000, 200, 0], [300, 2500, 0], [0, 0, 0]])
    heldout_new = np.array([[2900, 150, 150], [200, 1900, 700], [0, 0, 0]])
    recent_live = np.array([[1000, 0, 100], [0, 0, 0], [100, 0, 900]])
    recent_new = np.array([[1050, 0, 50], [0, 0, 0], [50, 0, 950]])
    decision = decide(heldout_live + recent_live, heldout_new + recent_new, images=9, names=NAMES, recent=5)
    assert decision.verdict == "worse" and not decision.promote
    moving = decide(heldout_live + recent_live, heldout_live + recent_new, images=9, names=NAMES, recent=5,
                    drift=MAX_DRIFT + 0.05)
    assert moving.verdict == "forgets" and not moving.promote, "a gain that moves the unlabelled images is refused"


@pytest.mark.parametrize("model", offered_models())
def test_the_top_path_runs_for_every_offered_family(tmp_path, model):
    workspace = Workspace(tmp_path / "ws")
    predictor = load_live(workspace, model).predictor(workspace, model)
    for seed in range(5):
        image, drawn = draw_scene(seed)
        workspace.save_sample(image, predictor.predict(image).mask, drawn % workspace.labels.num_classes,
                              model=model, weights_version=predictor.version, source_name=f"s{seed}.png")
    settings = STEPS.with_values({"top.min_steps": 5, "top.max_steps": 5})
    result = FinetuneJob(workspace, model, settings).run()
    assert result.version == "v1" and workspace.versions(model)[0].meta["job"] == "top"


def test_drift_limits_only_a_classifier_that_came_with_the_workspaces_classes():
    """A young classifier the workspace trained itself changes many unlabelled pixels as it improves."""
    live = np.array([[800, 200, 0], [300, 700, 0], [0, 0, 0]])
    candidate = np.array([[950, 50, 0], [100, 900, 0], [0, 0, 0]])
    shipped_classes = decide(live, candidate, images=6, names=NAMES, drift=0.3)
    assert shipped_classes.verdict == "forgets"
    own_classes = decide(live, candidate, images=6, names=NAMES, drift=0.3, drift_limit=None)
    assert own_classes.verdict == "better" and own_classes.promote and own_classes.drift == 0.3


def test_scale_augmentation_computes_features_at_other_sizes(tmp_path):
    from segdemo.learning.top_training import TopTrunk, trunk_entry

    workspace = Workspace(tmp_path / "ws")
    fill(workspace, range(5))
    live = load_live(workspace, MODEL)
    trunk = TopTrunk(workspace, MODEL, trunk_entry(live)[0], live.model)
    corrections = Corrections(workspace)
    train = corrections.train
    native, _ = trunk.training_data(train, corrections)
    rescaled, targets = trunk.rescaled_data(train, (0.5, 1.0), corrections)
    assert sorted(rescaled) == sorted(f"{s.id}@0.5" for s in train), "scale 1 is the cached features"
    for s in train:
        half, full = rescaled[f"{s.id}@0.5"], native[s.id]
        assert abs(half.run_size[0] - full.run_size[0] / 2) <= 1 and len(half.views) == 2
        assert tuple(targets[f"{s.id}@0.5"][1].shape[-2:]) == half.padded_size
    result = FinetuneJob(workspace, MODEL, STEPS.with_values({"top.scales": (0.5, 1.0)})).run()
    assert workspace.versions(MODEL)[0].meta["recipe"]["settings"]["top"]["scales"] == [0.5, 1.0]
    assert result.version == "v1"
