"""The workspace: the app's saved corrections as a dataset in the standard layout, plus fine-tuned versions.

    ROOT/labels.json              the workspace's label set (CamVid-11 unless created with another)
    ROOT/images/<id>.png          the image as the user saw it (EXIF orientation applied), RGB
    ROOT/predictions/<id>.png     the model's mask (palette PNG, class indices)
    ROOT/masks/<id>.png           the human-corrected mask (palette PNG, class indices, 255 = void)
    ROOT/painted/<id>.png         which pixels of the mask the person painted (1) and which the model or its
                                  fill-in from strokes gave (0); only for masks saved from the editor
    ROOT/meta/<id>.json           state, model, weights version, times, pixels changed, split, revision, author
    ROOT/revisions/<id>/<n>.png   every revision n = 1, 2, … of the sample's mask (the latest is also masks/<id>.png)
    ROOT/revisions/<id>/<n>.json  who saved revision n, when, from which model, how many pixels they changed
    ROOT/claims.json              which queued image each open editor holds (:mod:`segdemo.claims`)
    ROOT/splits/{train,heldout,all}.txt
    ROOT/checkpoints/<model>/vN.safetensors + vN.json, ROOT/checkpoints/live.json

A sample is *unlabelled* (an imported image: ``images/`` and ``meta/`` only, no split) or *corrected* (image,
prediction and mask, in the train or held-out split). Every write is atomic (temp file, fsync, rename); the meta
file is written last, so a sample exists once its meta exists. Splits and the live pointer are rewritten under a
file lock. Each sample's split is decided once, when it is first saved with a mask, and never changes. Opening a
workspace deletes the temp files of writers that were killed mid-write (never one a live writer holds).

Revisions: an editor opens a sample at a revision (:attr:`SampleMeta.mask_revision`; 0 before its first mask) and
saves with ``expected_revision``; when someone saved a newer revision meanwhile the save raises
:class:`RevisionConflict` and writes nothing. Every revision stays in ``revisions/``; the learners and exports read
``masks/``, which is always the latest.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock
from PIL import Image

from segdemo.fileio import atomic_save_image, atomic_write_bytes, atomic_write_text, sweep_stale_temp_files
from segdemo.labels import CAMVID11, LABELS_FILE, LabelSet, check_mask, mask_from_image, mask_to_palette_image
from segdemo.weights import WeightsEntry, WeightsError

HELDOUT_EVERY = 5
MIN_HELDOUT = 4
SHIPPED = "shipped"
UNLABELLED, CORRECTED = "unlabelled", "corrected"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


LOCAL_AUTHOR = "local"
"""Who saved a revision when the app knows no name: no login and no name set in the page."""


class StoreError(ValueError):
    """A request the workspace refuses; the message is meant for the user."""


class RevisionConflict(StoreError):
    """A save from an editor opened at an older revision than the stored one; ``stored`` is the newer sample's
    meta (who saved it and when). Nothing was written."""

    def __init__(self, stored: "SampleMeta", expected: int) -> None:
        self.stored, self.expected = stored, expected
        when = time.strftime("%H:%M:%S", time.localtime(stored.updated))
        super().__init__(f"{stored.author or 'someone'} saved {stored.id} at {when} (revision "
                         f"{stored.mask_revision}) after this editor opened it (revision {expected})")


@dataclass(frozen=True)
class Revision:
    """One saved version of a sample's mask: number ``n`` (1 = first), who saved it, when (epoch seconds), and
    how many pixels differ from the model's prediction."""

    n: int
    author: str
    saved: float
    changed_pixels: int
    model: str = ""
    weights_version: str = ""
    restored_from: int = 0
    """The older revision this one restored (0: a correction saved from an editor, an import or the API)."""


@dataclass
class SampleMeta:
    """What the workspace knows about one sample. ``state`` is "unlabelled" or "corrected"; ``split`` is
    "train" or "heldout" for a corrected sample and "" for an unlabelled one. ``created`` is when it got its
    mask (import time while unlabelled); ``image_sha256`` hashes the pixels and their shape (duplicate check)."""

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
    state: str = CORRECTED
    image_sha256: str = ""
    painted_pixels: int = -1
    """Pixels of the mask the person painted by hand (-1: not recorded, e.g. a mask imported or sent by API)."""
    filled_pixels: int = -1
    """Pixels neither painted nor the model's prediction: the fill-in from strokes gave them (-1: not recorded)."""
    revision: int = 0
    """The number of the latest revision of the mask (0: none yet; a mask saved before revisions counts as 1)."""
    author: str = ""
    """Who saved the latest revision (the signed-in user, a name set in the page, or "local")."""

    @property
    def mask_revision(self) -> int:
        """The revision an editor opening this sample starts from: 0 without a mask."""
        return self.revision or int(self.labelled)

    @property
    def changed_fraction(self) -> float:
        return self.changed_pixels / max(1, self.width * self.height)

    @property
    def labelled(self) -> bool:
        return self.state != UNLABELLED


def _revision_of(meta: SampleMeta, restored_from: int = 0) -> Revision:
    """The revision record of a sample's latest mask, from its meta (a mask saved before authors: "unknown")."""
    return Revision(n=meta.mask_revision, author=meta.author or "unknown", saved=meta.updated,
                    changed_pixels=meta.changed_pixels, model=meta.model, weights_version=meta.weights_version,
                    restored_from=int(restored_from))


def image_digest(image: np.ndarray) -> str:
    """sha256 hex of an RGB uint8 (H, W, 3) image's shape and pixels: equal for equal pictures."""
    image = np.ascontiguousarray(image)
    return hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()


def make_sample_id(source_name: str, image: np.ndarray) -> str:
    """A safe id from an uploaded file's name and the image content: ``<clean stem>-<8 hex of sha256>``."""
    stem = Path(str(source_name).replace("\x00", "").replace("\\", "/")).stem
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60] or "image"
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:8]
    return f"{clean}-{digest}"


def heldout_target(labelled: int) -> int:
    """How many of ``labelled`` corrected samples are held out: every third up to ``MIN_HELDOUT`` (so a small
    workspace soon has enough images to judge a fine-tune on), then 1 in ``HELDOUT_EVERY``.

    A new sample is held out when the workspace holds fewer than this; assignments never change afterwards.
    """
    return max(min(MIN_HELDOUT, labelled // 3), labelled // HELDOUT_EVERY)


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

    def locked(self):
        """The workspace lock, for a read-modify-write of a workspace file by another module (the claims)."""
        return self._locked()

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a writer killed mid-write are never visible as samples; clear them."""
        sweep_stale_temp_files(self.root)

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
                    weights_version: str, source_name: str = "", sample_id: str | None = None,
                    update_splits: bool = True, painted: np.ndarray | None = None, author: str = LOCAL_AUTHOR,
                    expected_revision: int | None = None, restored_from: int = 0) -> SampleMeta:
        """Store an image (RGB uint8 (H, W, 3)), the model's mask and the corrected mask (uint8 (H, W)), and which
        of its pixels the person painted (``painted`` bool (H, W), kept in ``painted/``; the others came from the
        model or its fill-in), as the sample's next revision, saved by ``author``.

        ``expected_revision``: the revision the editor opened (0 for none); RevisionConflict, and nothing written,
        when the stored one is newer. None saves over whatever is stored (imports, scripts). A new or unlabelled
        sample gets its split now; re-saving a corrected id keeps its split and creation time.
        ``update_splits=False`` (bulk imports) leaves the split files to one :meth:`write_splits` after.
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
        if painted is not None:
            painted = np.asarray(painted, bool)
        for name, mask in (("prediction", prediction), ("corrected mask", corrected), ("painted map", painted)):
            if mask is not None and mask.shape != (height, width):
                raise StoreError(f"the {name} is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}")
        if (corrected == self.labels.ignore_index).all():
            raise StoreError("the corrected mask is entirely void: paint at least one class before saving")
        sample_id = self.check_id(make_sample_id(source_name, image) if sample_id is None else sample_id)
        with self._locked():
            previous = self.sample_meta(sample_id)
            existing = previous if previous is not None and previous.labelled else None
            stored_revision = existing.mask_revision if existing is not None else 0
            if expected_revision is not None and stored_revision > expected_revision:
                raise RevisionConflict(existing, expected_revision)
            if previous is not None and existing is None:  # an unlabelled sample gets its first mask (and split)
                if (previous.height, previous.width) != (height, width):
                    raise StoreError(f"sample {sample_id!r} is {previous.width}x{previous.height}, "
                                     f"the image is {width}x{height}")
                source_name = source_name or previous.source_name
            now = time.time()
            if existing is None:
                labelled = [s for s in self.list_samples() if s.labelled]
                heldout = sum(s.split == "heldout" for s in labelled) < heldout_target(len(labelled) + 1)
                split, created = ("heldout" if heldout else "train"), now
            else:
                split, created = existing.split, existing.created
            meta = SampleMeta(id=sample_id, split=split, width=width, height=height, model=model,
                              weights_version=weights_version, created=created, updated=now,
                              changed_pixels=int((prediction != corrected).sum()), source_name=str(source_name)[:200],
                              image_sha256=image_digest(image), revision=stored_revision + 1,
                              author=str(author or LOCAL_AUTHOR)[:80])
            if painted is not None:
                meta.painted_pixels = int(painted.sum())
                meta.filled_pixels = int(((prediction != corrected) & ~painted).sum())
            files = [self.path(folder, f"{sample_id}.png") for folder in ("images", "predictions", "masks")]
            palette_mask = mask_to_palette_image(corrected, self.labels)
            try:
                if existing is not None:
                    self._keep_revision(existing)
                self._write_revision(meta, palette_mask, restored_from)
                atomic_save_image(files[0], Image.fromarray(image))
                atomic_save_image(files[1], mask_to_palette_image(prediction, self.labels))
                atomic_save_image(files[2], palette_mask)
                painted_file = self.path("painted", f"{sample_id}.png")
                if painted is not None:
                    atomic_save_image(painted_file, Image.fromarray(painted.astype(np.uint8)))
                else:
                    painted_file.unlink(missing_ok=True)
                atomic_write_text(self.path("meta", f"{sample_id}.json"), json.dumps(asdict(meta), indent=1) + "\n")
            except OSError as err:
                if existing is None:  # a new corrected sample: remove what it wrote (an unlabelled one keeps its image)
                    for path in files if previous is None else files[1:]:
                        path.unlink(missing_ok=True)
                raise StoreError(f"could not save to the workspace ({err.strerror or err}); "
                                 "nothing was changed") from None
            if update_splits:
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

    def add_unlabelled(self, image: np.ndarray, *, source_name: str = "", sample_id: str | None = None,
                       digest: str | None = None) -> SampleMeta:
        """Store an image (RGB uint8 (H, W, 3)) with no mask yet; StoreError if the id is taken.

        ``digest`` is :func:`image_digest` of ``image`` when the caller has it already.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise StoreError(f"the image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        sample_id = self.check_id(make_sample_id(source_name, image) if sample_id is None else sample_id)
        height, width = image.shape[:2]
        with self._locked():
            if self.sample_meta(sample_id) is not None:
                raise StoreError(f"sample {sample_id!r} is already in the workspace")
            now = time.time()
            meta = SampleMeta(id=sample_id, split="", width=width, height=height, model="", weights_version="",
                              created=now, updated=now, changed_pixels=0, source_name=str(source_name)[:200],
                              state=UNLABELLED, image_sha256=digest or image_digest(image))
            image_path = self.path("images", f"{sample_id}.png")
            try:
                atomic_save_image(image_path, Image.fromarray(image))
                atomic_write_text(self.path("meta", f"{sample_id}.json"), json.dumps(asdict(meta), indent=1) + "\n")
            except OSError as err:
                image_path.unlink(missing_ok=True)
                raise StoreError(f"could not save to the workspace ({err.strerror or err}); "
                                 "nothing was changed") from None
        return meta

    def list_all(self) -> list[SampleMeta]:
        """Every sample with readable meta, unlabelled and corrected, oldest first."""
        samples = []
        for path in sorted((self.root / "meta").glob("*.json")):
            try:
                samples.append(SampleMeta(**json.loads(path.read_text())))
            except (json.JSONDecodeError, TypeError, OSError):
                continue
        return sorted(samples, key=lambda s: (s.created, s.id))

    def list_samples(self) -> list[SampleMeta]:
        """Complete corrected samples (the training data), oldest first."""
        return [s for s in self.list_all() if s.labelled]

    def list_unlabelled(self) -> list[SampleMeta]:
        """Imported images without a mask yet, in import order."""
        return [s for s in self.list_all() if not s.labelled]

    def load_image(self, sample_id: str) -> np.ndarray:
        """The image of any sample, RGB uint8 (H, W, 3)."""
        if self.sample_meta(sample_id) is None:
            raise StoreError(f"no sample {sample_id!r} in this workspace")
        with Image.open(self.path("images", f"{sample_id}.png")) as image:
            return np.array(image.convert("RGB"))

    def digests(self) -> dict[str, str]:
        """image_digest → sample id for every sample (hashing the images of samples saved before digests)."""
        table = {}
        for sample in self.list_all():
            digest = sample.image_sha256
            if not digest:
                try:
                    digest = image_digest(self.load_image(sample.id))
                except (StoreError, OSError):
                    continue
            table.setdefault(digest, sample.id)
        return table

    def load_sample(self, sample_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, SampleMeta]:
        """(image RGB uint8 (H, W, 3), prediction, corrected mask, meta) of a saved sample."""
        prediction, corrected, meta = self.load_masks(sample_id)
        with Image.open(self.path("images", f"{sample_id}.png")) as image:
            rgb = np.array(image.convert("RGB"))
        return rgb, prediction, corrected, meta

    def load_masks(self, sample_id: str) -> tuple[np.ndarray, np.ndarray, SampleMeta]:
        """(prediction, corrected mask, meta) of a saved sample, without decoding its image."""
        meta = self.sample_meta(sample_id)
        if meta is None:
            raise StoreError(f"no sample {sample_id!r} in this workspace")
        if not meta.labelled:
            raise StoreError(f"sample {sample_id!r} has no mask yet")
        masks = []
        for folder in ("predictions", "masks"):
            with Image.open(self.path(folder, f"{sample_id}.png")) as mask:
                masks.append(mask_from_image(mask))
        return masks[0], masks[1], meta

    def load_painted(self, sample_id: str) -> np.ndarray | None:
        """bool (H, W): the pixels of the sample's mask the person painted by hand; None when not recorded."""
        path = self.path("painted", f"{self.check_id(sample_id)}.png")
        try:
            with Image.open(path) as painted:
                return np.array(painted) > 0
        except FileNotFoundError:
            return None

    # -- revisions ---------------------------------------------------------------------------------------------

    def _revision_paths(self, sample_id: str, n: int) -> tuple[Path, Path]:
        folder = self.path("revisions", self.check_id(sample_id))
        return folder / f"{n}.png", folder / f"{n}.json"

    def _write_revision(self, meta: SampleMeta, mask: Image.Image, restored_from: int = 0) -> None:
        """Keep ``mask`` (a palette image) as revision ``meta.revision`` of ``meta.id``, with who saved it."""
        png, record = self._revision_paths(meta.id, meta.revision)
        atomic_save_image(png, mask)
        atomic_write_text(record, json.dumps(asdict(_revision_of(meta, restored_from)), indent=1) + "\n")

    def _keep_revision(self, meta: SampleMeta) -> None:
        """A mask saved before revisions were kept gets its revision file before a newer one replaces it."""
        if not self._revision_paths(meta.id, meta.mask_revision)[1].is_file():
            with Image.open(self.path("masks", f"{meta.id}.png")) as mask:
                mask.load()
                self._write_revision(SampleMeta(**{**asdict(meta), "revision": meta.mask_revision}), mask)

    def history(self, sample_id: str) -> list[Revision]:
        """Every readable revision of the sample's mask, newest first ([] for an unlabelled sample); a sample
        saved before revisions were kept lists its one mask as revision 1."""
        meta = self.sample_meta(sample_id)
        if meta is None:
            raise StoreError(f"no sample {sample_id!r} in this workspace")
        revisions = []
        for n in range(meta.mask_revision, 0, -1):
            try:
                revisions.append(Revision(**json.loads(self._revision_paths(sample_id, n)[1].read_text())))
            except FileNotFoundError:
                if n == meta.mask_revision:
                    revisions.append(_revision_of(meta))
            except (json.JSONDecodeError, TypeError, OSError):
                continue
        return revisions

    def load_revision(self, sample_id: str, n: int) -> np.ndarray:
        """The mask of revision ``n`` (uint8 (H, W), class indices, 255 = void)."""
        meta = self.sample_meta(sample_id)
        if meta is None or not 1 <= int(n) <= meta.mask_revision:
            raise StoreError(f"sample {sample_id!r} has no revision {n}")
        png = self._revision_paths(sample_id, int(n))[0]
        if int(n) == meta.mask_revision and not png.is_file():
            png = self.path("masks", f"{sample_id}.png")
        try:
            with Image.open(png) as mask:
                return mask_from_image(mask)
        except FileNotFoundError:
            raise StoreError(f"revision {n} of {sample_id!r} is missing from the workspace") from None

    def restore_revision(self, sample_id: str, n: int, *, author: str = LOCAL_AUTHOR) -> SampleMeta:
        """Save revision ``n``'s mask again as the sample's newest revision (nothing is overwritten)."""
        with self._locked():
            image, prediction, _, meta = self.load_sample(sample_id)
            mask = self.load_revision(sample_id, n)
            return self.save_sample(image, prediction, mask, model=meta.model, weights_version=meta.weights_version,
                                    source_name=meta.source_name, sample_id=sample_id, author=author,
                                    expected_revision=meta.mask_revision, restored_from=int(n))

    def delete_sample(self, sample_id: str) -> None:
        with self._locked():
            if self.sample_meta(sample_id) is None:
                raise StoreError(f"no sample {sample_id!r} in this workspace")
            self.path("meta", f"{sample_id}.json").unlink()
            for folder in ("images", "predictions", "masks", "painted"):
                self.path(folder, f"{sample_id}.png").unlink(missing_ok=True)
            shutil.rmtree(self.path("revisions", sample_id), ignore_errors=True)
            self._write_splits()

    def split_ids(self, split: str) -> list[str]:
        samples = self.list_samples()
        return [s.id for s in samples if split == "all" or s.split == split]

    def write_splits(self) -> None:
        """Rewrite the split files from the samples' meta (after saving with ``update_splits=False``)."""
        with self._locked():
            self._write_splits()

    def _write_splits(self) -> None:
        samples = self.list_samples()
        for split in ("train", "heldout", "all"):
            ids = [s.id for s in samples if split == "all" or s.split == split]
            atomic_write_text(self.path("splits", f"{split}.txt"), "".join(f"{i}\n" for i in ids))

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

    def lineage(self, model: str, version: str) -> list[WeightsEntry]:
        """``model``'s ``version`` and its parents (``meta["parent"]``), newest first, as far as they are readable
        versions of this workspace: the shipped weights, a missing version or a repeat end the chain."""
        by_version = {e.version: e for e in self.versions(model)}
        chain: list[WeightsEntry] = []
        while version in by_version and version not in {e.version for e in chain}:
            chain.append(by_version[version])
            version = str(by_version[version].meta.get("parent", SHIPPED))
        return chain

    def next_version(self, model: str) -> str:
        numbers = [int(e.version[1:]) for e in self.versions(model) if e.version[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    @contextmanager
    def version_slot(self, model: str) -> Iterator[str]:
        """The next version name of ``model``, held under the workspace lock until its files are written: two
        learners (the fast learner and the Fine-tune job) never write the same version."""
        with self._locked():
            yield self.next_version(model)

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
