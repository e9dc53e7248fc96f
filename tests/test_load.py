"""The load benchmarks as checks: concurrent segment + save with a fine-tune running loses nothing; a team of
annotators on one queue labels each image once, through a kill -9 of the app."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(module: str, *args: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Run ``python -m benchmarks.<module> ARGS --json`` → (the JSON summary on its last line, the process)."""
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args, "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1]), result


@pytest.mark.slow
def test_concurrent_sessions_with_a_fine_tune_lose_nothing():
    summary, result = run_benchmark("load", "--clients", "3", "--seconds", "12", "--finetune-seconds", "8")
    assert summary["errors"] == 0 and summary["lost"] == 0, result.stdout[-2000:]
    assert summary["saves_acknowledged"] >= 3 and summary["requests_per_s"] > 0
    assert re.search(r" v\d+ (promoted|NOT promoted)", summary["finetune"]), summary["finetune"]  # the fast learner
    # writes versions after the saves too, so the job's number is not known beforehand


@pytest.mark.slow
def test_a_team_on_one_queue_labels_each_image_once_through_a_kill():
    summary, result = run_benchmark("team", "--annotators", "3", "--images", "12", "--kill-after-saves", "5")
    assert summary["handed_out_twice"] == 0 and summary["lost"] == 0 and summary["errors"] == 0, result.stdout
    assert summary["labelled"] == 12 and summary["saved_twice"] == 0, result.stdout
    # a save cut off by the kill may have been written without its answer reaching the annotator: that image is
    # labelled and not handed out again, so it is counted once, as written
    assert summary["saves_acknowledged"] + summary["saves_cut_off_written"] == 12, result.stdout
    assert summary["claims_survived"] and summary["reconnects"] >= 1, result.stdout
