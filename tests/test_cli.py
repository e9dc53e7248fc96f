"""Every CLI command end to end on a small dataset the tests draw, plus 2-process DDP training."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.labels import CAMVID11
from segdemo.store import Workspace

ROOT = Path(__file__).resolve().parents[1]


def segdemo(*args: str, check: bool = True, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = (launcher or [sys.executable, "-m", "segdemo"]) + list(args)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def last_json(result: subprocess.CompletedProcess):
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "fcn.safetensors"
    segdemo("train", "--model", "fcn8s_compact", "--data", str(tiny_dataset), "--out", str(out), "--epochs", "3",
            "--batch-size", "4", "--crop", "64", "80", "--base-size", "72", "--lr", "5e-3")
    return out


def test_models_json_lists_every_registered_model():
    from segdemo.models import list_models

    rows = last_json(segdemo("models", "--json"))
    assert [r["name"] for r in rows] == list_models()
    assert {"name", "family", "params", "weights"} <= set(rows[0])


def test_train_writes_weights_entry_logs_and_resume_state(trained):
    entry = json.loads(trained.with_suffix(".json").read_text())
    assert entry["model"] == "fcn8s_compact" and entry["labels"]["name"] == "camvid11"
    assert entry["input"]["base_size"] == 72
    assert entry["recipe"]["epochs"] == 3 and entry["recipe"]["seconds"] > 0 and "command" in entry["recipe"]
    assert 0 <= entry["metrics"]["val"]["miou"] <= 1
    log = trained.with_suffix(".log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,") and len(log) == 4
    assert trained.with_suffix(".last.safetensors").is_file()


def test_resume_continues_from_the_last_epoch(trained, tiny_dataset, tmp_path):
    copy = tmp_path / "fcn.safetensors"
    for suffix in (".safetensors", ".json", ".last.safetensors", ".last.json"):
        shutil.copy(trained.with_suffix(suffix), copy.with_suffix(suffix))
    result = segdemo("train", "--model", "fcn8s_compact", "--data", str(tiny_dataset), "--out", str(copy),
                     "--epochs", "4", "--batch-size", "4", "--crop", "64", "80", "--base-size", "72", "--resume",
                     "--bf16")
    assert "epoch 4 " in result.stdout and "epoch 1 " not in result.stdout
    assert json.loads(copy.with_suffix(".last.json").read_text())["config"]["bf16"] is True
    assert len(copy.with_suffix(".log.csv").read_text().splitlines()) == 5


def test_eval_json(trained, tiny_dataset):
    metrics = last_json(segdemo("eval", "--model", "fcn8s_compact", "--weights", str(trained),
                                "--data", str(tiny_dataset), "--split", "val", "--json"))
    for key in ("miou", "pixel_acc", "mean_acc"):
        assert 0 <= metrics[key] <= 1
    assert set(metrics["per_class_iou"]) == set(CAMVID11.names)
    assert metrics["images"] == 3 and metrics["seconds"] >= 0
    assert metrics["base_size"] == 72
    recorded = json.loads(trained.with_suffix(".json").read_text())["metrics"]["val"]["miou"]
    assert metrics["miou"] == pytest.approx(recorded, abs=1e-6)


def test_eval_at_a_lower_resolution(trained, tiny_dataset):
    metrics = last_json(segdemo("eval", "--model", "fcn8s_compact", "--weights", str(trained), "--base-size", "36",
                                "--data", str(tiny_dataset), "--split", "val", "--json"))
    assert metrics["base_size"] == 36 and 0 <= metrics["miou"] <= 1


def test_predict_writes_palette_masks_and_overlays(trained, tiny_dataset, tmp_path):
    images = sorted((tiny_dataset / "images").glob("*.png"))[:2]
    segdemo("predict", "--model", "fcn8s_compact", "--weights", str(trained), "--input", *map(str, images),
            "--out", str(tmp_path))
    for image in images:
        with Image.open(tmp_path / image.name) as mask, Image.open(image) as source:
            assert mask.mode == "P" and mask.size == source.size
        assert (tmp_path / f"{image.stem}_overlay.png").is_file()


def test_predict_reports_bad_files_and_fails(trained, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = segdemo("predict", "--model", "fcn8s_compact", "--weights", str(trained), "--input", str(bad),
                     "--out", str(tmp_path / "out"), check=False)
    assert result.returncode != 0 and "not an image" in result.stderr
    assert not (tmp_path / "out" / "notes.png").exists()


def test_bench_all_reports_latency_and_efficiency():
    rows = last_json(segdemo("bench", "--all", "--runs", "2", "--json"))
    assert [r["model"] for r in rows] == ["fcn8s_compact", "segnet_compact", "unet_compact", "fcn8s_lite0",
                                          "segnet_lite0", "unet_lite0", "lraspp_mobilenet_v3_large"]
    assert [r.get("peer", False) for r in rows] == [False] * 6 + [True] and rows[-1]["peer_ratio"] == 1.0
    for row in rows:
        assert row["ms_p50"] > 0 and row["ms_p90"] >= row["ms_p50"] and row["ceiling_gflops_per_s"] > 0
        assert 0 < row["efficiency"] and 2 <= row["gflops"] <= 20
        assert row["peer_ratio"] == pytest.approx(row["ms_p50"] / rows[-1]["ms_p50"], abs=1e-3)


@pytest.mark.parametrize("args, message", [
    (["eval", "--model", "nope", "--data", ".", "--split", "val"], "unknown model"),
    (["train", "--model", "unet_compact", "--data", "/nonexistent", "--out", "/tmp/x"], "no split"),
])
def test_errors_are_one_clear_line_and_nonzero(args, message):
    result = segdemo(*args, check=False)
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_finetune_and_bench_loop(trained, tiny_dataset, tmp_path):
    workspace = Workspace(tmp_path / "ws")
    for index, sample_id in enumerate((tiny_dataset / "splits" / "train.txt").read_text().split()[:4]):
        with Image.open(tiny_dataset / "images" / f"{sample_id}.png") as image, \
                Image.open(tiny_dataset / "masks" / f"{sample_id}.png") as mask:
            truth = np.array(mask)
            workspace.save_sample(np.array(image), np.zeros_like(truth), truth, model="fcn8s_compact",
                                  weights_version="random", sample_id=sample_id)
    result = last_json(segdemo("finetune", "--workspace", str(tmp_path / "ws"), "--model", "fcn8s_compact",
                               "--seconds", "3", "--json"))
    assert result["version"] == "v1" and result["train_samples"] + result["heldout_samples"] == 4
    assert result["guard"]["images"] == result["heldout_samples"] == 1
    # the saved "predictions" are all class 0: the live model got every other class wrong on the recent saves
    assert result["guard"]["learning"] and result["guard"]["verdict"] in ("learning", "forgets")
    assert result["promoted"] == (result["guard"]["verdict"] == "learning")
    assert (tmp_path / "ws" / "checkpoints" / "fcn8s_compact" / "v1.safetensors").is_file()

    finetune_text = segdemo("finetune", "--workspace", str(tmp_path / "ws"), "--model", "fcn8s_compact",
                            "--seconds", "2").stdout
    assert ("NOT promoted" in finetune_text or "promoted (now live)" in finetune_text) and "on 1 held-out image:" in finetune_text

    run = segdemo("bench-loop", "--model", "fcn8s_compact", "--data", str(tiny_dataset),
                  "--split", "train", "--n", "4", "--seconds", "3", "--json")
    loop = last_json(run)
    assert "guard: " in run.stdout and loop["explanation"] in run.stdout
    assert loop["n"] == 4 and loop["scored"] == 4
    for key in ("miou_before", "miou_saves", "miou_after"):
        assert 0 <= loop[key] <= 1
    assert loop["seconds"] > 0 and isinstance(loop["promoted"], bool)
    assert [u["after"] for u in loop["learning"]] == [1, 2, 3, 4] and loop["save_to_learned_median_s"] > 0


def test_bench_session_end_to_end(tiny_dataset):
    run = segdemo("bench-session", "--model", "fcn8s_compact", "--data", str(tiny_dataset), "--split", "train",
                  "--images", "7", "--every", "3", "--seconds", "2", "--json")
    row = last_json(run)
    assert row["ids"] == sorted(row["ids"]) and len(row["ids"]) == len(row["errors"]) == 7
    assert all(0 <= e <= 1 for e in row["errors"])
    assert row["effort"] == pytest.approx(sum(row["errors"]), abs=1e-3)
    assert row["effort_ratio"] == pytest.approx(row["effort"] / row["effort_no_loop"], abs=1e-3)
    assert [t["after"] for t in row["finetunes"]] == [3, 6]
    assert all(isinstance(t["promoted"], bool) and t["seconds"] > 0 for t in row["finetunes"])
    assert row["errors"][0] == row["errors_no_loop"][0], "before the first save the starting model predicts"
    assert len(row["learning"]) == 7 and row["fast_updates"] == 7


def test_bench_strokes_end_to_end(tiny_dataset):
    """The simulated clicker with and without the fill-in: the keys the issue names, clicks within the cap."""
    rows = {}
    for assist in ("on", "off"):
        run = segdemo("bench-strokes", "--model", "fcn8s_lite0", "--data", str(tiny_dataset), "--split", "train",
                      "--images", "3", "--assist", assist, "--max-clicks", "8", "--json")
        rows[assist] = row = last_json(run)
        assert {"model", "assist", "images", "clicks", "clicks_mean", "clicks_first5", "clicks_last10", "reached",
                "refit_s_median", "refit_s_p95"} <= set(row)
        assert row["assist"] is (assist == "on") and row["images"] == 3 and len(row["clicks"]) == 3
        assert all(0 <= c <= 8 for c in row["clicks"]) and 0 <= row["reached"] <= 1
    assert rows["on"]["refit_s_median"] is not None or sum(rows["on"]["clicks"]) == 0
    assert rows["off"]["refit_s_median"] is None


def test_finetune_refuses_an_empty_workspace(tmp_path):
    Workspace(tmp_path / "empty")
    result = segdemo("finetune", "--workspace", str(tmp_path / "empty"), "--model", "fcn8s_compact", check=False)
    assert result.returncode != 0 and "needs training and held-out samples" in result.stderr


def test_ddp_two_processes_on_cpu(tiny_dataset, tmp_path):
    out = tmp_path / "ddp.safetensors"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "segdemo"]
    segdemo("train", "--model", "fcn8s_compact", "--data", str(tiny_dataset), "--out", str(out), "--epochs", "2",
            "--batch-size", "4", "--crop", "64", "80", "--base-size", "72", launcher=launcher)
    entry = json.loads(out.with_suffix(".json").read_text())
    assert entry["recipe"]["processes"] == 2 and entry["recipe"]["command"].startswith("torchrun")
    assert len(out.with_suffix(".log.csv").read_text().splitlines()) == 3


def test_job_settings_take_the_new_keys_and_those_from_before_the_split():
    from segdemo.cli import CommandError, job_settings

    settings = job_settings(["top.lr=0.001", "lr=0.0002", "top_crop=none", "encoder_after=0"], seconds=5)
    assert (settings.top.lr, settings.whole.lr, settings.top.crop) == (0.001, 0.0002, None)
    assert settings.encoder_after == 0 and settings.seconds == 5
    with pytest.raises(CommandError, match="whole.batch_size"):
        job_settings(["learning_rate=1"])


def test_learner_settings_parse_numbers_and_refuse_what_is_not_one():
    from segdemo.cli import CommandError, learner_settings

    settings = learner_settings(["seconds=6", "max_steps=60", "crop=none", "continue_candidate=true"])
    assert (settings.seconds, settings.max_steps, settings.crop, settings.continue_candidate) == (6, 60, None, True)
    with pytest.raises(CommandError, match="'abc' is not a number"):
        learner_settings(["seconds=abc"])
    with pytest.raises(CommandError, match="max_steps"):
        learner_settings(["steps=60"])
    with pytest.raises(CommandError, match="seconds > 0"):
        learner_settings(["seconds=0"])


def test_the_app_refuses_bad_learner_settings_before_it_starts(capsys):
    import app

    with pytest.raises(SystemExit) as exited:
        app.main(["--learner", "seconds=soon"])
    assert exited.value.code == 2 and "'soon' is not a number" in capsys.readouterr().err
