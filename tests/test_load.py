"""The load benchmark as a check: concurrent segment + save with a fine-tune running loses nothing."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_concurrent_sessions_with_a_fine_tune_lose_nothing():
    result = subprocess.run([sys.executable, "-m", "benchmarks.load", "--clients", "3", "--seconds", "12",
                             "--finetune-seconds", "8", "--json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["errors"] == 0 and summary["lost"] == 0, result.stdout[-2000:]
    assert summary["saves_acknowledged"] >= 3 and summary["requests_per_s"] > 0
    assert re.search(r" v\d+ (promoted|NOT promoted)", summary["finetune"]), summary["finetune"]  # the fast learner
    # writes versions after the saves too, so the job's number is not known beforehand
