"""The model dropdown and the models behind it: one entry per family, labelled from the shipped weights' metadata,
the default choice, and a cache of the live predictor per workspace and model."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from segdemo.bench import count_model_params
from segdemo.inference import Predictor
from segdemo.models import list_models, shipped_weights
from segdemo.promotion.live import load_live
from segdemo.store import SHIPPED, Workspace

MODEL_PREFERENCE = ("fcn8s_lite0", "unet_lite0", "segnet_lite0", "unet_compact", "fcn8s_compact", "segnet_compact")
"""Default model when no shipped weights say otherwise (best val mIoU among shipped compact models wins)."""


@dataclass(frozen=True)
class ModelChoice:
    """One dropdown entry: ``label`` shows params, speed and val mIoU from the weights' metadata."""

    name: str
    label: str
    trained: bool
    miou: float | None = None


def _model_label(name: str, workspace: Workspace | None = None) -> tuple[str, bool, float | None]:
    entry = shipped_weights(name)
    meta = entry.meta if entry is not None else {}
    params = meta.get("params")
    if params is None:
        params = count_model_params(name)
    parts = [name]
    if params:
        parts.append(f"{params / 1e6:.1f}M params")
    ms = (meta.get("bench") or {}).get("ms_p50")
    if ms:
        parts.append(f"{ms:.0f} ms")
    metrics = (meta.get("metrics") or {})
    miou = (metrics.get("val") or next(iter(metrics.values()), {}) or {}).get("miou") if metrics else None
    own = entry is not None and (workspace is None or entry.labels.same_classes(workspace.labels))
    if entry is None:
        parts.append("untrained")
    elif miou is not None and own:
        parts.append(f"{entry.labels.name} val mIoU {miou:.3f}")
    if workspace is not None:
        parts.append(workspace_figure(workspace, name))
    return " · ".join(p for p in parts if p), entry is not None, miou


def workspace_figure(workspace: Workspace, name: str) -> str:
    """What ``name``'s live version scored in ``workspace`` when the guard let it in ("here: mIoU … on N
    images"), "" while the shipped weights of the workspace's own classes are live, else "not trained here yet"."""
    live = workspace.live_version(name)
    if live == SHIPPED:
        entry = shipped_weights(name)
        return "" if entry is not None and entry.labels.same_classes(workspace.labels) else "not trained here yet"
    version = next((e for e in workspace.versions(name) if e.version == live), None)
    guard = (version.meta.get("guard") or {}) if version is not None else {}
    if not guard.get("images"):
        return f"here: {live}"
    return f"here: {live}, mIoU {guard['miou_after']:.3f} on {guard['images']} images"


def _val_miou(name: str) -> float:
    entry = shipped_weights(name)
    return ((entry.meta.get("metrics") or {}).get("val") or {}).get("miou", -1.0) if entry is not None else -1.0


def offered_models(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """One model per family: among the shipped weights not marked ``"offered": false`` (a model beaten in its
    family; its entry's ``offered_reason`` says how, see ``weights/README.md``), the one with the best val mIoU
    (without shipped weights, the compact configs); plus ``extra`` (models with workspace versions)."""
    names = []
    for family in ("fcn", "unet", "segnet"):
        trained = [name for name in list_models(family=family)
                   if shipped_weights(name) is not None and shipped_weights(name).meta.get("offered", True)]
        if trained:
            names.append(max(trained, key=_val_miou))
    if not names:
        names = list_models(config="compact")
    return names + [name for name in extra if name not in names]


def model_catalogue(extra: list[str] | tuple[str, ...] = (), workspace: Workspace | None = None) -> list[ModelChoice]:
    """Dropdown entries for :func:`offered_models`; untrained ones are marked "untrained". With ``workspace`` the
    shipped figure shows only where the workspace has the weights' classes, and each model's live version in the
    workspace adds its own (:func:`workspace_figure`)."""
    choices = []
    for name in offered_models(extra):
        label, trained, miou = _model_label(name, workspace)
        choices.append(ModelChoice(name, label, trained, miou))
    return choices


def default_model(choices: list[ModelChoice]) -> str:
    trained = [c for c in choices if c.trained and c.miou is not None]
    if trained:
        return max(trained, key=lambda c: c.miou).name
    names = [c.name for c in choices]
    return next((n for n in MODEL_PREFERENCE if n in names), names[0])


class PredictorCache:
    """Predictors per (workspace, model, live version, shipped sha): a promotion or rollback changes the key."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Predictor] = {}
        self._lock = threading.Lock()

    def get(self, workspace: Workspace, model: str) -> Predictor:
        shipped = shipped_weights(model)
        key = (str(workspace.root), model, workspace.live_version(model), shipped.sha256 if shipped else None)
        with self._lock:
            predictor = self._cache.get(key)
            if predictor is None:
                predictor = load_live(workspace, model).predictor(workspace, model)
                for old in [k for k in self._cache if k[:2] == key[:2]]:
                    del self._cache[old]
                self._cache[key] = predictor
            return predictor
