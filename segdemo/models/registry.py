"""One registry for every architecture: ``register_model``, ``list_models``, ``build_model``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from segdemo.models.base import SegmentationModel
from segdemo.weights import WeightsEntry, WeightsError, resolve_entry, shipped_entries


@dataclass(frozen=True)
class ModelSpec:
    """A registered builder: ``family`` is fcn / unet / segnet, ``config`` is paper or compact."""

    name: str
    family: str
    config: str
    builder: Callable[..., SegmentationModel]
    summary: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(*, family: str, config: str) -> Callable:
    """Decorator: register a keyword-only builder under its function name."""

    def wrap(builder: Callable[..., SegmentationModel]) -> Callable[..., SegmentationModel]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        summary = (builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else ""
        _REGISTRY[name] = ModelSpec(name=name, family=family, config=config, builder=builder, summary=summary)
        return builder

    return wrap


def list_models(*, family: str | None = None, config: str | None = None) -> list[str]:
    """Registered model names, sorted; optionally only one family or config."""
    return sorted(n for n, s in _REGISTRY.items()
                  if (family is None or s.family == family) and (config is None or s.config == config))


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None


def shipped_weights(name: str) -> WeightsEntry | None:
    """The shipped weights entry for ``name``, or None."""
    get_spec(name)
    return shipped_entries().get(name)


def build_model(name: str, *, num_classes: int | None = None, in_channels: int = 3,
                weights: str | Path | WeightsEntry | None = None, **kwargs) -> SegmentationModel:
    """Build a registered model.

    ``weights``: None (random init), ``"default"`` (the shipped weights), a WeightsEntry, or a path to a
    ``.safetensors``/``.json`` pair. With weights, ``num_classes`` defaults to the weights' label set; a
    different ``num_classes`` keeps everything but the classifier, which is re-initialised.
    """
    spec = get_spec(name)
    if weights is None:
        return spec.builder(num_classes=11 if num_classes is None else num_classes, in_channels=in_channels, **kwargs)
    if isinstance(weights, str) and weights == "default":
        entry = shipped_weights(name)
        if entry is None:
            raise WeightsError(f"model {name!r} has no shipped weights")
    else:
        entry = resolve_entry(weights)
    if entry.model != name:
        raise WeightsError(f"weights {entry.file.name} are for model {entry.model!r}, not {name!r}")
    model = spec.builder(num_classes=entry.labels.num_classes, in_channels=in_channels,
                         input_scale=entry.input_scale, **kwargs)
    try:
        model.load_state_dict(entry.load_state_dict())
    except RuntimeError as err:
        raise WeightsError(f"{entry.file.name} does not fit model {name!r}: {str(err).splitlines()[0]}") from err
    if num_classes is not None and num_classes != entry.labels.num_classes:
        model.reset_classifier(num_classes)
    return model
