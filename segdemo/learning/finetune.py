"""The Fine-tune job: one press of the Fine-tune button, run in the background with its workspace's job slot held.

With fewer training samples than ``FinetuneSettings.encoder_after`` it takes the top path
(:mod:`segdemo.learning.top_path`), from then on the whole-network path (:mod:`segdemo.learning.whole_path`); either
way it writes a new version ``checkpoints/<model>/vN`` and promotes it only if the guard says so. This module owns
what both paths share: the slot (one job per workspace at a time, in this process and across processes), the
thread, cancelling, and the progress the Fine-tune tab shows. Segmentation is untouched while a job runs; the fast
learner (:mod:`segdemo.learning.learner`) waits for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.top_path import finetune_top
from segdemo.learning.whole_path import finetune_whole
from segdemo.promotion.judge import NewVersion
from segdemo.promotion.live import load_live
from segdemo.store import StoreError, Workspace


class JobBusy(RuntimeError):
    """A fine-tune is already running for this workspace."""


@dataclass
class JobState:
    """What the job is doing, for the Fine-tune tab: ``status`` idle / running / done / cancelled / failed, the
    message, ``progress`` in [0, 1], times (time.monotonic()), the loss curve and the finished run's ``result``."""

    status: str = "idle"
    message: str = ""
    progress: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)
    result: NewVersion | None = None

    def say(self, message: str) -> None:
        """Show ``message`` as what the job is doing."""
        self.message = message

    def step(self, step: int, loss: float, progress: float, doing: str) -> None:
        """A training step done: its loss joins the curve, ``progress`` (in [0, 1]) and the message follow it."""
        self.losses.append((step, round(loss, 4)))
        self.progress = min(progress, 0.99)
        self.message = f"{doing}: step {step}, loss {loss:.3f}"

    def elapsed(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def remaining(self) -> float:
        if self.status != "running" or self.progress <= 0:
            return 0.0
        return max(0.0, self.elapsed() * (1 - self.progress) / self.progress)


_ACTIVE: dict[Path, "FinetuneJob"] = {}
_ACTIVE_LOCK = threading.Lock()


class FinetuneJob:
    """One fine-tune of ``model`` in ``workspace``. ``start()`` runs it in a thread, ``run()`` in this one."""

    def __init__(self, workspace: Workspace, model: str, settings: FinetuneSettings | None = None) -> None:
        self.workspace, self.model, self.settings = workspace, model, settings or FinetuneSettings()
        self.state = JobState()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._process_lock = FileLock(str(workspace.root / ".finetune.lock"), timeout=0, thread_local=False)

    def cancel(self) -> None:
        self._cancel.set()

    def start(self) -> "FinetuneJob":
        """Claim the workspace and run in a daemon thread; raise JobBusy if another job holds it and
        StoreError if the workspace lacks training or held-out samples."""
        self.samples()
        self._claim()
        self._thread = threading.Thread(target=self._run_claimed, name=f"finetune-{self.model}", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> NewVersion:
        """Run to the end in the calling thread; raise StoreError / WeightsError / JobBusy on failure."""
        self._claim()
        self._run_claimed()
        if self.state.status == "failed":
            raise StoreError(self.state.message)
        return self.state.result

    def _claim(self) -> None:
        """Take the workspace's job slot: in this process (_ACTIVE) and across processes (a file lock that the
        OS drops if the process dies)."""
        with _ACTIVE_LOCK:
            current = _ACTIVE.get(self.workspace.root)
            if current is not None:
                raise JobBusy(f"a fine-tune of {current.model} is already running in this workspace; "
                              "wait for it or cancel it")
            try:
                self._process_lock.acquire()
            except Timeout:
                raise JobBusy("another program is fine-tuning in this workspace; wait for it to finish") from None
            _ACTIVE[self.workspace.root] = self
        self.state = JobState(status="running", message="preparing", started=time.monotonic())

    def _run_claimed(self) -> None:
        try:
            self.state.result = self._finetune()
            self.state.status = "cancelled" if self.state.result.version is None else "done"
            self.state.message = describe(self.state.result)
        except Exception as err:  # reported to the user through the job state
            self.state.status, self.state.message = "failed", str(err)
        finally:
            self.state.finished = time.monotonic()
            with _ACTIVE_LOCK:
                _ACTIVE.pop(self.workspace.root, None)
                self._process_lock.release()

    def samples(self) -> tuple[list[str], list[str]]:
        """(train ids, held-out ids) of the workspace; StoreError when either is empty."""
        train_ids, heldout_ids = self.workspace.split_ids("train"), self.workspace.split_ids("heldout")
        if not train_ids or not heldout_ids:
            raise StoreError(f"fine-tuning needs training and held-out samples; this workspace has "
                             f"{len(train_ids)} training and {len(heldout_ids)} held-out. Save at least 3 samples "
                             "(every third is held out to measure the model, up to 4, then 1 in 5)")
        return train_ids, heldout_ids

    def _finetune(self) -> NewVersion:
        train_ids, heldout_ids = self.samples()
        live = load_live(self.workspace, self.model)
        path = finetune_top if live.entry is not None and len(train_ids) < self.settings.encoder_after \
            else finetune_whole
        result = path(self.workspace, self.model, live, self.settings, train_ids=train_ids, heldout_ids=heldout_ids,
                      state=self.state, should_stop=self._cancel.is_set)
        if result.version is not None:
            self.state.progress = 1.0
        return result


def active_job(workspace: Workspace) -> FinetuneJob | None:
    with _ACTIVE_LOCK:
        return _ACTIVE.get(workspace.root)


def describe(result: NewVersion) -> str:
    """One line for the user: what changed and whether it went live."""
    if result.version is None:
        return "fine-tune cancelled; nothing was saved and the live model is unchanged"
    status = "promoted (now live)" if result.promoted else "NOT promoted"
    return (f"{result.model} {result.version} {status}, trained {result.seconds:.0f} s on "
            f"{len(result.train_ids)} samples: {result.decision.explain(result.live_name)}")
