"""The fast learner: after every Save, the live model learns the workspace's corrections within seconds.

Only a model's ``top`` learns (on the shared Lite0 encoder: each family's whole decoder; on the compact models a
last stage and the classifier; see each family's module); its ``trunk`` stays frozen, so the trunk's features of
every image are computed once and kept (:mod:`segdemo.learning.features`) and an update costs only the top's steps.
A run

1. starts from the live top (it keeps learning across saves) on the live model's trunk;
2. trains it for ``seconds`` on the training samples' cached features and their mirrors (a share of the steps
   on the newest sample), plus, when the trunk's own classifier knows the workspace's classes, a KL term to that
   classifier's predictions on the workspace's unlabelled images (it keeps what the shipped model knew where no
   correction speaks); the steps are :func:`segdemo.learning.top_training.train_top`, shared with the Fine-tune
   job's top path (:mod:`segdemo.learning.top_path`);
3. scores live and candidate on the held-out samples (pooled) and the unlabelled images (drift), and hands them
   to the one judge every learner calls (:func:`segdemo.promotion.judge.judge`: the guard with the test-then-train
   evidence of the recent saves);
4. writes the candidate as a new version holding only the top's tensors over the trunk's weights, and makes it
   live if the guard promotes it (:func:`segdemo.promotion.judge.publish_version`).

:class:`FastLearner` runs this in a background thread, restarts when a newer save arrives, waits while a
Fine-tune job runs in the workspace, and gives way to foreground work (:mod:`segdemo.priority`) between steps.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from segdemo.corrections import Corrections
from segdemo.learning.finetune import active_job
from segdemo.learning.top_training import TopTrunk, train_top, trainable_top, trunk_entry
from segdemo.picking import spread
from segdemo.promotion.guard import Decision
from segdemo.promotion.judge import NewVersion, judge, publish_version
from segdemo.promotion.live import load_live
from segdemo.store import StoreError, Workspace
from segdemo.weights import WeightsError, save_partial_weights, submodule_state


@dataclass(frozen=True)
class LearnerSettings:
    """``seconds`` of training per update (at most ``max_steps`` steps, one image each); ``lr`` for a top whose
    classifier came with the workspace's classes (the trunk's own, kept near it), ``new_set_lr`` for one the fast
    learner trained for another label set, ``new_lr`` for an untrained one (the first update on a new label set);
    ``newest_share`` of the steps train on the newest sample; ``distill`` weights the KL term on up to
    ``unlabelled`` unlabelled images, of which at most ``new_unlabelled_per_run`` get their features computed per
    update (the rest come in later updates); ``drift_images`` of them (evenly spread) measure the guard's drift (a
    top's prediction of a whole image is the slowest part of judging a decoder). ``continue_candidate`` starts each
    update from the previous update's top, promoted or not (else from the live top), so learning accumulates while
    the guard decides only what is served. ``crop`` (pixels of the model's input, a multiple of 32): each step
    trains on a random square window of that side in the cached features (None: the whole image); a step of a whole
    decoder then costs a fraction of a full image's, so an update takes several times more steps (pets3, 20
    corrections: U-Net 0.668 → 0.716 mIoU, FCN 0.707 → 0.721 with 192 instead of whole images). ``threads``:
    intra-op threads of the update (PyTorch sets them per thread): its operations are small, so one thread wastes no
    time synchronising and leaves the other core to the person (a step of the FCN-8s head took 15 ms on one thread
    and 67 ms on two while other work ran)."""

    seconds: float = 3.0
    max_steps: int = 400
    lr: float = 3e-4
    new_set_lr: float = 1e-3
    new_lr: float = 3e-3
    newest_share: float = 0.3
    distill: float = 1.0
    unlabelled: int = 30
    new_unlabelled_per_run: int = 3
    drift_images: int = 12
    continue_candidate: bool = False
    crop: int | None = 192
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.seconds > 0 or self.max_steps < 1 or self.threads < 1:
            raise ValueError("an update needs seconds > 0, max_steps >= 1 and threads >= 1, got "
                             f"seconds={self.seconds}, max_steps={self.max_steps}, threads={self.threads}")


def describe_update(result: NewVersion) -> str:
    """One line for the user: what an update did."""
    if result.version is None:
        return result.stopped
    plural = "" if result.samples == 1 else "s"
    if result.promoted:
        return f"learned from {result.samples} sample{plural} in {result.seconds:.1f} s — {result.version} live"
    return f"learned {result.version} from {result.samples} sample{plural} in {result.seconds:.1f} s; " + \
        result.decision.explain(result.live_name)


def learn(workspace: Workspace, model: str, settings: LearnerSettings | None = None, *,
          should_stop: Callable[[], bool] = lambda: False, trunk: TopTrunk | None = None,
          on_trunk: Callable[[TopTrunk], None] | None = None, previous: NewVersion | None = None) -> NewVersion:
    """One update of ``model`` in ``workspace`` (see the module docstring); raise StoreError / WeightsError when
    it cannot run. ``should_stop`` is polled between steps (a newer save: nothing is written); ``previous`` is
    the last update's result (see ``LearnerSettings.continue_candidate``)."""
    settings = settings or LearnerSettings()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _learn(workspace, model, settings, should_stop, trunk, on_trunk, previous)
    finally:
        torch.set_num_threads(threads)


def _learn(workspace: Workspace, model: str, settings: LearnerSettings, should_stop: Callable[[], bool],
           trunk: TopTrunk | None, on_trunk: Callable[[TopTrunk], None] | None,
           previous: NewVersion | None) -> NewVersion:
    started = time.monotonic()
    live = load_live(workspace, model)
    base, base_shipped = trunk_entry(live)
    if trunk is None or trunk.key != TopTrunk.key_of(base):
        trunk = TopTrunk(workspace, model, base, live.model)
        if on_trunk is not None:
            on_trunk(trunk)
    corrections = Corrections(workspace)
    train, heldout = corrections.train, [s.id for s in corrections.heldout]
    train_ids = [s.id for s in train]
    if not train:
        return NewVersion(model, None, False, None, live.source, live.described, time.monotonic() - started,
                          stopped="nothing to learn yet: save a corrected sample")
    features, targets = trunk.training_data(train, corrections)
    unlabelled = trunk.unlabelled(settings.unlabelled, settings.new_unlabelled_per_run) \
        if trunk.teacher is not None and settings.distill else {}

    student = copy.deepcopy(live.model).eval()
    if settings.continue_candidate and previous is not None and previous.top is not None \
            and previous.top["trunk"] == trunk.key and not live.new_head:
        student.load_state_dict(previous.top["state"], strict=False)
    lr = settings.new_lr if live.new_head else settings.lr if trunk.teacher is not None else settings.new_set_lr
    optimizer = torch.optim.AdamW(trainable_top(student), lr=lr, weight_decay=1e-4)
    rng = random.Random(settings.seed + len(train))
    torch.manual_seed(settings.seed + len(train))
    newest, ids = train[-1].id, train_ids
    train_started = time.monotonic()
    steps, stopped = train_top(
        student, optimizer, choose=lambda: newest if rng.random() < settings.newest_share else rng.choice(ids),
        features=features, targets=targets, unlabelled=unlabelled, teacher=trunk.teacher, distill=settings.distill,
        crop=settings.crop, rng=rng, steps=settings.max_steps, deadline=train_started + settings.seconds,
        should_stop=should_stop)
    if stopped == "stopped":
        return NewVersion(model, None, False, None, live.source, live.described, time.monotonic() - started,
                          train_ids, heldout, "stopped for a newer save", steps=steps,
                          train_seconds=time.monotonic() - train_started)
    train_seconds = time.monotonic() - train_started
    student.eval()

    judged = {i: unlabelled[i] for i in spread(list(unlabelled), settings.drift_images)}
    decision = _judge(corrections, model, live, student, trunk, heldout, judged)
    explanation = decision.explain(live.described)

    def write(path, version: str) -> None:
        save_partial_weights(student, student.top_modules(), path, base=base, shipped=base_shipped, model_name=model,
                             labels=workspace.labels, version=version,
                             meta={"parent": live.source, "learner": "fast", "train_ids": train_ids,
                                   "heldout_ids": heldout, "steps": steps, "seconds": round(train_seconds, 3),
                                   "guard": {**decision.to_dict(), "explanation": explanation},
                                   "recipe": {"settings": asdict(settings), "lr": lr,
                                              "unlabelled_images": len(unlabelled)},
                                   "created": time.time()})

    version = publish_version(workspace, model, decision, write)
    top = {"trunk": trunk.key,
           "state": {k: v.clone() for k, v in submodule_state(student, student.top_modules()).items()}}
    return NewVersion(model, version, decision.promote, decision, live.source, live.described,
                      time.monotonic() - started, train_ids, heldout, steps=steps, train_seconds=train_seconds, top=top)


@torch.no_grad()
def _judge(corrections: Corrections, model: str, live, student, trunk: TopTrunk, heldout: list[str],
           unlabelled: dict) -> Decision:
    """The guard's decision on ``student``; the live model's predictions are remembered per live version."""
    memo = f"{live.version}:{live.entry.sha256 if live.entry else ''}"
    return judge(corrections.workspace, model, live, trunk.scorer.confusion(live.model, heldout, corrections, memo=memo),
                 trunk.scorer.confusion(student, heldout, corrections), images=len(heldout),
                 drift=trunk.scorer.drift(live.model, student, unlabelled, memo=memo), corrections=corrections)


@dataclass
class LearnerState:
    """What the background learner is doing: ``status`` idle / waiting / learning / failed; ``last`` the latest
    finished update and ``requested`` when the save it answers arrived (time.monotonic())."""

    status: str = "idle"
    message: str = ""
    last: NewVersion | None = None
    requested: float = 0.0
    finished: float = 0.0
    updates: int = 0
    history: list[dict] = field(default_factory=list)


class FastLearner:
    """Runs :func:`learn` for one model of one workspace in a daemon thread, once per :meth:`notify`; a newer
    notify stops the update in progress and starts another that includes the newer save."""

    def __init__(self, workspace: Workspace, model: str, settings: LearnerSettings | None = None) -> None:
        self.workspace, self.model, self.settings = workspace, model, settings or LearnerSettings()
        self.state = LearnerState()
        self._request = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._trunk: TopTrunk | None = None

    def notify(self) -> None:
        """A sample was saved (or masks imported): learn it, stopping an update that does not have it."""
        with self._lock:
            self.state.requested = time.monotonic()
            self._idle.clear()
            self._request.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=f"learner-{self.model}", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no update is pending or running; False on timeout."""
        return self._idle.wait(timeout)

    def _remember_trunk(self, trunk: TopTrunk) -> None:
        self._trunk = trunk

    def run_once(self, should_stop: Callable[[], bool] = lambda: False) -> NewVersion:
        """One update now, in this thread, with this learner's cached features (what the thread runs per
        notify; the simulated person of :mod:`segdemo.session` calls it after each save)."""
        result = learn(self.workspace, self.model, self.settings, should_stop=should_stop, trunk=self._trunk,
                       on_trunk=self._remember_trunk, previous=self.state.last)
        if result.version is not None:
            self.state.last = result
        return result

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._request.is_set():
                    self._idle.set()
                    self.state.status = "idle"
                    self._thread = None
                    return
                self._request.clear()
            while active_job(self.workspace) is not None and not self._request.is_set():
                self.state.status, self.state.message = "waiting", "waiting for the Fine-tune job to finish"
                time.sleep(0.5)
            self.state.status, self.state.message = "learning", "learning from your corrections…"
            try:
                result = self.run_once(should_stop=self._request.is_set)
            except (StoreError, WeightsError, OSError, ValueError, RuntimeError) as err:
                self.state.status, self.state.message = "failed", f"could not learn: {err}"
                continue
            if result.version is None and self._request.is_set():
                continue
            self.state.message = describe_update(result)
            self.state.finished, self.state.updates = time.monotonic(), self.state.updates + 1
            self.state.history.append({"version": result.version, "promoted": result.promoted,
                                       "seconds": round(result.seconds, 2), "samples": result.samples,
                                       "steps": result.steps,
                                       "verdict": result.decision.verdict if result.decision else ""})


_LEARNERS: dict[tuple[str, str], FastLearner] = {}
_LEARNERS_LOCK = threading.Lock()


def learner_for(workspace: Workspace, model: str, settings: LearnerSettings | None = None) -> FastLearner:
    """The one fast learner of ``model`` in ``workspace`` in this process; ``settings`` (when given) apply from its
    next update on."""
    key = (str(workspace.root), model)
    with _LEARNERS_LOCK:
        if key not in _LEARNERS:
            _LEARNERS[key] = FastLearner(workspace, model, settings)
        elif settings is not None:
            _LEARNERS[key].settings = settings
        return _LEARNERS[key]
