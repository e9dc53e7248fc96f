"""Learning as you label, timed as the app runs it: the fast learner in its background thread after each save,
and what a person waiting for Segment / Next feels meanwhile.

    python -m benchmarks.bench_learning --model fcn8s_lite0 --data ../shared/data/pets3 --split trainval --saves 12

For each of ``--saves`` images (evenly spread over the split): predict it (the person's Segment / Next), save the
ground truth as the correction, notify the learner, and measure seconds from the save until a version that
learned it is live (or the guard's verdict). Then Segment latency: ``--runs`` predictions on an idle machine and
the same while the learner is busy with a new save, each prediction inside ``segdemo.priority.foreground`` as the
app's handlers do. With ``--press``, Fine-tune is then pressed (the job in its background thread, as the app
runs it) and Segment latency is measured again while the job trains, 0.2 s apart as a person clicks, against
the same spacing on an idle machine (back to back, caches stay warm: 47 against 54 ms for U-Net on CamVid),
with the press's seconds. Prints one JSON line of figures. Measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from segdemo.data import image_path, mask_path, read_mask, split_ids
from segdemo.fileio import read_rgb
from segdemo.inference import configure_threads
from segdemo.labels import dataset_labels
from segdemo.learning.finetune import FinetuneJob
from segdemo.learning.learner import FastLearner
from segdemo.priority import foreground
from segdemo.promotion.live import load_live
from segdemo.picking import evenly_spaced
from segdemo.store import Workspace


def timed_predictions(predictor, image, runs: int, gap: float = 0.0) -> list[float]:
    """Milliseconds of ``runs`` predictions, ``gap`` seconds apart (0: back to back, caches warm)."""
    times = []
    for _ in range(runs):
        with foreground():
            started = time.perf_counter()
            predictor.predict(image)
            times.append((time.perf_counter() - started) * 1000)
        time.sleep(gap)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fcn8s_lite0")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--saves", type=int, default=12)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--press", action="store_true", help="then press Fine-tune and time Segment while it runs")
    args = parser.parse_args()
    configure_threads()
    labels = dataset_labels(args.data)
    ids = evenly_spaced(split_ids(args.data, args.split), args.saves + 1)
    with tempfile.TemporaryDirectory(prefix="segdemo-learning-") as scratch:
        workspace = Workspace(scratch, labels=labels)
        learner = FastLearner(workspace, args.model)
        save_to_learned, verdicts = [], []
        for sample_id in ids[:-1]:
            image, truth = read_rgb(image_path(args.data, sample_id)), read_mask(mask_path(args.data, sample_id), labels)
            predictor = load_live(workspace, args.model).predictor(workspace, args.model)
            workspace.save_sample(image, predictor.predict(image).mask, truth, model=args.model,
                                  weights_version=predictor.version, sample_id=sample_id)
            saved = time.monotonic()
            learner.notify()
            learner.wait()
            save_to_learned.append(round(time.monotonic() - saved, 2))
            last = learner.state.last
            verdicts.append(last.decision.verdict if last and last.decision else learner.state.message)
        probe = read_rgb(image_path(args.data, ids[-1]))
        predictor = load_live(workspace, args.model).predictor(workspace, args.model)
        timed_predictions(predictor, probe, 3)
        idle = timed_predictions(predictor, probe, args.runs)
        busy = []
        for sample_id in ids[:3]:  # re-saving a sample starts an update, as a Save does
            rgb, prediction, corrected, _ = workspace.load_sample(sample_id)
            workspace.save_sample(rgb, prediction, corrected, model=args.model, weights_version=predictor.version,
                                  sample_id=sample_id)
            learner.notify()
            time.sleep(0.3)
            busy += timed_predictions(predictor, probe, args.runs // 3 + 1)
            learner.wait()
        press = {}
        if args.press:
            job = FinetuneJob(workspace, args.model).start()
            started, during = time.monotonic(), []
            while job.state.status == "running" and job.state.progress < 0.05:
                time.sleep(0.2)
            while job.state.status == "running" and len(during) < args.runs:
                during += timed_predictions(predictor, probe, 1, gap=0.2)
            job.join()
            apart = timed_predictions(predictor, probe, args.runs, gap=0.2)
            press = {"press_s": round(time.monotonic() - started, 1), "press_train_samples": len(job.samples()[0]),
                     "press_verdict": job.state.message, "segment_while_job_ms_median":
                     round(statistics.median(during), 1) if during else None,
                     "segment_idle_apart_ms_median": round(statistics.median(apart), 1),
                     "job_slowdown": round(statistics.median(during) / statistics.median(apart), 3) if during else None}
    print(json.dumps({
        "model": args.model, "data": str(args.data), "saves": len(save_to_learned),
        "save_to_learned_s": save_to_learned, "save_to_learned_median_s": statistics.median(save_to_learned),
        "verdicts": verdicts, "segment_idle_ms_median": round(statistics.median(idle), 1),
        "segment_while_learning_ms_median": round(statistics.median(busy), 1),
        "slowdown": round(statistics.median(busy) / statistics.median(idle), 3), **press,
    }))


if __name__ == "__main__":
    main()
