"""The fast learner end to end on drawn datasets: learning after each save, a class that comes late, another
label set, versions over the trunk's weights, cancellation, and a feature cache that survives kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.drawing import ANIMALS, draw_animal, draw_scene
from segdemo.labels import LabelSet
from segdemo.learning.features import FeatureCache
from segdemo.learning.learner import FastLearner, LearnerSettings, learn
from segdemo.metrics import ConfusionMatrix
from segdemo.models import build_model
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from segdemo.weights import WeightsEntry, WeightsError

MODEL = "fcn8s_compact"
QUICK = LearnerSettings(seconds=120, max_steps=120)  # a fixed number of steps: the same result under any load
ANIMAL_LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))


def save(workspace, image, truth, sample_id):
    predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
    workspace.save_sample(image, predictor.predict(image).mask, truth, model=MODEL,
                          weights_version=predictor.version, sample_id=sample_id)


def dog_iou(workspace, seeds):
    predictor = load_live(workspace, MODEL).predictor(workspace, MODEL)
    matrix = ConfusionMatrix(3)
    for seed in seeds:
        image, truth = draw_animal(seed, 2)
        matrix.update(predictor.predict(image).mask, truth)
    return matrix.compute()["per_class_iou"]["2"] or 0.0


def test_a_class_that_comes_late_is_learned_with_another_label_set(tmp_path):
    workspace = Workspace(tmp_path / "ws", labels=ANIMAL_LABELS)
    for seed in range(4):
        save(workspace, *draw_animal(seed, 1), f"cat{seed}")
        result = learn(workspace, MODEL, QUICK)
    assert result.version is not None and result.samples == 3
    assert workspace.live_version(MODEL) != "shipped", "the first update replaces the untrained classifier"
    before = dog_iou(workspace, range(100, 104))
    verdicts = []
    for seed in range(10, 16):
        save(workspace, *draw_animal(seed, 2), f"dog{seed}")
        verdicts.append(learn(workspace, MODEL, QUICK).decision.verdict)
    after = dog_iou(workspace, range(100, 104))
    assert before < 0.2 and after > 0.5, (before, after, verdicts)
    assert "learning" in verdicts


def test_a_partial_version_loads_like_the_model_it_trained(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    for seed in range(2):
        save(workspace, *draw_scene(seed), f"scene{seed}")
    result = learn(workspace, MODEL, QUICK)
    entry = WeightsEntry.from_json(workspace.checkpoint_dir(MODEL) / f"{result.version}.json")
    assert entry.meta["base"]["shipped"] and entry.meta["learner"] == "fast"
    assert entry.file.stat().st_size < 200_000, "only the top's tensors are written"
    full = build_model(MODEL, weights=entry)
    shipped = build_model(MODEL, weights="default")
    changed = [k for k, v in full.state_dict().items() if not torch.equal(v, shipped.state_dict()[k])]
    assert changed and all(k.startswith("head.") for k in changed)
    damaged = WeightsEntry(**{**entry.__dict__, "meta": {**entry.meta, "base": {"shipped": True, "sha256": "0" * 64}}})
    with pytest.raises(WeightsError, match="other base weights"):
        damaged.load_state_dict()


def test_a_newer_save_stops_the_update_and_nothing_is_written(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    save(workspace, *draw_scene(0), "scene0")
    calls = []
    result = learn(workspace, MODEL, QUICK, should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert result.version is None and result.stopped == "stopped for a newer save"
    assert workspace.versions(MODEL) == [] and workspace.live_version(MODEL) == "shipped"


def test_the_background_learner_answers_each_save(tmp_path):
    workspace = Workspace(tmp_path / "ws", labels=ANIMAL_LABELS)
    learner = FastLearner(workspace, MODEL, QUICK)
    for seed in range(3):
        save(workspace, *draw_animal(seed, 1), f"cat{seed}")
        learner.notify()
    assert learner.wait(timeout=120)
    state = learner.state
    assert state.status == "idle" and state.last is not None and state.last.samples >= 1
    assert state.message.startswith("learned") and state.last.version in state.message
    assert workspace.live_version(MODEL) != "shipped"


WRITER = """
import sys
from segdemo.inference import Predictor
from segdemo.learning.features import FeatureCache
from segdemo.store import Workspace
workspace = Workspace(sys.argv[1])
cache = FeatureCache(workspace, "fcn8s_compact", Predictor.from_weights("fcn8s_compact"), "k" * 64)
print("ready", flush=True)
while True:
    cache._write("scene0", workspace.sample_meta("scene0").image_sha256, cache.compute(workspace.load_image("scene0")))
"""


@pytest.mark.slow
def test_the_feature_cache_survives_kill_9(tmp_path):
    from segdemo.inference import Predictor

    workspace = Workspace(tmp_path / "ws")
    save(workspace, *draw_scene(0, 240, 320), "scene0")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(workspace.root)], stdout=subprocess.PIPE,
                              cwd=os.path.dirname(os.path.dirname(__file__)))
    assert writer.stdout.readline().strip() == b"ready"
    time.sleep(3)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    folder = workspace.root / "cache" / "features" / MODEL / ("k" * 16)
    cache = FeatureCache(workspace, MODEL, Predictor.from_weights(MODEL), "k" * 64)
    stored = cache._read("scene0", workspace.sample_meta("scene0").image_sha256, True)
    assert stored is not None, "the last complete write is readable"
    fresh = cache.compute(workspace.load_image("scene0"))
    for a, b in zip(stored.views[0], fresh.views[0]):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=1e-2)
    for temp in folder.glob(".*.tmp"):  # a write the kill interrupted
        os.utime(temp, (0, 0))
    Workspace(tmp_path / "ws")
    assert not list(folder.glob(".*.tmp")), "a killed writer's temp file is swept when the workspace opens"


def test_families_on_the_shared_encoder_share_one_feature_cache(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    for seed in range(2):
        save(workspace, *draw_scene(seed), f"scene{seed}")
    few = LearnerSettings(seconds=60, max_steps=3)
    learn(workspace, "fcn8s_lite0", few)
    folders = list((workspace.root / "cache" / "features").glob("*/*"))
    assert [f.parent.name for f in folders] == ["lite0"]
    stamps = {p: p.stat().st_mtime_ns for p in folders[0].iterdir()}
    assert len(stamps) == 2
    result = learn(workspace, "unet_lite0", few)
    assert list((workspace.root / "cache" / "features").glob("*/*")) == folders
    assert {p: p.stat().st_mtime_ns for p in folders[0].iterdir()} == stamps, "U-Net recomputed nothing"
    entry = WeightsEntry.from_json(workspace.checkpoint_dir("unet_lite0") / f"{result.version}.json")
    written = set(load_file(entry.file))
    decoder = {k for k in build_model("unet_lite0").state_dict() if k.startswith("decoder.")}
    assert written == decoder, "the U-Net's top is its whole decoder, and only it is written"
