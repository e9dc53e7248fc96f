"""Press Fine-tune with several job settings on copies of one workspace and score each version on a split.

The workspace comes from ``python -m segdemo bench-loop ... --no-button --keep-workspace DIR`` (the saves made,
the button not pressed); each setting runs on a fresh copy of it, so every press starts from the same live
model. Prints, per setting: the version's mIoU on the split's images the workspace never had corrected, the
live model's, and the guard's verdict. This is how the job's defaults were chosen (see README).

    python -m benchmarks.job_sweep --workspace runs/ws --model fcn8s_lite0 --data ../shared/data/pets3 \\
        --split trainval --job "" "top.distill=0.3" "top.steps_per_sample=120"
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from segdemo.cli import job_settings
from segdemo.data import SegmentationDataset, split_ids
from segdemo.inference import Predictor, configure_threads
from segdemo.labels import dataset_labels
from segdemo.learning.finetune import FinetuneJob
from segdemo.learning.train import evaluate
from segdemo.models import build_model
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from segdemo.weights import WeightsEntry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--job", nargs="+", default=[""], help="settings, each as space-free KEY=VALUE,KEY=VALUE")
    args = parser.parse_args()
    configure_threads()
    labels = dataset_labels(args.data)
    source = Workspace(args.workspace)
    corrected = {s.id for s in source.list_samples() if s.labelled}
    scored = sorted(set(split_ids(args.data, args.split)) - corrected)
    scoring = SegmentationDataset(args.data, scored, labels=labels)
    live = evaluate(load_live(source, args.model).predictor(source, args.model), scoring)["miou"]
    print(f"live model: mIoU {live:.4f} on {len(scored)} images")
    for setting in args.job:
        pairs = [p for p in setting.split(",") if p]
        settings = job_settings(pairs)
        with tempfile.TemporaryDirectory(prefix="segdemo-sweep-") as scratch:
            copy = Path(scratch) / "ws"
            shutil.copytree(args.workspace, copy)
            workspace = Workspace(copy)
            started = time.monotonic()
            result = FinetuneJob(workspace, args.model, settings).run()
            seconds = time.monotonic() - started
            entry = WeightsEntry.from_json(workspace.checkpoint_dir(args.model) / f"{result.version}.json")
            model = build_model(args.model, weights=entry)
            miou = evaluate(Predictor(model, labels=labels, mean=entry.mean, std=entry.std,
                                      base_size=entry.base_size), scoring)["miou"]
        print(json.dumps({"job": setting or "defaults", "miou": round(miou, 4), "live": round(live, 4),
                          "gain": round(miou - live, 4), "promoted": result.promoted,
                          "verdict": result.decision.verdict, "seconds": round(seconds, 1),
                          "steps": entry.meta.get("recipe", {}).get("steps")}), flush=True)


if __name__ == "__main__":
    main()
