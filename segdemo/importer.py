"""Bring a folder of images into a workspace: files, folders and zips become unlabelled samples; a dataset in the
standard layout (``images/`` + ``masks/``) or a VOC tree (``JPEGImages/`` + ``SegmentationClass/``) brings its masks
as corrected samples.

Nothing is extracted to disk: each file or zip entry is read into memory (bounded), decoded by Pillow and stored
through the workspace's atomic writers, so nothing lands outside the workspace and no saved sample changes. Every
input that is not imported gets a reason in :attr:`ImportReport.skipped`: not an image, too large (a decompression
bomb, by pixel count or by compression ratio), an unsafe name in a zip (absolute, or with ``..``), a duplicate of a
sample or of an earlier file, a mask that does not fit.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from segdemo.fileio import ImageError, open_image, to_rgb_array
from segdemo.labels import CAMVID11, LABELS_FILE, LabelSet, check_mask, mask_from_image
from segdemo.store import LOCAL_AUTHOR, StoreError, Workspace, image_digest

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest image file or zip entry read (bytes, uncompressed)."""
MAX_ZIP_RATIO = 100
"""A zip entry over 1 MiB that expands more than this many times is refused as a decompression bomb."""
MAX_ZIP_ENTRIES = 100_000
MIN_SIDE = 16
"""Smallest image side the models accept (``segdemo.models.MIN_INPUT_SIZE``)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
IMPORTED = "imported"
"""The ``model`` recorded for samples whose mask came with the import (their prediction is that mask)."""


@dataclass(frozen=True)
class Skipped:
    """An input left out of the import, with the reason meant for the user."""

    name: str
    reason: str


@dataclass
class ImportReport:
    """``imported``: new sample ids (unlabelled and corrected); ``corrected``: those that came with a mask."""

    imported: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False

    def to_json(self) -> dict:
        return {"imported": len(self.imported), "corrected": len(self.corrected),
                "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped]}


@dataclass(frozen=True)
class _Item:
    """One image to import: its display name, a reader for its bytes and, for datasets, one for its mask."""

    name: str
    read: Callable[[], bytes]
    read_mask: Callable[[], bytes] | None = None
    labels: LabelSet | None = None


class _Refused(Exception):
    """An input (file, entry, mask) that is skipped; the message is the reason."""


# -- reading bounded bytes -----------------------------------------------------------------------------------------


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Refused(f"file too large ({size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB)")
        return path.read_bytes()
    return read


def _entry_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        if info.file_size > MAX_FILE_BYTES:
            raise _Refused(f"decompression bomb: expands to {info.file_size / 2**20:.0f} MiB "
                           f"(the limit is {MAX_FILE_BYTES // 2**20} MiB)")
        if info.file_size > 2**20 and info.file_size > MAX_ZIP_RATIO * max(1, info.compress_size):
            raise _Refused(f"decompression bomb: {info.compress_size:,} bytes expand to {info.file_size:,}")
        with archive.open(info) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # the declared size may lie
        if len(data) > MAX_FILE_BYTES:
            raise _Refused(f"decompression bomb: expands past {MAX_FILE_BYTES // 2**20} MiB")
        return data
    return read


def _unsafe_name(name: str) -> bool:
    """Absolute, drive-qualified, or climbing out with ``..``."""
    text = name.replace("\\", "/")
    parts = PurePosixPath(text).parts
    return text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts or "\x00" in text


def _junk(rel: str) -> bool:
    """Files a user never meant to import: hidden files and macOS resource forks."""
    parts = PurePosixPath(rel).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in ("Thumbs.db", "desktop.ini")


# -- trees: a folder or a zip as {relative posix path: reader} ------------------------------------------------------


def _folder_tree(root: Path, skipped: list[Skipped]) -> dict[str, Callable[[], bytes]]:
    tree = {}
    for directory, folders, files in os.walk(root, followlinks=False):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            if _junk(rel):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                skipped.append(Skipped(f"{root.name}/{rel}", "a symbolic link (not followed)"))
            elif stat.S_ISREG(mode):
                tree[rel] = _file_reader(path)
    return tree


def _zip_tree(archive: zipfile.ZipFile, label: str, skipped: list[Skipped]) -> dict[str, Callable[[], bytes]]:
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        skipped.append(Skipped(label, f"the zip has {len(infos):,} entries (the limit is {MAX_ZIP_ENTRIES:,})"))
        return {}
    tree = {}
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        shown = f"{label}:{name[:200]}"
        if _unsafe_name(name):
            skipped.append(Skipped(shown, "unsafe path in the zip (absolute or with '..'); not imported"))
            continue
        rel = name.replace("\\", "/")
        if _junk(rel):
            continue
        if info.flag_bits & 0x1:
            skipped.append(Skipped(shown, "encrypted zip entry"))
            continue
        if rel in tree:
            skipped.append(Skipped(shown, "the zip holds this name twice; the first one is used"))
            continue
        tree[rel] = _entry_reader(archive, info)
    return tree


def _tree_labels(tree: dict[str, Callable[[], bytes]], prefix: str, default: LabelSet | None) -> LabelSet | None:
    reader = tree.get(f"{prefix}{LABELS_FILE}")
    if reader is None:
        return default
    try:
        return LabelSet.from_dict(json.loads(reader()))
    except (ValueError, TypeError, _Refused) as err:
        raise _Refused(f"its {LABELS_FILE} is not a label set: {err}") from None


def _dataset_prefix(tree: dict[str, Callable[[], bytes]], image_dir: str, mask_dir: str) -> str | None:
    """The shortest prefix P with files under both P/image_dir/ and P/mask_dir/, or None."""
    prefixes = set()
    for rel in tree:
        parts = rel.split("/")
        for depth, part in enumerate(parts[:-1]):
            if part == image_dir:
                prefixes.add("/".join(parts[:depth]))
    for prefix in sorted(prefixes, key=lambda p: (p.count("/"), p)):
        head = f"{prefix}/" if prefix else ""
        if any(rel.startswith(f"{head}{mask_dir}/") for rel in tree):
            return head
    return None


def _tree_items(tree: dict[str, Callable[[], bytes]], label: str, skipped: list[Skipped]) -> Iterator[_Item]:
    """Images of a tree; with masks when it is a dataset in the standard layout or a VOC tree."""
    for image_dir, mask_dir, default_labels, masked_only in (("images", "masks", CAMVID11, False),
                                                           ("JPEGImages", "SegmentationClass", None, True)):
        head = _dataset_prefix(tree, image_dir, mask_dir)
        if head is None:
            continue
        try:
            labels = _tree_labels(tree, head, default_labels)
        except _Refused as err:
            skipped.append(Skipped(f"{label}/{head}{LABELS_FILE}", str(err)))
            return
        masks = {PurePosixPath(rel).stem: reader for rel, reader in tree.items()
                 if rel.startswith(f"{head}{mask_dir}/") and rel.count("/") == head.count("/") + 1}
        for rel, reader in tree.items():
            if not (rel.startswith(f"{head}{image_dir}/") and rel.count("/") == head.count("/") + 1):
                continue
            mask = masks.get(PurePosixPath(rel).stem)
            if mask is None and masked_only:
                continue
            yield _Item(f"{label}/{rel}", reader, mask, labels)
        return
    for rel, reader in tree.items():
        if rel.lower().endswith(".zip"):
            skipped.append(Skipped(f"{label}/{rel}", "a zip inside a folder or zip is not opened; import it directly"))
        elif rel != LABELS_FILE:
            yield _Item(f"{label}/{rel}", reader)


def _items(paths: list[str | Path], skipped: list[Skipped], stack: ExitStack) -> Iterator[_Item]:
    """The images to import; zips stay open on ``stack`` until the import ends."""
    for raw in paths:
        path = Path(raw)
        name = path.name or str(path)
        if not path.exists():
            skipped.append(Skipped(str(raw), "no such file or folder"))
        elif path.is_dir():
            yield from _tree_items(_folder_tree(path, skipped), name, skipped)
        elif zipfile.is_zipfile(path):
            try:
                archive = stack.enter_context(zipfile.ZipFile(path))
            except (zipfile.BadZipFile, OSError) as err:
                skipped.append(Skipped(name, f"not a readable zip: {err}"))
                continue
            yield from _tree_items(_zip_tree(archive, name, skipped), name, skipped)
        elif path.suffix.lower() == ".zip":
            skipped.append(Skipped(name, "not a readable zip"))
        else:
            yield _Item(name, _file_reader(path))


# -- decoding and storing -----------------------------------------------------------------------------------------


def _decode_image(data: bytes) -> np.ndarray:
    try:
        image = to_rgb_array(open_image(data))
    except ImageError as err:
        raise _Refused(str(err)) from None
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise _Refused(f"image is {width}x{height}: at least {MIN_SIDE}x{MIN_SIDE} pixels needed")
    return image


def _decode_mask(item: _Item, shape: tuple[int, int], labels: LabelSet) -> np.ndarray:
    if item.labels is not None and not item.labels.same_classes(labels):
        raise _Refused(f"the dataset's label set {item.labels.name!r} ({', '.join(item.labels.names)}) differs from "
                       f"the workspace's {labels.name!r}")
    try:
        mask = mask_from_image(open_image(item.read_mask()))
        mask = check_mask(mask, labels)
    except ImageError as err:
        raise _Refused(f"its mask: {err}") from None
    except ValueError as err:
        raise _Refused(f"its mask: {err}") from None
    if mask.shape != shape:
        raise _Refused(f"its mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}")
    if (mask == labels.ignore_index).all():
        raise _Refused("its mask is entirely void")
    return mask


def import_paths(workspace: Workspace, paths: list[str | Path], *,
                 progress: Callable[[int, int, str], None] | None = None,
                 cancel: threading.Event | None = None, author: str = LOCAL_AUTHOR) -> ImportReport:
    """Import image files, folders and zips into ``workspace``; report what was imported and what was skipped.

    ``progress(done, total, name)`` is called after each image; setting ``cancel`` stops after the current one
    (what was imported stays). Samples are stored with the workspace's id rules and atomic writes; imported masks
    are saved as revisions by ``author``.
    """
    report = ImportReport()
    with ExitStack() as stack:
        items = list(_items(list(paths), report.skipped, stack))
        return _import(workspace, items, report, progress, cancel, author)


def _import(workspace: Workspace, items: list[_Item], report: ImportReport,
            progress: Callable[[int, int, str], None] | None, cancel: threading.Event | None,
            author: str) -> ImportReport:
    known = workspace.digests()
    seen: dict[str, str] = {}
    for done, item in enumerate(items, 1):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        try:
            image = _decode_image(item.read())
            digest = image_digest(image)
            if digest in seen:
                raise _Refused(f"duplicate of {seen[digest]} in this import")
            if digest in known:
                raise _Refused(f"duplicate of sample {known[digest]} already in the workspace")
            source = PurePosixPath(item.name).name
            if item.read_mask is not None:
                mask = _decode_mask(item, image.shape[:2], workspace.labels)
                meta = workspace.save_sample(image, mask, mask, model=IMPORTED, weights_version="", source_name=source,
                                             update_splits=False, author=author)
                report.corrected.append(meta.id)
            else:
                meta = workspace.add_unlabelled(image, source_name=source, digest=digest)
            report.imported.append(meta.id)
            known[digest], seen[digest] = meta.id, item.name
        except (_Refused, StoreError) as err:
            report.skipped.append(Skipped(item.name, str(err)))
        except OSError as err:
            report.skipped.append(Skipped(item.name, f"could not be read: {err.strerror or err}"))
        except zipfile.BadZipFile as err:
            report.skipped.append(Skipped(item.name, f"damaged zip entry: {err}"))
        if progress is not None:
            progress(done, len(items), item.name)
    if report.corrected:
        workspace.write_splits()
    return report


def describe(report: ImportReport) -> str:
    """One line for the user: how many were imported (with masks) and skipped."""
    text = f"imported {len(report.imported)} image{'s' if len(report.imported) != 1 else ''}"
    if report.corrected:
        text += f" ({len(report.corrected)} with masks, as corrected samples)"
    if report.skipped:
        text += f"; skipped {len(report.skipped)}"
    if report.cancelled:
        text += "; cancelled"
    return text
