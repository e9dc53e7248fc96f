"""The workspace: the app's saved corrections as a dataset in the standard layout, plus fine-tuned versions.

    ROOT/labels.json              the workspace's label set (CamVid-11 unless created with another)
    ROOT/images/<id>.png          the image as the user saw it (EXIF orientation applied), RGB
    ROOT/predictions/<id>.png     the model's mask (palette PNG, class indices)
    ROOT/masks/<id>.png           the human-corrected mask (palette PNG, class indices, 255 = void)
    ROOT/meta/<id>.json           model, weights version, times, pixels changed, split
    ROOT/splits/{train,heldout,all}.txt
    ROOT/checkpoints/<model>/vN.safetensors + vN.json, ROOT/checkpoints/live.json

Every write is atomic (temp file, fsync, rename); the meta file is written last, so a sample is complete
once its meta exists. Splits and the live pointer are rewritten under a file lock. Each sample's split is
decided once, when it is first saved, and never changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock
from PIL import Image

from segdemo.fileio import atomic_save_image, atomic_write_bytes, atomic_write_text
from segdemo.labels import CAMVID11, LABELS_FILE, LabelSet, check_mask, mask_from_image, mask_to_palette_image
from segdemo.weights import WeightsEntry, WeightsError

HELDOUT_EVERY = 5
SHIPPED = "shipped"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


class StoreError(ValueError):
    """A request the workspace refuses; the message is meant for the user."""


@dataclass
class SampleMeta:
    """What the workspace knows about one saved sample. ``split`` is "train" or "heldout"."""

    id: str
    split: str
    width: int
    height: int
    model: str
    weights_version: str
    created: float
    updated: float
    changed_pixels: int
    source_name: str = ""

    @property
    def changed_fraction(self) -> float:
        return self.changed_pixels / max(1, self.width * self.height)


def make_sample_id(source_name: str, image: np.ndarray) -> str:
    """A safe id from an uploaded file's name and the image content: ``<clean stem>-<8 hex of sha256>``."""
    stem = Path(str(source_name).replace("\x00", "").replace("\\", "/")).stem
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60] or "image"
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:8]
    return f"{clean}-{digest}"


def is_heldout_hash(sample_id: str) -> bool:
    """About 1 in ``HELDOUT_EVERY`` ids, decided by a hash of the id alone."""
    return int(hashlib.sha256(sample_id.encode()).hexdigest(), 16) % HELDOUT_EVERY == 0


class Workspace:
    """A folder of corrected samples and fine-tuned checkpoints; safe for concurrent use by threads and processes."""

    def __init__(self, root: str | Path, *, labels: LabelSet | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create workspace {self.root}: {err.strerror or err}") from None
        self._thread_lock = threading.RLock()
        self._file_lock = FileLock(str(self.root / ".lock"), timeout=30)
        labels_path = self.root / LABELS_FILE
        with self._locked():
            if labels_path.is_file():
                self.labels = LabelSet.load(labels_path)
                if labels is not None and not labels.same_classes(self.labels):
                    raise StoreError(f"workspace {self.root} already has label set {self.labels.name!r} "
                                     f"({', '.join(self.labels.names)})")
            else:
                self.labels = labels or CAMVID11
                self.labels.save(labels_path)
        self._remove_stale_temp_files()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive access across threads (RLock) and processes (file lock)."""
        with self._thread_lock, self._file_lock:
            yield

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a writer killed mid-write are never visible as samples; clear them."""
        for tmp in self.root.rglob(".*.tmp"):
            if time.time() - tmp.stat().st_mtime > 60:
                tmp.unlink(missing_ok=True)

    # -- paths -------------------------------------------------------------------------------------------------

    def path(self, *parts: str) -> Path:
        """A path inside the workspace; StoreError if it would escape it."""
        for part in parts:
            if "\x00" in part or part in ("", ".", "..") or "/" in part or "\\" in part:
                raise StoreError(f"invalid name {part!r}")
        path = self.root.joinpath(*parts).resolve()
        if not path.is_relative_to(self.root):
            raise StoreError(f"path {'/'.join(parts)!r} escapes the workspace")
        return path

    @staticmethod
    def check_id(sample_id: str) -> str:
        if not isinstance(sample_id, str) or not _ID_PATTERN.match(sample_id) or ".." in sample_id:
            raise StoreError(f"invalid sample id {str(sample_id)[:80]!r}: use letters, digits, '.', '_' and '-' "
                             "(at most 120 characters)")
        return sample_id

    # -- samples -----------------------------------------------------------------------------------------------

    def save_sample(self, image: np.ndarray, prediction: np.ndarray, corrected: np.ndarray, *, model: str,
                    weights_version: str, source_name: str = "", sample_id: str | None = None) -> SampleMeta:
        """Store an image (RGB uint8 (H, W, 3)), the model's mask and the corrected mask (uint8 (H, W)).

        A new sample gets its split now; re-saving an existing id keeps its split and creation time.
        """
        if image is None or prediction is None:
            raise StoreError("nothing to save yet: segment an image first")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise StoreError(f"the image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        try:
            prediction = check_mask(prediction, self.labels)
            corrected = check_mask(corrected, self.labels)
        except ValueError as err:
            raise StoreError(str(err)) from None
        for name, mask in (("prediction", prediction), ("corrected mask", corrected)):
            if mask.shape != (height, width):
                raise StoreError(f"the {name} is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}")
        if (corrected == self.labels.ignore_index).all():
            raise StoreError("the corrected mask is entirely void: paint at least one class before saving")
        sample_id = self.check_id(make_sample_id(source_name, image) if sample_id is None else sample_id)
        with self._locked():
            existing = self.sample_meta(sample_id)
            now = time.time()
            if existing is None:
                samples = self.list_samples()
                heldout = is_heldout_hash(sample_id) or (
                    len(samples) >= 2 and not any(s.split == "heldout" for s in samples))
                split, created = ("heldout" if heldout else "train"), now
            else:
                split, created = existing.split, existing.created
            meta = SampleMeta(id=sample_id, split=split, width=width, height=height, model=model,
                              weights_version=weights_version, created=created, updated=now,
                              changed_pixels=int((prediction != corrected).sum()), source_name=str(source_name)[:200])
            files = [self.path(folder, f"{sample_id}.png") for folder in ("images", "predictions", "masks")]
            try:
                atomic_save_image(files[0], Image.fromarray(image))
                atomic_save_image(files[1], mask_to_palette_image(prediction, self.labels))
                atomic_save_image(files[2], mask_to_palette_image(corrected, self.labels))
                atomic_write_text(self.path("meta", f"{sample_id}.json"), json.dumps(asdict(meta), indent=1) + "\n")
            except OSError as err:
                if existing is None:
                    for path in files:
                        path.unlink(missing_ok=True)
                raise StoreError(f"could not save to the workspace ({err.strerror or err}); "
                                 "nothing was changed") from None
            self._write_splits()
        return meta

    def sample_meta(self, sample_id: str) -> SampleMeta | None:
        path = self.path("meta", f"{self.check_id(sample_id)}.json")
        try:
            return SampleMeta(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, TypeError) as err:
            raise StoreError(f"sample {sample_id!r} has damaged metadata: {err}") from None

    def list_samples(self) -> list[SampleMeta]:
        """Complete samples (meta present and readable), oldest first."""
        samples = []
        for path in sorted((self.root / "meta").glob("*.json")):
            try:
                samples.append(SampleMeta(**json.loads(path.read_text())))
            except (json.JSONDecodeError, TypeError, OSError):
                continue
        return sorted(samples, key=lambda s: (s.created, s.id))

    def load_sample(self, sample_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, SampleMeta]:
        """(image RGB uint8 (H, W, 3), prediction, corrected mask, meta) of a saved sample."""
        meta = self.sample_meta(sample_id)
        if meta is None:
            raise StoreError(f"no sample {sample_id!r} in this workspace")
        with Image.open(self.path("images", f"{sample_id}.png")) as image:
            rgb = np.array(image.convert("RGB"))
        masks = []
        for folder in ("predictions", "masks"):
            with Image.open(self.path(folder, f"{sample_id}.png")) as mask:
                masks.append(mask_from_image(mask))
        return rgb, masks[0], masks[1], meta

    def delete_sample(self, sample_id: str) -> None:
        with self._locked():
            if self.sample_meta(sample_id) is None:
                raise StoreError(f"no sample {sample_id!r} in this workspace")
            self.path("meta", f"{sample_id}.json").unlink()
            for folder in ("images", "predictions", "masks"):
                self.path(folder, f"{sample_id}.png").unlink(missing_ok=True)
            self._write_splits()

    def split_ids(self, split: str) -> list[str]:
        samples = self.list_samples()
        return [s.id for s in samples if split == "all" or s.split == split]

    def _write_splits(self) -> None:
        samples = self.list_samples()
        for split in ("train", "heldout", "all"):
            ids = [s.id for s in samples if split == "all" or s.split == split]
            atomic_write_text(self.path("splits", f"{split}.txt"), "".join(f"{i}\n" for i in ids))

    def export_zip(self) -> bytes:
        """The whole dataset as a zip: images/, masks/ (VOC-style palette PNGs), splits/, labels.json."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(LABELS_FILE, json.dumps(self.labels.to_dict(), indent=1) + "\n")
            for sample in self.list_samples():
                for folder in ("images", "masks", "predictions"):
                    archive.write(self.path(folder, f"{sample.id}.png"), f"{folder}/{sample.id}.png")
            for split in ("train", "heldout", "all"):
                archive.writestr(f"splits/{split}.txt", "".join(f"{i}\n" for i in self.split_ids(split)))
        return buffer.getvalue()

    # -- fine-tuned versions -----------------------------------------------------------------------------------

    def checkpoint_dir(self, model: str) -> Path:
        return self.path("checkpoints", self.check_id(model))

    def versions(self, model: str) -> list[WeightsEntry]:
        """Readable fine-tuned versions of ``model``, oldest first (sha256 is checked on load, not here)."""
        entries = []
        folder = self.checkpoint_dir(model)
        for path in folder.glob("v*.json"):
            try:
                entries.append(WeightsEntry.from_json(path))
            except WeightsError:
                continue
        return sorted(entries, key=lambda e: int(e.version[1:]) if e.version[1:].isdigit() else -1)

    def next_version(self, model: str) -> str:
        numbers = [int(e.version[1:]) for e in self.versions(model) if e.version[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def _live_table(self) -> dict:
        try:
            return json.loads(self.path("checkpoints", "live.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def live_version(self, model: str) -> str:
        """``"shipped"`` or the promoted version name (e.g. ``"v3"``) of ``model`` in this workspace."""
        return self._live_table().get(model, SHIPPED)

    def live_entry(self, model: str) -> WeightsEntry | None:
        """The promoted checkpoint's entry, or None when the shipped weights are live."""
        version = self.live_version(model)
        if version == SHIPPED:
            return None
        for entry in self.versions(model):
            if entry.version == version:
                return entry
        return None

    def set_live(self, model: str, version: str) -> None:
        """Make ``version`` (``"shipped"`` or an existing version) the one served for ``model``."""
        if version != SHIPPED and version not in {e.version for e in self.versions(model)}:
            raise StoreError(f"model {model!r} has no version {version!r} in this workspace")
        with self._locked():
            table = self._live_table()
            table[model] = version
            atomic_write_bytes(self.path("checkpoints", "live.json"), (json.dumps(table, indent=1) + "\n").encode())
