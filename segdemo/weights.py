"""Weights as data: a safetensors file plus a JSON entry describing it (sha256, label set, input, metrics, recipe).

``foo.safetensors`` is always described by ``foo.json`` beside it. Loading checks the sha256 recorded in the
entry and refuses a mismatch. No pickles anywhere.

A *partial* entry (the fast learner's versions) holds only some tensors and names its ``base`` in the entry:
the shipped weights of its model, or a full version file beside it, each with the sha256 it was made from.
Loading reads the base and overlays the partial tensors, so a partial version loads like any other.

Tensors are read under the names the model has today: a file written before a model's layout changed (every
shipped FCN-8s file among them) loads unchanged, byte for byte, through :data:`RENAMED`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as save_tensors

from segdemo.data import BASE_SIZE
from segdemo.fileio import atomic_write_bytes, atomic_write_text, sha256_file
from segdemo.labels import CAMVID11, LabelSet

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RENAMED: dict[str, tuple[tuple[str, str], ...]] = {
    "fcn8s_lite0": (("head.", "decoder.head."),),
    "fcn8s_compact": (("backbone.", "encoder."),),
    "fcn8s_vgg16": (("backbone.", "encoder."),),
}
"""Per model, (old prefix, new prefix) of tensor names in files written before its layout changed."""


class WeightsError(ValueError):
    """A weights file that is missing, damaged or does not match its entry."""


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file and what is known about it.

    ``base_size``: shorter side (pixels) images are resized to before the network, the scale it was trained at
    (None: as given); ``input_scale``: fraction of that resolution the network runs at; ``mean``/``std``:
    per-channel normalisation of RGB values in [0, 1]. ``meta`` holds the rest (params, gflops, recipe, metrics, ...).
    """

    model: str
    file: Path
    sha256: str
    labels: LabelSet = CAMVID11
    input_scale: float = 1.0
    base_size: int | None = BASE_SIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    version: str = "v0"
    meta: dict = field(default_factory=dict)

    @property
    def json_path(self) -> Path:
        return self.file.with_suffix(".json")

    def to_dict(self) -> dict:
        return {
            "model": self.model, "file": self.file.name, "sha256": self.sha256, "version": self.version,
            "labels": self.labels.to_dict(),
            "input": {"base_size": self.base_size, "scale": self.input_scale, "mean": list(self.mean),
                      "std": list(self.std)},
            **self.meta,
        }

    @classmethod
    def from_json(cls, path: str | Path) -> "WeightsEntry":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            known = {"model", "file", "sha256", "version", "labels", "input"}
            return cls(
                model=data["model"], file=path.parent / data["file"], sha256=data["sha256"],
                labels=LabelSet.from_dict(data["labels"]), input_scale=float(data["input"]["scale"]),
                base_size=data["input"].get("base_size", BASE_SIZE),
                mean=tuple(data["input"]["mean"]), std=tuple(data["input"]["std"]),
                version=str(data.get("version", "v0")),
                meta={k: v for k, v in data.items() if k not in known},
            )
        except FileNotFoundError:
            raise WeightsError(f"no weights entry at {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise WeightsError(f"{path}: not a valid weights entry: {err}") from err

    def load_state_dict(self) -> dict[str, torch.Tensor]:
        """Verify the sha256 and read the tensors (over its base's, for a partial entry); raise WeightsError on
        any mismatch or damage."""
        state = self._read_tensors()
        base = self.meta.get("base")
        if not base:
            return state
        full = self.base_entry().load_state_dict()
        unknown = sorted(set(state) - set(full))
        if unknown:
            raise WeightsError(f"{self.file.name} holds tensors its base lacks: {', '.join(unknown[:3])}")
        full.update(state)
        return full

    def base_entry(self) -> "WeightsEntry":
        """The full weights a partial entry overlays; WeightsError if it is missing or not the one it was made from."""
        base = self.meta.get("base") or {}
        if base.get("shipped"):
            entry = shipped_entries().get(self.model)
            if entry is None:
                raise WeightsError(f"{self.file.name} builds on the shipped {self.model} weights, which are missing")
        else:
            entry = WeightsEntry.from_json(self.file.parent / Path(str(base.get("file", ""))).with_suffix(".json").name)
        if entry.sha256 != base.get("sha256") or entry.meta.get("base"):
            raise WeightsError(f"{self.file.name} was made on other base weights than {entry.file.name}")
        return entry

    def _read_tensors(self) -> dict[str, torch.Tensor]:
        if not self.file.is_file():
            raise WeightsError(f"weights file missing: {self.file}")
        actual = sha256_file(self.file)
        if actual != self.sha256:
            raise WeightsError(f"sha256 mismatch for {self.file.name}: expected {self.sha256[:12]}…, "
                               f"file has {actual[:12]}… (damaged or replaced); refusing to load it")
        try:
            return current_names(self.model, load_file(self.file))
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"{self.file.name}: not a readable safetensors file: {err}") from err


def current_names(model: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` of a ``model`` file under today's names (:data:`RENAMED`); the tensors themselves untouched."""
    renamed = {}
    for name, tensor in tensors.items():
        for old, new in RENAMED.get(model, ()):
            if name.startswith(old):
                name = new + name[len(old):]
                break
        renamed[name] = tensor
    return renamed


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file held in ``data`` ({} when it has none), read from its JSON header
    without decoding a tensor; ValueError when the header is damaged."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]).get("__metadata__") or {}


def resolve_entry(source: str | Path | WeightsEntry) -> WeightsEntry:
    """A WeightsEntry, or a path to ``.json`` / ``.safetensors`` → the entry (its JSON must exist)."""
    if isinstance(source, WeightsEntry):
        return source
    path = Path(source)
    return WeightsEntry.from_json(path if path.suffix == ".json" else path.with_suffix(".json"))


def save_weights(model: torch.nn.Module, path: str | Path, *, model_name: str, labels: LabelSet,
                 input_scale: float, base_size: int | None = BASE_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 version: str = "v0", meta: dict | None = None) -> WeightsEntry:
    """Write ``model``'s state as safetensors and its JSON entry, both atomically; return the entry."""
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save_tensors(state))
    entry = WeightsEntry(model=model_name, file=path, sha256=sha256_file(path), labels=labels,
                         input_scale=input_scale, base_size=base_size, mean=tuple(mean), std=tuple(std), version=version,
                         meta=dict(meta or {}))
    write_entry(entry)
    return entry


def submodule_state(model: torch.nn.Module, modules: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The entries of ``model``'s state dict that belong to ``modules`` (submodules of it), detached."""
    prefixes = tuple(name + "." for name, module in model.named_modules() if any(module is m for m in modules))
    return {k: v.detach() for k, v in model.state_dict().items() if k.startswith(prefixes)}


def save_partial_weights(model: torch.nn.Module, modules: list[torch.nn.Module], path: str | Path, *,
                         base: WeightsEntry, shipped: bool, model_name: str, labels: LabelSet, version: str,
                         meta: dict | None = None) -> WeightsEntry:
    """Write only the tensors of ``modules`` (submodules of ``model``) as a partial entry over ``base`` (a full
    entry: the shipped weights when ``shipped``, else a version file in the same folder as ``path``)."""
    if base.meta.get("base"):
        raise WeightsError("a partial entry must build on full weights")
    state = {k: v.to("cpu").contiguous() for k, v in submodule_state(model, modules).items()}
    path = Path(path).with_suffix(".safetensors")
    atomic_write_bytes(path, save_tensors(state))
    reference = {"shipped": True} if shipped else {"file": base.file.name}
    entry = WeightsEntry(model=model_name, file=path, sha256=sha256_file(path), labels=labels,
                         input_scale=base.input_scale, base_size=base.base_size, mean=base.mean, std=base.std,
                         version=version, meta={**(meta or {}), "base": {**reference, "sha256": base.sha256}})
    write_entry(entry)
    return entry


def write_entry(entry: WeightsEntry) -> None:
    """(Re)write the JSON entry beside the weights file, atomically."""
    atomic_write_text(entry.json_path, json.dumps(entry.to_dict(), indent=1) + "\n")


_SHIPPED_CACHE: dict[Path, tuple[tuple, dict[str, WeightsEntry]]] = {}


def shipped_entries(directory: Path = SHIPPED_WEIGHTS_DIR) -> dict[str, WeightsEntry]:
    """The weights shipped in ``weights/``, by model name (entries that fail to parse are skipped).

    Re-read only when a JSON entry in the folder is added, removed or modified.
    """
    paths = sorted(directory.glob("*.json"))
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in paths)
    cached = _SHIPPED_CACHE.get(directory)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    entries = {}
    for path in paths:
        try:
            entry = WeightsEntry.from_json(path)
        except WeightsError:
            continue
        entries[entry.model] = entry
    _SHIPPED_CACHE[directory] = (stamp, entries)
    return dict(entries)
