"""The Fine-tune button's settings: what its two paths share (:class:`FinetuneSettings`), the top path's
(:class:`TopPathSettings`, ``top.*``) and the whole-network path's (:class:`WholePathSettings`, ``whole.*``), and
how a ``KEY=VALUE`` of the CLI's ``--job`` names one (:func:`current_key`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class TopPathSettings:
    """The top path (fewer than ``FinetuneSettings.encoder_after`` training samples; :mod:`segdemo.learning.top_path`),
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
    ``non_classifier_lr_mult`` scales the LR of everything but the classifier; ``l2sp`` pulls weights toward the
    starting point. Held-out checks come at least ``steps_between_checks`` steps apart (a few samples make
    one-step epochs), and ``patience`` counts checks. A new classifier (another label set) trains at ``new_head_lr``
    with ``new_head_encoder_lr_mult`` for the whole budget with no early stopping, and without frozen BN, the
    non-classifier LR scaling or L2-SP: there is no trained head to stay near. ``encoder_lr_mult`` scales the LR of a pretrained
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
    non_classifier_lr_mult: float = 1.0
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


RENAMED_SETTINGS = {"backbone_lr_mult": "non_classifier_lr_mult"}
"""Settings renamed since (old field name → new), whatever their path."""


def current_key(key: str) -> str:
    """A setting's key now: ``top_lr`` (the flat layout before the top and whole paths were split) is
    ``top.lr``, ``lr`` is ``whole.lr``, ``recent`` is ``top.recent``, ``whole.backbone_lr_mult`` is
    ``whole.non_classifier_lr_mult`` (:data:`RENAMED_SETTINGS`); ValueError naming the keys for one that never
    existed."""
    known = FinetuneSettings.keys()
    path, dot, name = key.rpartition(".")
    key = path + dot + RENAMED_SETTINGS.get(name, name)
    if key in known:
        return key
    for renamed in ((f"top.{key[4:]}",) if key.startswith("top_") else (f"whole.{key}", f"top.{key}")):
        if renamed in known:
            return renamed
    raise ValueError(f"unknown fine-tune setting {key!r}; the settings are: {', '.join(known)}")
