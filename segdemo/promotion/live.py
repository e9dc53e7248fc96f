"""The model a workspace serves: its promoted version, else the last good one of its lineage, else the shipped
weights (with a new classifier where the workspace has another label set)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from segdemo.data import BASE_SIZE
from segdemo.inference import Predictor
from segdemo.models import SegmentationModel, build_model, shipped_weights
from segdemo.store import SHIPPED, Workspace
from segdemo.weights import (IMAGENET_MEAN, IMAGENET_STD, WeightsEntry, WeightsError, resolve_entry,
                             save_weights)


@dataclass
class LiveModel:
    """The model a workspace serves: its weights, version label and whether its classifier is untrained.

    ``warning`` is set when the promoted version could not be loaded and an older good one is served instead.
    """

    model: SegmentationModel
    entry: WeightsEntry | None
    version: str
    new_head: bool
    source: str = SHIPPED
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    warning: str = ""
    base_size: int | None = BASE_SIZE

    @property
    def described(self) -> str:
        """How messages name it: "the shipped weights" or its version."""
        return "the shipped weights" if self.source == SHIPPED else self.source

    def predictor(self, workspace: Workspace, name: str) -> Predictor:
        return Predictor(self.model, labels=workspace.labels, mean=self.mean, std=self.std, name=name,
                         version=self.version, base_size=self.base_size, new_head=self.new_head)


def _lineage(workspace: Workspace, name: str) -> list[tuple[str, WeightsEntry | None]]:
    """(version, entry) from the live version back through its parents to the shipped weights."""
    chain = workspace.lineage(name, workspace.live_version(name))
    return [(entry.version, entry) for entry in chain] + [(SHIPPED, shipped_weights(name))]


def load_live(workspace: Workspace, name: str) -> LiveModel:
    """Build ``name`` with the weights live in ``workspace`` (its promoted version, else the shipped ones).

    A promoted version that fails its sha256 or cannot be read is skipped for its parent (the last good one),
    with ``warning`` saying so; WeightsError only when nothing in the lineage loads. When the weights have
    another label set, the classifier is re-initialised (seeded) for the workspace's classes (``new_head``).
    """
    num_classes, problems = workspace.labels.num_classes, []
    for version, entry in _lineage(workspace, name):
        if entry is None:
            torch.manual_seed(0)
            return LiveModel(build_model(name, num_classes=num_classes), None, "untrained", True,
                             warning="; ".join(problems))
        torch.manual_seed(0)
        try:
            model = build_model(name, num_classes=num_classes, weights=entry)
        except WeightsError as err:
            problems.append(f"{version} refused: {err}")
            continue
        new_head = not entry.labels.same_classes(workspace.labels)
        origin = SHIPPED if version == SHIPPED else "workspace"
        label = f"{origin} {entry.version}" + (" + new head" if new_head else "")
        if problems:
            label += f" (live {problems[0].split()[0]} refused: damaged)"
        return LiveModel(model, entry, label, new_head, version, tuple(entry.mean), tuple(entry.std),
                         warning="; ".join(problems), base_size=entry.base_size)
    raise WeightsError(f"no usable weights for {name}: " + "; ".join(problems))


def start_from(workspace: Workspace, model: str, weights: str | Path) -> str:
    """Make ``weights`` (a ``.safetensors``/``.json`` pair) the live model of ``workspace`` as a new version,
    as if a learner had produced it; the benchmarks start from weights other than the shipped ones this way."""
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
