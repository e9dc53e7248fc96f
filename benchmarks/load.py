"""Load: concurrent gradio_client sessions doing segment + save against the app on loopback, for a bounded time.

    python -m benchmarks.load [--clients 4] [--seconds 30] [--finetune-seconds 30] [--model NAME] [--json]

Starts ``python app.py`` on a free 127.0.0.1 port with a fresh workspace (or uses ``--url`` + ``--workspace``).
With ``--finetune-seconds`` > 0, a fine-tune of the same workspace (``python -m segdemo finetune``) runs during
the load. Prints requests/s, p50/p95 latency per endpoint and errors, then checks every acknowledged save on disk:
``lost`` counts samples the app acknowledged that are missing or differ. JSON on the last line with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.store import Workspace
from segdemo.ui import painter_value, street_scene

ROOT = Path(__file__).resolve().parents[1]
SIZE = (360, 480)
SAVED = re.compile(r"Saved \*\*([A-Za-z0-9._-]+)\*\*(?: as sample \*\*([A-Za-z0-9._-]+)\*\*)?")
"""The Save status: ``Saved **NAME**``, or ``Saved **NAME** as sample **ID**`` when the id differs from the name."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen | None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout:.0f}s")


def corrected_mask(seed: int) -> np.ndarray:
    """The 'correction' a simulated user sends: sky above a seed-dependent horizon, road below."""
    mask = np.full(SIZE, 3, dtype=np.uint8)
    mask[: SIZE[0] // 3 + seed % 40] = 0
    return mask


def seed_workspace(workspace: Workspace, model: str, count: int) -> None:
    """Saved samples for the concurrent fine-tune to train on (ids that the clients never reuse)."""
    for seed in range(100_000, 100_000 + count):
        image = street_scene(seed, SIZE)
        workspace.save_sample(image, np.zeros(SIZE, np.uint8), corrected_mask(seed), model=model,
                              weights_version="load-seed", source_name=f"seed{seed}.png")


def client_loop(url: str, model: str, index: int, deadline: float, scratch: Path, report: dict) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    seed = index * 10_000
    while time.monotonic() < deadline:
        seed += 1
        path = scratch / f"c{index}-{seed}.png"
        Image.fromarray(street_scene(seed, SIZE)).save(path)
        try:
            started = time.perf_counter()
            client.predict(handle_file(str(path)), model, api_name="/predict")
            report["predict"].append(time.perf_counter() - started)
            started = time.perf_counter()
            status = client.predict(painter_value(corrected_mask(seed), ""), api_name="/save")
            report["save"].append(time.perf_counter() - started)
        except Exception as err:  # counted and shown: the goal is zero
            report["errors"].append(f"client {index}: {type(err).__name__}: {str(err)[:200]}")
            continue
        match = SAVED.search(status if isinstance(status, str) else str(status))
        if match is None:
            report["errors"].append(f"client {index}: save not acknowledged: {str(status)[:200]}")
        else:
            report["acknowledged"].append((match.group(2) or match.group(1), seed))


def verify(workspace_dir: Path, acknowledged: list[tuple[str, int]]) -> int:
    """Acknowledged samples that are missing or differ on disk."""
    workspace, lost = Workspace(workspace_dir), 0
    for sample_id, seed in acknowledged:
        try:
            image, _, corrected, _ = workspace.load_sample(sample_id)
        except Exception:
            lost += 1
            continue
        if not (np.array_equal(image, street_scene(seed, SIZE)) and np.array_equal(corrected, corrected_mask(seed))):
            lost += 1
    return lost


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="an app already running (then also pass --workspace)")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--finetune-seconds", type=float, default=30, help="0 = no concurrent fine-tune")
    parser.add_argument("--model", default="fcn8s_lite0")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="segdemo-load-"))
    workspace_dir = Path(args.workspace) if args.workspace else scratch / "workspace"
    app_process = finetune_process = None
    url = args.url
    try:
        if url is None:
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            app_process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port),
                                            "--workspace", str(workspace_dir)], cwd=ROOT,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(url, app_process)
        if args.finetune_seconds > 0:
            seed_workspace(Workspace(workspace_dir), args.model, 4)
            finetune_process = subprocess.Popen(
                [sys.executable, "-m", "segdemo", "finetune", "--workspace", str(workspace_dir), "--model", args.model,
                 "--seconds", str(args.finetune_seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
        report = {"predict": [], "save": [], "errors": [], "acknowledged": []}
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(url, args.model, i, deadline, scratch, report))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        finetune_line = ""
        if finetune_process is not None:
            output, _ = finetune_process.communicate(timeout=600)
            finetune_line = output.strip().splitlines()[-1] if output.strip() else ""
            if finetune_process.returncode != 0:
                report["errors"].append(f"concurrent fine-tune failed: {finetune_line}")
    finally:
        if app_process is not None:
            app_process.terminate()
            app_process.wait(30)
    lost = verify(workspace_dir, report["acknowledged"])
    requests = len(report["predict"]) + len(report["save"])
    summary = {
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": requests,
        "requests_per_s": round(requests / elapsed, 2),
        "predict_p50_ms": percentile_ms(report["predict"], 50), "predict_p95_ms": percentile_ms(report["predict"], 95),
        "save_p50_ms": percentile_ms(report["save"], 50), "save_p95_ms": percentile_ms(report["save"], 95),
        "saves_acknowledged": len(report["acknowledged"]), "errors": len(report["errors"]), "lost": lost,
        "finetune": finetune_line,
    }
    print(f"{args.clients} clients for {elapsed:.0f}s: {requests} requests ({summary['requests_per_s']}/s); "
          f"predict p50 {summary['predict_p50_ms']} ms p95 {summary['predict_p95_ms']} ms; save p50 "
          f"{summary['save_p50_ms']} ms p95 {summary['save_p95_ms']} ms; {summary['saves_acknowledged']} saves "
          f"acknowledged, {lost} lost, {len(report['errors'])} errors")
    for error in report["errors"][:10]:
        print("  " + error)
    if finetune_line:
        print(f"concurrent fine-tune: {finetune_line}")
    if args.json:
        print(json.dumps(summary))
    return 0 if not report["errors"] and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
