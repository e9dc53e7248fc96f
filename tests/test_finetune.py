"""The loop: fine-tune job, promotion guard, versions, rollback, refusals, busy and cancel."""

import time

import torch

import pytest

from tests.drawing import draw_scene, shared_dataset
from segdemo.data import SegmentationDataset
from segdemo.labels import LabelSet
from segdemo.learning.finetune import FinetuneJob, JobBusy, active_job, describe
from segdemo.learning.finetune_settings import FinetuneSettings, TopPathSettings, WholePathSettings, current_key
from segdemo.learning.train import evaluate
from segdemo.learning.whole_path import blend_weights
from segdemo.promotion.live import load_live
from segdemo.session import bench_loop
from segdemo.store import StoreError, Workspace

MODEL = "fcn8s_compact"
FAST = FinetuneSettings(seconds=3, whole=WholePathSettings(crop=(64, 80), batch_size=2))
WHOLE = FinetuneSettings(seconds=3, encoder_after=0, whole=WholePathSettings(crop=(64, 80), batch_size=2))
"""The whole-network path, which the job takes from ``encoder_after`` training samples on."""


def fill(workspace, count, *, start=0):
    predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
    for seed in range(start, start + count):
        image, truth = draw_scene(seed)
        workspace.save_sample(image, predictor.predict(image).mask, truth % workspace.labels.num_classes,
                              model=MODEL, weights_version=predictor.version, source_name=f"s{seed}.png")


@pytest.fixture
def workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fill(ws, 6)
    return ws


def test_blend_weights_interpolates_toward_the_start():
    import torch

    layer = torch.nn.BatchNorm2d(2)
    start = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.running_mean.fill_(2.0)
    blend_weights(layer, start, 0.25)
    assert torch.allclose(layer.weight, torch.full((2,), 0.25 * 1 + 0.75 * 3))
    assert torch.allclose(layer.running_mean, torch.full((2,), 1.5))
    assert layer.num_batches_tracked.item() == 0


def test_budget_grows_with_the_training_samples():
    automatic = FinetuneSettings()
    assert [automatic.budget(n) for n in (1, 8, 16, 1000)] == [40, 40, 80, 120]
    assert FinetuneSettings(seconds=7).budget(1000) == 7


@pytest.mark.parametrize("settings", [FAST, WHOLE], ids=["top", "whole"])
def test_tiny_end_to_end_fine_tune_writes_a_version_and_promotes(workspace, settings):
    result = FinetuneJob(workspace, MODEL, settings).run()
    assert result.version == "v1" and result.parent == "shipped"
    assert set(result.train_ids) == set(workspace.split_ids("train"))
    assert set(result.heldout_ids) == set(workspace.split_ids("heldout"))
    entry = workspace.versions(MODEL)[0]
    judged = "evidence" if settings is FAST else "heldout"
    assert entry.meta["parent"] == "shipped" and entry.meta["metrics"][judged] == result.after
    assert entry.meta["train_ids"] == result.train_ids and entry.meta["seconds"] > 0
    guard = entry.meta["guard"]
    assert guard["images"] == len(result.heldout_ids) + len(result.recent_ids) and guard["promote"] == result.promoted
    assert guard["explanation"] in describe(result)
    if result.promoted:
        assert workspace.live_version(MODEL) == "v1"
        assert load_live(workspace, MODEL).version.startswith("workspace v1")


def test_distillation_and_weight_averaging_run_through_the_job(workspace):
    start = {k: v.clone() for k, v in load_live(workspace, MODEL).model.state_dict().items()}
    for seed in (40, 41):
        workspace.add_unlabelled(draw_scene(seed)[0], source_name=f"u{seed}.png")
    result = FinetuneJob(workspace, MODEL, WHOLE.with_values({"whole.distill": 0.5, "whole.average": 1.0})).run()
    assert result.version == "v1"
    entry = workspace.versions(MODEL)[0]
    assert entry.meta["recipe"]["settings"]["whole"]["distill"] == 0.5
    assert entry.meta["recipe"]["unlabelled_images"] == 2, "the unlabelled images join the distillation"
    kept = entry.load_state_dict()
    assert all(torch.allclose(kept[k], v) for k, v in start.items() if v.is_floating_point()), \
        "average=1.0 blends all the way back to the starting weights"


def test_rollback_and_promote_any_version(workspace):
    FinetuneJob(workspace, MODEL, FAST).run()
    FinetuneJob(workspace, MODEL, FAST).run()
    assert [e.version for e in workspace.versions(MODEL)] == ["v1", "v2"]
    workspace.set_live(MODEL, "v1")
    assert load_live(workspace, MODEL).version.startswith("workspace v1")
    workspace.set_live(MODEL, "shipped")
    assert workspace.live_entry(MODEL) is None
    assert not load_live(workspace, MODEL).version.startswith("workspace")


def test_second_job_is_refused_while_one_runs_and_cancel_stops_it(workspace):
    long = FinetuneSettings(seconds=60, top=TopPathSettings(min_steps=10**6, max_steps=10**6),
                            whole=WholePathSettings(crop=(64, 80)))
    job = FinetuneJob(workspace, MODEL, long).start()
    try:
        with pytest.raises(JobBusy, match="already running"):
            FinetuneJob(workspace, MODEL, FAST).start()
        assert active_job(workspace) is job
        time.sleep(1.0)
    finally:
        job.cancel()
        job.join(30)
    assert job.state.status == "cancelled"
    assert workspace.versions(MODEL) == [] and workspace.live_version(MODEL) == "shipped"
    assert active_job(workspace) is None
    assert FinetuneJob(workspace, MODEL, FAST).run().version == "v1"


def test_a_job_in_another_process_blocks_this_workspace(workspace):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; "
        "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(60)"),
        str(workspace.root / ".finetune.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JobBusy, match="another program"):
            FinetuneJob(workspace, MODEL, FAST).run()
        assert active_job(workspace) is None
    finally:
        holder.kill()
        holder.wait()
    assert FinetuneJob(workspace, MODEL, FAST).run().version == "v1"


def test_refuses_without_samples_or_without_training_samples(tmp_path):
    empty = Workspace(tmp_path / "empty")
    with pytest.raises(StoreError, match="0 training and 0 held-out"):
        FinetuneJob(empty, MODEL, FAST).run()
    only_heldout = Workspace(tmp_path / "heldout")
    fill(only_heldout, 3)
    for sample in only_heldout.list_samples():
        if sample.split == "train":
            only_heldout.delete_sample(sample.id)
    with pytest.raises(StoreError, match="0 training"):
        FinetuneJob(only_heldout, MODEL, FAST).run()


def test_new_label_set_gets_a_new_classifier(tmp_path):
    pets = LabelSet(name="pets", names=("background", "cat", "dog"), colors=((0, 0, 0), (220, 120, 40), (40, 120, 220)))
    workspace = Workspace(tmp_path / "pets", labels=pets)
    live = load_live(workspace, MODEL)
    assert live.new_head and live.model.num_classes == 3
    fill(workspace, 5)
    impatient = FinetuneSettings(seconds=3, encoder_after=0, whole=WholePathSettings(
        crop=(64, 80), batch_size=2, patience=0, steps_between_checks=1))
    result = FinetuneJob(workspace, MODEL, impatient).run()
    assert result.stopped == "time budget", "a new classifier must not stop early on its first held-out checks"
    assert result.promoted and workspace.versions(MODEL)[0].labels == pets
    live = load_live(workspace, MODEL)
    assert not live.new_head
    entry = workspace.versions(MODEL)[0]
    assert entry.meta["kept_epoch"] == entry.meta["history"][-1]["epoch"], "a new classifier keeps its final weights"
    heldout = SegmentationDataset(workspace.root, result.heldout_ids, labels=pets)
    assert evaluate(live.predictor(workspace, MODEL), heldout)["miou"] == pytest.approx(result.after["miou"], abs=1e-3)


def test_damaged_live_checkpoint_is_refused_and_the_last_good_one_served(workspace):
    FinetuneJob(workspace, MODEL, FAST).run()
    workspace.set_live(MODEL, "v1")
    FinetuneJob(workspace, MODEL, FAST).run()
    workspace.set_live(MODEL, "v2")
    assert workspace.versions(MODEL)[1].meta["parent"] == "v1"
    path = workspace.checkpoint_dir(MODEL) / "v2.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    live = load_live(workspace, MODEL)
    assert live.version == "workspace v1 (live v2 refused: damaged)" and "v2 refused" in live.warning and "sha256 mismatch" in live.warning
    assert FinetuneJob(workspace, MODEL, FAST).run().parent == "v1"


@pytest.mark.data
def test_bench_loop_on_camvid_val(tmp_path):
    root = shared_dataset("camvid")
    row = bench_loop(MODEL, root, "val", 5, settings=FinetuneSettings(seconds=5), workspace_dir=tmp_path)
    assert row["scored"] == 96 and 0 <= row["miou_after"] <= 1 and 0 <= row["miou_saves"] <= 1
    assert row["fast_updates"] == 5 and row["save_to_learned_median_s"] > 0


def test_settings_are_split_by_path_and_keys_from_before_the_split_still_work():
    settings = FinetuneSettings().with_values({"top.lr": 1e-3, "lr": 2e-4, "recent": 3, "top_crop": None,
                                               "seconds": 9})
    assert (settings.top.lr, settings.whole.lr, settings.top.recent, settings.top.crop) == (1e-3, 2e-4, 3, None)
    assert settings.seconds == 9 and FinetuneSettings().top.lr == 3e-4, "with_values makes new settings"
    assert current_key("top_distill") == "top.distill" and current_key("crop") == "whole.crop"
    assert current_key("whole.backbone_lr_mult") == current_key("backbone_lr_mult") == "whole.non_classifier_lr_mult"
    assert "top.lr" in FinetuneSettings.keys() and "whole.batch_size" in FinetuneSettings.keys()
    with pytest.raises(ValueError, match="whole.lr"):
        current_key("learning_rate")
