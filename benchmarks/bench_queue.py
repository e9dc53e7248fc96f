"""Labelling a folder, timed: import, queue scoring, Next image → editor payload ready, superpixels, GrabCut.

Builds the app's handlers on a fresh temporary workspace, imports N synthetic 360x480 street scenes, scores the
queue in the background (the default model), then presses Next R times (the handler: pick the most uncertain
image, segment it with the live model, render the view, build the editor payload with superpixels and doubtful
pixels). Also times ``segdemo.tools.superpixels`` and ``segdemo.tools.grabcut`` (a car-sized and a large box) on a
360x480 image. Prints each figure and one JSON line.

    python -m benchmarks.bench_queue [--images 40] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    import app
    from segdemo import tools
    from segdemo.inference import configure_threads
    from segdemo.ui import street_scene

    configure_threads()
    scratch = Path(tempfile.mkdtemp(prefix="segdemo-bench-queue-"))
    handlers = app.SegdemoApp(scratch / "workspace")
    model = app.default_model(handlers.models())
    folder = scratch / "photos"
    folder.mkdir()
    for seed in range(args.images):
        Image.fromarray(street_scene(100 + seed)).save(folder / f"street-{seed:03d}.png")
    session = handlers.new_session()

    started = time.perf_counter()
    status, session = handlers.import_files([str(p) for p in sorted(folder.iterdir())], model, session,
                                            progress=lambda *a, **k: None)
    import_s = time.perf_counter() - started
    scorer = handlers._scorers[str(handlers.workspace(session).root)]
    scorer.join()
    score_s = time.time() - scorer.state.started
    print(f"import {args.images} images: {import_s:.2f} s ({import_s / args.images * 1000:.0f} ms each); "
          f"scoring them in the background with {model}: {score_s:.1f} s", flush=True)

    handlers.next_image(model, "uncertainty", session)  # warm-up
    next_ms = median_ms(lambda: handlers.next_image(model, "uncertainty", session), args.runs)
    print(f"Next image -> editor payload ready (360x480, {model}): median {next_ms:.0f} ms over {args.runs}",
          flush=True)

    image = street_scene(7)
    superpixel_ms = median_ms(lambda: tools.superpixels(image), args.runs)
    grabcut_small = median_ms(lambda: tools.grabcut(image, (150, 220, 300, 300)), args.runs)
    grabcut_large = median_ms(lambda: tools.grabcut(image, (20, 20, 460, 340)), args.runs)
    print(f"superpixels 360x480: {superpixel_ms:.0f} ms; GrabCut 150x80 box: {grabcut_small:.0f} ms, "
          f"440x320 box: {grabcut_large:.0f} ms", flush=True)
    print(json.dumps({"model": model, "images": args.images, "import_s": round(import_s, 2),
                      "score_s": round(score_s, 2), "next_ms_p50": next_ms, "superpixels_ms_p50": superpixel_ms,
                      "grabcut_small_ms_p50": grabcut_small, "grabcut_large_ms_p50": grabcut_large},
                     separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
