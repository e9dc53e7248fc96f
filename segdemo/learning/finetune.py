"""Fine-tune the live model of a workspace on its corrected samples, in the background, with proof.

With fewer training samples than ``FinetuneSettings.encoder_after`` the job trains the model's top on cached
features (:mod:`segdemo.learning.refine`), judged on the held-out samples and on the latest saves it was not trained
on; from then on it trains the whole network on the ``train`` samples, judged on the held-out samples (by then a
fifth of the samples). Either way it writes a new version ``checkpoints/<model>/vN`` and promotes it only if the
guard says so, through the judge and publish every learner calls (:mod:`segdemo.promotion.judge`). One job runs per
workspace at a time; segmentation is untouched while it runs. The fast learner (:mod:`segdemo.learning.learner`)
updates only the model's top after each save and waits for the job.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout

from segdemo.corrections import Corrections
from segdemo.data import BASE_SIZE, Augment, SegmentationDataset
from segdemo.inference import Predictor
from segdemo.learning.refine import refine_top
from segdemo.learning.train import TrainConfig, cpu_has_native_bf16, evaluate, fit, machine_description
from segdemo.metrics import matrix_metrics
from segdemo.models import SegmentationModel, build_model
from segdemo.models.fuse import fold_batchnorm
from segdemo.picking import spread
from segdemo.promotion.evidence import came_with_classes, prediction_drift
from segdemo.promotion.guard import Decision
from segdemo.promotion.judge import judge, publish_version
from segdemo.promotion.live import LiveModel, load_live
from segdemo.store import SHIPPED, StoreError, Workspace
from segdemo.weights import WeightsError, resolve_entry, save_partial_weights, save_weights


class JobBusy(RuntimeError):
    """A fine-tune is already running for this workspace."""


@dataclass(frozen=True)
class TopPathSettings:
    """The top path (fewer than ``FinetuneSettings.encoder_after`` training samples; :mod:`segdemo.learning.refine`),
    chosen with ``python -m benchmarks.job_sweep`` on pets3 (see README).

    It runs ``steps_per_sample`` steps per training sample (within ``min_steps``..``max_steps``, cut short by the
    budget) on ``crop`` windows, at ``lr`` from a top that knows the classes (``new_lr`` from a new classifier),
    with ``distill`` x KL to the live model on ``FinetuneSettings.unlabelled`` unlabelled images, on ``threads``
    intra-op threads (the other core stays with the person), each step on the features of a sample at one of
    ``scales`` (x the size the model sees it at; other than 1 computed per press); its first phase leaves out the
    latest ``recent`` training samples (at most a quarter) to be judged on them.
    """

    steps_per_sample: int = 60
    min_steps: int = 300
    max_steps: int = 2400
    lr: float = 3e-4
    new_lr: float = 2e-3
    distill: float = 1.0
    crop: int | None = 192
    scales: tuple[float, ...] = (1.0,)
    threads: int = 1
    recent: int = 5


@dataclass(frozen=True)
class WholePathSettings:
    """The whole-network path (from ``FinetuneSettings.encoder_after`` training samples on), chosen earlier with
    ``python -m benchmarks.loop_protocol`` (see README).

    ``changed_weight`` > 1 weights the pixels the user changed more; ``freeze_bn`` keeps BatchNorm statistics;
    ``backbone_lr_mult`` scales the LR of everything but the classifier; ``l2sp`` pulls weights toward the
    starting point. Held-out checks come at least ``steps_between_checks`` steps apart (a few samples make
    one-step epochs), and ``patience`` counts checks. A new classifier (another label set) trains at ``new_head_lr``
    with ``new_head_encoder_lr_mult`` for the whole budget with no early stopping, and without frozen BN, backbone
    LR scaling or L2-SP: there is no trained head to stay near. ``encoder_lr_mult`` scales the LR of a pretrained
    encoder; ``distill`` weights a KL term to the live model's predictions on the training crops and on crops of
    ``FinetuneSettings.unlabelled`` unlabelled images (which train nothing else); ``average`` in [0, 1] blends the
    result back toward the starting weights (WiSE-FT: ``average`` x start + (1 − average) x fine-tuned).
    ``select_on_heldout`` keeps the best held-out state and stops early; off, the job trains for the whole budget
    and keeps its final weights, so the held-out images judge the result without having chosen it. ``bf16`` None
    runs the forward pass in bfloat16 where the CPU has it natively (off by default: the depthwise convolutions of
    the Lite0 encoder train slower in bfloat16 even there).
    """

    lr: float = 5e-4
    new_head_lr: float = 3e-3
    new_head_encoder_lr_mult: float = 0.1
    backbone_lr_mult: float = 1.0
    encoder_lr_mult: float = 1.0
    distill: float = 1.0
    average: float = 0.0
    select_on_heldout: bool = False
    batch_size: int = 4
    freeze_bn: bool = False
    l2sp: float = 0.0
    changed_weight: float = 1.0
    patience: int = 6
    steps_between_checks: int = 8
    max_epochs: int = 300
    crop: tuple[int, int] = (288, 384)
    bf16: bool | None = False


@dataclass(frozen=True)
class FinetuneSettings:
    """The Fine-tune button's settings: what both paths share, and each path's own (``top``, ``whole``).

    ``seconds`` None budgets ``seconds_per_sample`` per training sample, within ``min_seconds``..``max_seconds``
    (40 s up to 8 samples, 80 s for 16): more corrections get more steps. Below ``encoder_after`` training samples
    a press takes the top path, from then on the whole-network path. ``unlabelled`` unlabelled images keep the live
    model's predictions where no correction speaks, on either path.
    """

    seconds: float | None = None
    encoder_after: int = 60
    seconds_per_sample: float = 5.0
    min_seconds: float = 40.0
    max_seconds: float = 120.0
    unlabelled: int = 30
    seed: int = 0
    top: TopPathSettings = field(default_factory=TopPathSettings)
    whole: WholePathSettings = field(default_factory=WholePathSettings)

    def budget(self, train_samples: int) -> float:
        """Training seconds for ``train_samples`` samples: ``seconds`` when set, else the per-sample rule."""
        if self.seconds is not None:
            return float(self.seconds)
        return min(self.max_seconds, max(self.min_seconds, self.seconds_per_sample * train_samples))

    @staticmethod
    def keys() -> list[str]:
        """Every setting by name: this class's own fields, then ``top.<field>`` and ``whole.<field>``."""
        return ([f.name for f in fields(FinetuneSettings) if f.name not in ("top", "whole")]
                + [f"top.{f.name}" for f in fields(TopPathSettings)]
                + [f"whole.{f.name}" for f in fields(WholePathSettings)])

    def with_values(self, values: dict[str, object]) -> "FinetuneSettings":
        """These settings with ``values`` by key (see :meth:`keys`); a key of the layout before the split into
        paths is taken as the key it became (:func:`current_key`). ValueError for an unknown key."""
        own, paths = {}, {"top": {}, "whole": {}}
        for key, value in values.items():
            key = current_key(key)
            path, _, name = key.rpartition(".")
            (paths[path] if path else own)[name] = value
        return replace(self, **own, top=replace(self.top, **paths["top"]),
                       whole=replace(self.whole, **paths["whole"]))


def current_key(key: str) -> str:
    """A setting's key now: ``top_lr`` (the flat layout before the top and whole paths were split) is
    ``top.lr``, ``lr`` is ``whole.lr``, ``recent`` is ``top.recent``; ValueError naming the keys for one that never
    existed."""
    known = FinetuneSettings.keys()
    if key in known:
        return key
    for renamed in ((f"top.{key[4:]}",) if key.startswith("top_") else (f"whole.{key}", f"top.{key}")):
        if renamed in known:
            return renamed
    raise ValueError(f"unknown fine-tune setting {key!r}; the settings are: {', '.join(known)}")


@dataclass
class FinetuneResult:
    """``before``/``after``: metrics of the live and the new model on the evidence the guard judged (the
    held-out samples, and on the top path the ``recent_ids`` saves scored test-then-train); ``version`` None if
    cancelled."""

    model: str
    parent: str
    version: str | None
    promoted: bool
    before: dict
    after: dict | None
    seconds: float
    train_ids: list[str]
    heldout_ids: list[str]
    stopped: str
    decision: Decision | None = None
    live_name: str = ""
    recent_ids: list[str] = field(default_factory=list)


@dataclass
class JobState:
    status: str = "idle"
    message: str = ""
    progress: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)
    result: FinetuneResult | None = None

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

    def run(self) -> FinetuneResult:
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

    def _finetune(self) -> FinetuneResult:
        train_ids, heldout_ids = self.samples()
        live = load_live(self.workspace, self.model)
        if live.entry is not None and len(train_ids) < self.settings.encoder_after:
            return self._finetune_top(live, train_ids, heldout_ids)
        return self._finetune_whole(live, train_ids, heldout_ids)

    def _finetune_top(self, live: LiveModel, train_ids: list[str], heldout_ids: list[str]) -> FinetuneResult:
        """The top path (:mod:`segdemo.learning.refine`), judged on the held-out samples and the latest saves."""
        settings, workspace, labels = self.settings, self.workspace, self.workspace.labels
        live_name = "the shipped weights" if live.source == SHIPPED else live.source
        started = time.monotonic()
        corrections = Corrections(workspace)

        def on_step(step: int, loss: float, progress: float) -> None:
            self.state.losses.append((step, round(loss, 4)))
            self.state.progress = min(progress, 0.99)
            self.state.message = f"training the top: step {step}, loss {loss:.3f}"

        def on_message(message: str) -> None:
            self.state.message = message

        threads = torch.get_num_threads()
        torch.set_num_threads(settings.top.threads)
        try:
            refined = refine_top(workspace, self.model, live, settings, should_stop=self._cancel.is_set,
                                 on_step=on_step, on_message=on_message, corrections=corrections)
        finally:
            torch.set_num_threads(threads)
        seconds = time.monotonic() - started

        def metrics_of(matrix: np.ndarray) -> dict:
            return matrix_metrics(matrix, labels.names, labels.ignore_index)

        heldout_before = metrics_of(refined.heldout_before)
        if refined.stopped == "cancelled":
            return FinetuneResult(self.model, live.source, None, False, heldout_before, None, seconds, train_ids,
                                  heldout_ids, "cancelled")
        before_matrix = refined.heldout_before + refined.recent_before
        after_matrix = refined.heldout_after + refined.recent_after
        decision = judge(workspace, self.model, live, before_matrix, after_matrix,
                         images=len(heldout_ids) + len(refined.recent_ids), drift=refined.drift,
                         recent=len(refined.recent_ids), corrections=corrections)
        before, after = metrics_of(before_matrix), metrics_of(after_matrix)
        metrics = {"heldout_before": heldout_before, "heldout": metrics_of(refined.heldout_after),
                   "recent_before": metrics_of(refined.recent_before), "recent": metrics_of(refined.recent_after),
                   "evidence_before": before, "evidence": after}
        recipe = {"settings": asdict(settings), "path": "top", "lr": refined.lr, "steps": refined.steps,
                  "unlabelled_images": refined.unlabelled, "machine": machine_description()}

        def write(path, version: str) -> None:
            save_partial_weights(refined.model, refined.model.top_modules(), path, base=refined.base,
                                 shipped=refined.base_shipped, model_name=self.model, labels=labels, version=version,
                                 meta={"parent": live.source, "job": "top", "train_ids": train_ids,
                                       "heldout_ids": heldout_ids, "recent_ids": refined.recent_ids,
                                       "metrics": metrics, "seconds": round(seconds, 2),
                                       "guard": {**decision.to_dict(), "explanation": decision.explain(live_name)},
                                       "stopped": refined.stopped or "steps done", "created": time.time(),
                                       "recipe": recipe})

        version = publish_version(workspace, self.model, decision, write)
        self.state.progress = 1.0
        return FinetuneResult(self.model, live.source, version, decision.promote, before, after, seconds, train_ids,
                              heldout_ids, refined.stopped or "steps done", decision, live_name,
                              recent_ids=refined.recent_ids)

    def _finetune_whole(self, live: LiveModel, train_ids: list[str], heldout_ids: list[str]) -> FinetuneResult:
        """The whole network, judged on the held-out samples."""
        settings, workspace = self.settings, self.workspace
        whole = settings.whole
        parent = live.source
        live_name = "the shipped weights" if parent == SHIPPED else parent
        labels = workspace.labels
        pixel_weights = self._pixel_weights(train_ids)
        augment = Augment(crop=whole.crop, base_size=live.base_size or BASE_SIZE)
        train_set = SegmentationDataset(workspace.root, train_ids, labels=labels, augment=augment,
                                        pixel_weights=pixel_weights)
        heldout_set = SegmentationDataset(workspace.root, heldout_ids, labels=labels)
        self.state.message = "measuring the live model on held-out samples"
        live_predictor = live.predictor(workspace, self.model)  # a folded copy: training below changes live.model
        before = evaluate(live_predictor, heldout_set)

        new_head = live.new_head
        select = whole.select_on_heldout and not new_head
        steps_per_epoch = max(1, -(-len(train_set) // whole.batch_size))
        check_every = max(1, -(-whole.steps_between_checks // steps_per_epoch))
        config = TrainConfig(epochs=whole.max_epochs, batch_size=whole.batch_size,
                             lr=whole.new_head_lr if new_head else whole.lr,
                             seconds=settings.budget(len(train_ids)),
                             patience=whole.patience if select else None,
                             augment=augment,
                             val_every=check_every if select else whole.max_epochs + 1,
                             freeze_bn=whole.freeze_bn and not new_head,
                             backbone_lr_mult=1.0 if new_head else whole.backbone_lr_mult,
                             l2sp=0.0 if new_head else whole.l2sp, seed=settings.seed,
                             encoder_lr_mult=whole.new_head_encoder_lr_mult if new_head else whole.encoder_lr_mult,
                             distill=whole.distill,
                             bf16=cpu_has_native_bf16() if whole.bf16 is None else whole.bf16,
                             mean=live.mean, std=live.std)
        model = live.model
        best: dict = {}

        def on_best(current: SegmentationModel, metrics: dict, epoch: int) -> None:
            best.update(state=copy.deepcopy(current.state_dict()), metrics=metrics, epoch=epoch)

        def on_step(step: int, loss: float, progress: float) -> None:
            self.state.losses.append((step, round(loss, 4)))
            self.state.progress = min(progress, 0.99)
            self.state.message = f"training: step {step}, loss {loss:.3f}"

        teacher = fold_batchnorm(model) if whole.distill > 0 and not new_head else None
        unlabelled = spread(workspace.list_unlabelled(), settings.unlabelled) if teacher is not None else []
        if unlabelled:
            self.state.message = "reading unlabelled images for the distillation"
            train_set.add_unlabelled([workspace.load_image(m.id) for m in unlabelled])
        start = copy.deepcopy(model.state_dict()) if whole.average > 0 and not new_head else None
        result = fit(model, labels, train_set, heldout_set, config, on_best=on_best if select else None,
                     on_step=on_step, should_stop=self._cancel.is_set, progress_bar=False, teacher=teacher)
        if result.stopped == "cancelled":
            return FinetuneResult(self.model, parent, None, False, before, None, result.seconds,
                                  train_ids, heldout_ids, "cancelled")
        if select:
            model.load_state_dict(best["state"])
            after, kept_epoch = best["metrics"], best["epoch"]
        else:
            after, kept_epoch = result.history[-1].val, result.history[-1].epoch
        if start is not None:
            blend_weights(model, start, whole.average)
            after = evaluate(Predictor(model, labels=labels, mean=live.mean, std=live.std,
                                       base_size=augment.base_size), heldout_set)
        drift = None
        if not live.new_head and came_with_classes(workspace, self.model):  # keep what it knew where no one corrected
            self.state.message = "measuring how far the new version moves the unlabelled images' predictions"
            drift = prediction_drift(workspace, live_predictor,
                                     Predictor(model, labels=labels, mean=live.mean, std=live.std,
                                               base_size=augment.base_size))
        decision = judge(workspace, self.model, live, np.array(before["matrix"]), np.array(after["matrix"]),
                         images=len(heldout_ids), drift=drift)
        promoted = decision.promote
        recipe = {"settings": {**asdict(settings), "seconds": config.seconds, "bf16": config.bf16}, "path": "whole",
                  "unlabelled_images": len(unlabelled),
                  "machine": machine_description()}

        def write(path, version: str) -> None:
            save_weights(model, path, model_name=self.model, labels=labels, input_scale=model.input_scale,
                         base_size=augment.base_size, mean=live.mean, std=live.std, version=version,
                         meta={"parent": parent, "job": "whole", "train_ids": train_ids, "heldout_ids": heldout_ids,
                               "metrics": {"heldout_before": before, "heldout": after}, "seconds": result.seconds,
                               "guard": {**decision.to_dict(), "explanation": decision.explain(live_name)},
                               "stopped": result.stopped, "kept_epoch": kept_epoch, "created": time.time(),
                               "recipe": recipe, "history": [asdict(r) for r in result.history]})

        version = publish_version(workspace, self.model, decision, write)
        self.state.progress = 1.0
        return FinetuneResult(self.model, parent, version, promoted, before, after, result.seconds,
                              train_ids, heldout_ids, result.stopped, decision, live_name)

    def _pixel_weights(self, ids: list[str]) -> dict[str, np.ndarray] | None:
        """Weight ``changed_weight`` where the user changed the model's prediction, 1 elsewhere."""
        if self.settings.whole.changed_weight == 1.0:
            return None
        weights = {}
        for sample_id in ids:
            _, prediction, corrected, _ = self.workspace.load_sample(sample_id)
            weights[sample_id] = np.where(prediction != corrected, self.settings.whole.changed_weight, 1.0)
        return weights


def blend_weights(model: torch.nn.Module, start: dict[str, torch.Tensor], weight: float) -> None:
    """Set ``model``'s floating-point tensors to ``weight`` x ``start`` + (1 − weight) x their current value."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.mul_(1 - weight).add_(start[name], alpha=weight)


def active_job(workspace: Workspace) -> FinetuneJob | None:
    with _ACTIVE_LOCK:
        return _ACTIVE.get(workspace.root)


def describe(result: FinetuneResult) -> str:
    """One line for the user: what changed and whether it went live."""
    if result.version is None:
        return "fine-tune cancelled; nothing was saved and the live model is unchanged"
    status = "promoted (now live)" if result.promoted else "NOT promoted"
    return (f"{result.model} {result.version} {status}, trained {result.seconds:.0f} s on "
            f"{len(result.train_ids)} samples: {result.decision.explain(result.live_name)}")


def start_from(workspace: Workspace, model: str, weights: str | Path) -> str:
    """Make ``weights`` (a ``.safetensors``/``.json`` pair) the live model of ``workspace`` as a new version,
    as if a fine-tune had produced it; the benchmarks start from weights other than the shipped ones this way."""
    entry = resolve_entry(weights)
    if entry.model != model:
        raise WeightsError(f"{entry.file.name} holds {entry.model!r}, not {model!r}")
    version = workspace.next_version(model)
    built = build_model(model, weights=entry)
    save_weights(built, workspace.checkpoint_dir(model) / f"{version}.safetensors", model_name=model,
                 labels=entry.labels, input_scale=entry.input_scale, base_size=entry.base_size, mean=entry.mean,
                 std=entry.std, version=version, meta={"parent": SHIPPED, "source": str(entry.file)})
    workspace.set_live(model, version)
    return version
