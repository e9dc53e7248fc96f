"""Browser latency of the app: upload a 360x480 image → its overlay shown, with the default model.

Serves the app in-process on a free port (fresh temporary workspace), drives headless Debian Chromium with
Playwright, and for each run uploads a different synthetic street scene, presses Segment and waits until the
overlay <img> has loaded. Prints each run (upload, Segment → overlay shown, model time reported by the server)
and the median of the totals, then one JSON line.

    python benchmarks/bench_app.py [--runs 7] [--warmup 2] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZE = (360, 480)

OVERLAY_SHOWN = """prev => {
  const img = document.querySelector('#overlay img');
  return img && img.src && img.src !== prev && img.complete && img.naturalWidth > 0;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--model", default=None, help="model name (default: the app's default model)")
    args = parser.parse_args()

    import app
    from playwright.sync_api import sync_playwright
    from segdemo.inference import configure_threads
    from segdemo.ui import street_scene

    configure_threads()
    scratch = Path(tempfile.mkdtemp(prefix="segdemo-bench-app-"))
    demo = app.build_demo(scratch / "workspace")
    model = args.model or app.default_model(demo.segdemo_app.models())
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    images = []
    for i in range(args.warmup + args.runs):
        path = scratch / f"scene-{i}.png"
        Image.fromarray(street_scene(100 + i, SIZE)).save(path)
        images.append(path)
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#segment-btn")
            if not page.input_value("#model-select input").startswith(model):
                page.click("#model-select input")
                page.locator("ul[role=listbox] li", has_text=model).first.click()
            for i, path in enumerate(images):
                previous = page.evaluate("document.querySelector('#overlay img')?.src || ''")
                started = time.perf_counter()
                page.set_input_files("#image-input input[type=file]", str(path))
                page.wait_for_function("() => { const i = document.querySelector('#image-input img'); "
                                       "return i && i.complete && i.naturalWidth > 0 && !i.src.startsWith('blob'); }")
                uploaded = time.perf_counter()
                page.click("#segment-btn")
                page.wait_for_function(OVERLAY_SHOWN, arg=previous)
                shown = time.perf_counter()
                status = page.inner_text("#segment-status")
                match = re.search(r"in (\d+) ms", status)
                row = {"upload_ms": (uploaded - started) * 1000, "segment_to_shown_ms": (shown - uploaded) * 1000,
                       "total_ms": (shown - started) * 1000, "model_ms": float(match.group(1)) if match else None}
                if i >= args.warmup:
                    rows.append(row)
                    print(f"run {len(rows)}: upload {row['upload_ms']:6.0f} ms · Segment → overlay shown "
                          f"{row['segment_to_shown_ms']:6.0f} ms · total {row['total_ms']:6.0f} ms "
                          f"(model {row['model_ms']:.0f} ms on the server)", flush=True)
                # The next upload replaces this one; clear it so the preview check sees the new image.
                page.click("#image-input button[aria-label='Remove Image']")
            browser.close()
    finally:
        demo.close()
    median = statistics.median(r["total_ms"] for r in rows)
    median_segment = statistics.median(r["segment_to_shown_ms"] for r in rows)
    model_times = [r["model_ms"] for r in rows if r["model_ms"] is not None]
    median_model = statistics.median(model_times) if model_times else None
    print(f"\n{model}, {SIZE[1]}x{SIZE[0]} image, {len(rows)} runs: upload → overlay shown median {median:.0f} ms "
          f"(Segment click → overlay {median_segment:.0f} ms; model {median_model or 0:.0f} ms)")
    print(json.dumps({"model": model, "size": list(SIZE), "runs": len(rows), "median_total_ms": round(median, 1),
                      "median_segment_to_shown_ms": round(median_segment, 1),
                      "median_model_ms": median_model, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
