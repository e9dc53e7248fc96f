"""A team on one queue: simulated annotators (gradio_client sessions) press Next and Save until a queue of imported
images is labelled; optionally the app is killed with -9 mid-way and restarted on the same workspace.

    python -m benchmarks.team [--annotators 4] [--images 40] [--kill-after-saves N] [--model NAME] [--json]

Starts ``python app.py`` on a free 127.0.0.1 port with a fresh workspace holding ``--images`` drawn street scenes as
unlabelled samples. Each annotator loops: ``/next`` (the next image no other session holds), a correction of the
mask it was shown (a band of one class, different per annotator and image), ``/save``. Prints:

- ``handed_out_twice``: images handed to two annotators whose holds overlapped (a hold lasts from Next until that
  annotator's save, next Next or the kill) or handed out after they were saved (must be 0);
- ``lost``: acknowledged saves whose mask is not a revision of the sample on disk (must be 0);
- ``saved_twice``: samples with more than one revision (must be 0);
- saves per minute and the p50 / p95 latency of Next and Save;
- with ``--kill-after-saves``: the kill comes while a save is in flight; the claims on disk right after the kill
  and after the restart (they must survive), how the annotators reconnected, and how many saves the kill cut off
  and how many of those were written before it (an image whose save was written is labelled, and is not handed
  out again).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.load import free_port, percentile_ms, wait_until_up
from segdemo.claims import CLAIMS_FILE
from segdemo.store import Workspace
from segdemo.ui import painter_value, rle_decode, street_scene

ROOT = Path(__file__).resolve().parents[1]
SIZE = (360, 480)


@dataclass
class Report:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_s: list = field(default_factory=list)
    save_s: list = field(default_factory=list)
    holds: list = field(default_factory=list)
    """(sample id, annotator, handed out at, released at) per Next answered."""
    acknowledged: list = field(default_factory=list)
    """(sample id, mask, at) per save the app acknowledged."""
    saving: int = 0
    """How many saves are in flight now (the kill waits for one, so that a save is cut off)."""
    unacknowledged: list = field(default_factory=list)
    """(sample id, mask) per save cut off by the kill: it may or may not have been written before the app died."""
    refused: int = 0
    errors: list = field(default_factory=list)
    reconnects: int = 0


class App:
    """The app process on one port and workspace; ``generation`` counts restarts, ``up`` is set while it serves."""

    def __init__(self, workspace: Path, claim_minutes: float) -> None:
        self.workspace, self.claim_minutes = workspace, claim_minutes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.up = threading.Event()
        self.generation = 0

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port),
                                         "--workspace", str(self.workspace), "--claim-minutes",
                                         str(self.claim_minutes)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_until_up(self.url, self.process)
        self.generation += 1
        self.up.set()

    def kill(self) -> None:
        self.up.clear()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def correction(prediction: np.ndarray, annotator: int, sample_id: str) -> np.ndarray:
    """What annotator ``annotator`` paints on ``sample_id``: a band of one class over the model's mask."""
    mask = prediction.copy()
    row = (annotator * 37 + sum(map(ord, sample_id))) % (mask.shape[0] - 20)
    mask[row:row + 20] = (annotator + sum(map(ord, sample_id))) % 11
    return mask


def annotator(index: int, app: App, model: str, report: Report, done: threading.Event) -> None:
    from gradio_client import Client

    client, generation, held, saving = None, 0, None, None
    while not done.is_set():
        app.up.wait()
        if client is None or generation != app.generation:
            if held is not None:  # the app died under this hold: it ended then
                report.holds.append((held[0], index, held[1], time.monotonic()))
                held = None
            client, generation = Client(app.url, verbose=False), app.generation
            report.reconnects += generation > 1
        try:
            started = time.perf_counter()
            outputs = client.predict(model, "order", api_name="/next")
            report.next_s.append(time.perf_counter() - started)
            status, payload = str(outputs[2]), outputs[3]
            if "queued sample" not in status:
                if "No images queued" in str(outputs[4]):
                    done.set()
                else:
                    time.sleep(0.3)  # every queued image is open elsewhere
                continue
            data = json.loads(payload)
            sample_id = status.split("queued sample ", 1)[1].split(",", 1)[0]
            now = time.monotonic()
            if held is not None:
                report.holds.append((held[0], index, held[1], now))
            held = (sample_id, now)
            mask = correction(rle_decode(*data["pred"], (data["h"], data["w"])), index, sample_id)
            time.sleep(0.2)  # the person paints
            started, saving = time.perf_counter(), (sample_id, mask)
            with report.lock:
                report.saving += 1
            try:
                saved = str(client.predict(painter_value(mask, data["token"]), api_name="/save"))
            finally:
                with report.lock:
                    report.saving -= 1
            report.save_s.append(time.perf_counter() - started)
            saving = None
            released = time.monotonic()
            report.holds.append((sample_id, index, held[1], released))
            held = None
            if "Saved" in saved:
                with report.lock:
                    report.acknowledged.append((sample_id, mask, released))
            else:
                report.refused += 1
                report.errors.append(f"annotator {index}: save of {sample_id} refused: {saved[:160]}")
        except Exception as err:  # the app was killed mid-request, or a real error (reported)
            if saving is not None:
                with report.lock:
                    report.unacknowledged.append(saving)
                saving = None
            if app.up.is_set() and generation == app.generation:
                report.errors.append(f"annotator {index}: {type(err).__name__}: {str(err)[:160]}")
                time.sleep(0.5)


def handed_out_twice(report: Report) -> int:
    """Images whose holds by different annotators overlap, or handed out after their first acknowledged save."""
    twice = set()
    saved_at = {}
    for sample_id, _, at in report.acknowledged:
        saved_at[sample_id] = min(at, saved_at.get(sample_id, at))
    holds = sorted(report.holds, key=lambda h: h[2])
    for i, (sample_id, who, start, end) in enumerate(holds):
        if sample_id in saved_at and start > saved_at[sample_id]:
            twice.add(sample_id)
        for other_id, other, other_start, other_end in holds[i + 1:]:
            if other_id == sample_id and other != who and other_start < end:
                twice.add(sample_id)
    return len(twice)


def cut_off_written(workspace_dir: Path, report: Report) -> int:
    """Saves cut off by the kill whose mask is on disk, of samples no acknowledged save labelled (after the restart
    the same annotator may be handed the image of a save the kill stopped before it was written, and paint it the
    same way)."""
    acknowledged = {sample_id for sample_id, *_ in report.acknowledged}
    return kept(workspace_dir, [save for save in report.unacknowledged if save[0] not in acknowledged])


def saved_twice(workspace_dir: Path) -> int:
    """Samples with more than one revision: each image must be labelled once."""
    workspace = Workspace(workspace_dir)
    return sum(len(workspace.history(meta.id)) > 1 for meta in workspace.list_samples())


def kept(workspace_dir: Path, saves: list) -> int:
    """How many of ``saves`` ((sample id, mask, ...) each) one of their sample's revisions on disk holds."""
    workspace, found = Workspace(workspace_dir), 0
    for sample_id, mask, *_ in saves:
        try:
            revisions = [workspace.load_revision(sample_id, r.n) for r in workspace.history(sample_id)]
        except Exception:
            revisions = []
        found += any(np.array_equal(mask, other) for other in revisions)
    return found


def claims_on_disk(workspace_dir: Path) -> list[str]:
    try:
        return [c["sample_id"] for c in json.loads((workspace_dir / CLAIMS_FILE).read_text())["claims"]]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--kill-after-saves", type=int, default=0, help="kill -9 the app after this many saves, "
                                                                        "then restart it (0 = never)")
    parser.add_argument("--claim-minutes", type=float, default=10.0)
    parser.add_argument("--model", default="fcn8s_lite0")
    parser.add_argument("--timeout", type=float, default=540, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    workspace_dir = Path(tempfile.mkdtemp(prefix="segdemo-team-")) / "workspace"
    workspace = Workspace(workspace_dir)
    for seed in range(args.images):
        workspace.add_unlabelled(street_scene(seed, SIZE), source_name=f"street-{seed:03d}.png")
    app, report, done = App(workspace_dir, args.claim_minutes), Report(), threading.Event()
    kill = {}
    try:
        app.start()
        started = time.monotonic()
        threads = [threading.Thread(target=annotator, args=(i, app, args.model, report, done), daemon=True)
                   for i in range(args.annotators)]
        for thread in threads:
            thread.start()
        while not done.is_set() and time.monotonic() - started < args.timeout:
            if (args.kill_after_saves and not kill and len(report.acknowledged) >= args.kill_after_saves
                    and report.saving):
                app.kill()
                kill = {"saves_before": len(report.acknowledged), "claims_after_kill": claims_on_disk(workspace_dir)}
                app.start()
                kill["claims_after_restart"] = claims_on_disk(workspace_dir)
            if len(Workspace(workspace_dir).list_unlabelled()) == 0:
                done.set()
            time.sleep(0.2)
        done.set()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - started
    finally:
        app.stop()
    labelled = len(Workspace(workspace_dir).list_samples())
    summary = {
        "annotators": args.annotators, "images": args.images, "labelled": labelled, "seconds": round(elapsed, 1),
        "saves_acknowledged": len(report.acknowledged), "saves_per_minute": round(len(report.acknowledged)
                                                                                  / elapsed * 60, 1),
        "handed_out_twice": handed_out_twice(report), "saved_twice": saved_twice(workspace_dir),
        "lost": len(report.acknowledged) - kept(workspace_dir, report.acknowledged),
        "refused": report.refused, "errors": len(report.errors),
        "next_p50_ms": percentile_ms(report.next_s, 50), "next_p95_ms": percentile_ms(report.next_s, 95),
        "save_p50_ms": percentile_ms(report.save_s, 50), "save_p95_ms": percentile_ms(report.save_s, 95),
    }
    if kill:
        survived = set(kill["claims_after_kill"]) <= set(kill["claims_after_restart"])
        summary.update(killed_after_saves=kill["saves_before"], claims_at_kill=len(kill["claims_after_kill"]),
                       claims_survived=survived, reconnects=report.reconnects,
                       saves_cut_off=len(report.unacknowledged),
                       saves_cut_off_written=cut_off_written(workspace_dir, report))
    print(f"{args.annotators} annotators, {args.images} queued images: {labelled} labelled in {elapsed:.0f} s "
          f"({summary['saves_per_minute']} saves/min); handed out twice {summary['handed_out_twice']}, lost "
          f"{summary['lost']}, refused {report.refused}, errors {len(report.errors)}; Next p50 "
          f"{summary['next_p50_ms']} ms p95 {summary['next_p95_ms']} ms; Save p50 {summary['save_p50_ms']} ms p95 "
          f"{summary['save_p95_ms']} ms")
    if kill:
        print(f"kill -9 after {kill['saves_before']} saves: {len(kill['claims_after_kill'])} claims on disk, "
              f"{'all' if summary['claims_survived'] else 'NOT all'} still there after the restart; "
              f"{report.reconnects} reconnects; {summary['saves_cut_off']} saves cut off by the kill, "
              f"{summary['saves_cut_off_written']} of them written before it")
    for error in report.errors[:10]:
        print("  " + error)
    if args.json:
        print(json.dumps(summary))
    ok = summary["handed_out_twice"] == 0 and summary["lost"] == 0 and labelled == args.images
    return 0 if ok and not report.errors and summary.get("claims_survived", True) else 1


if __name__ == "__main__":
    sys.exit(main())
