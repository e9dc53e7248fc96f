"""kill -9 during a save and during a fine-tune: nothing acknowledged is lost, nothing half-written shows."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.drawing import draw_scene
from segdemo.learning.finetune import FinetuneJob
from segdemo.learning.finetune_settings import FinetuneSettings, WholePathSettings
from segdemo.promotion.live import load_live
from segdemo.store import Workspace

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fcn8s_compact"

SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from tests.drawing import draw_scene
    from segdemo.store import Workspace
    workspace = Workspace(sys.argv[1])
    for seed in range(10_000):
        image, truth = draw_scene(seed, 240, 320)
        meta = workspace.save_sample(image, np.zeros_like(truth), truth, model="m", weights_version="v",
                                     source_name=f"k{seed}.png")
        print("ACK", meta.id, seed, flush=True)
""")

FINETUNER = textwrap.dedent("""
    import sys
    from segdemo.learning.finetune import FinetuneJob
    from segdemo.learning.finetune_settings import FinetuneSettings, TopPathSettings, WholePathSettings
    from segdemo.store import Workspace
    job = FinetuneJob(Workspace(sys.argv[1]), "fcn8s_compact", FinetuneSettings(
        seconds=120, top=TopPathSettings(min_steps=10**6, max_steps=10**6),
        whole=WholePathSettings(patience=10_000, crop=(64, 80))))
    job.start()
    while not job.state.losses:
        job.join(0.1)
    print("TRAINING", flush=True)
    job.join()
""")


def run_script(source: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", source, *args], stdout=subprocess.PIPE, text=True, env=env)


def assert_workspace_consistent(workspace: Workspace) -> None:
    """Every listed sample loads completely; split files agree with the samples."""
    for sample in workspace.list_samples():
        image, prediction, corrected, meta = workspace.load_sample(sample.id)
        assert image.shape[:2] == prediction.shape == corrected.shape == (meta.height, meta.width)
    visible = {p.name for p in workspace.root.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert not [name for name in visible if name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.parametrize("acks_before_kill", [2, 5])
def test_kill_during_saves_loses_no_acknowledged_sample(tmp_path, acks_before_kill):
    process = run_script(SAVER, str(tmp_path / "ws"))
    acknowledged = {}
    for line in process.stdout:
        _, sample_id, seed = line.split()
        acknowledged[sample_id] = int(seed)
        if len(acknowledged) >= acks_before_kill:
            time.sleep(0.03 * acks_before_kill)
            break
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    workspace = Workspace(tmp_path / "ws")
    saved = {s.id for s in workspace.list_samples()}
    assert set(acknowledged) <= saved
    for sample_id, seed in acknowledged.items():
        image, _, corrected, _ = workspace.load_sample(sample_id)
        expected_image, expected_mask = draw_scene(seed, 240, 320)
        assert np.array_equal(image, expected_image) and np.array_equal(corrected, expected_mask)
    assert_workspace_consistent(workspace)
    assert set(workspace.split_ids("all")) >= set(acknowledged)


@pytest.mark.slow
def test_kill_during_fine_tune_keeps_the_live_model(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    for seed in range(6):
        image, truth = draw_scene(seed)
        workspace.save_sample(image, np.zeros_like(truth), truth, model=MODEL, weights_version="v",
                              source_name=f"f{seed}.png")
    first = FinetuneJob(workspace, MODEL, FinetuneSettings(seconds=2, whole=WholePathSettings(crop=(64, 80)))).run()
    workspace.set_live(MODEL, first.version)
    process = run_script(FINETUNER, str(workspace.root))
    assert process.stdout.readline().strip() == "TRAINING"
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    reopened = Workspace(tmp_path / "ws")
    assert reopened.live_version(MODEL) == first.version
    assert [e.version for e in reopened.versions(MODEL)] == [first.version]
    assert load_live(reopened, MODEL).version == f"workspace {first.version}"
    assert_workspace_consistent(reopened)
    second = FinetuneJob(reopened, MODEL, FinetuneSettings(seconds=2, whole=WholePathSettings(crop=(64, 80)))).run()
    assert second.version == "v2"
