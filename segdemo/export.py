"""A workspace's corrected samples in formats other tools read: Pascal VOC, COCO (RLE) and segdemo's own layout.

    voc     VOCdevkit/VOC2012/JPEGImages/<id>.jpg             the images (JPEG quality 95, 4:4:4; VOC reads .jpg)
            VOCdevkit/VOC2012/SegmentationClass/<id>.png      palette PNG, pixel = class index, 255 = void
            VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt   train = our train split,
                                                              val = our held-out split
            VOCdevkit/VOC2012/labels.json                     the label set (VOC readers ignore it)
    coco    annotations.json    images (file_name relative to images/), categories (id = class index + 1, from
                                the label set), one annotation per class present in each image: compressed RLE
                                ``{"size": [h, w], "counts": str}``, area, bbox, iscrowd 0; void is in none;
                                each image also names who saved its mask (``author``) and its ``revision``
            images/<id>.png     the images, lossless
    layout  images/, masks/, predictions/, splits/{train,heldout,all}.txt, labels.json (``python -m segdemo train``),
            meta/<id>.json (the sample's metadata: who saved the mask, its revision, the model that predicted it)

VOC has no place for who saved a mask, so its export leaves the author out. Every format carries the latest
revision of each mask.

Unlabelled samples are left out. ``export(workspace, fmt, out)`` writes a zip when ``out`` ends in ``.zip``, else a
folder; either appears whole (a zip by one atomic write, a folder by renaming a finished hidden sibling) or not at
all, and an existing ``out`` is refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from segdemo.fileio import DIR_MODE, atomic_write_bytes
from segdemo.labels import LABELS_FILE, LabelSet
from segdemo.store import StoreError, Workspace

FORMATS = ("voc", "coco", "layout")
VOC_ROOT = "VOCdevkit/VOC2012"


class ExportError(ValueError):
    """An export that cannot be made; the message is meant for the user."""


@dataclass(frozen=True)
class ExportSummary:
    format: str
    path: Path
    samples: int
    files: int


# -- COCO run-length encoding (pycocotools' compressed form, written without it) ------------------------------------


def coco_rle(binary: np.ndarray) -> dict:
    """bool (H, W) → ``{"size": [H, W], "counts": str}``: column-major runs starting with a run of 0s, each
    stored as the difference to the run two back (after the first three) in 5-bit groups offset by 48."""
    height, width = binary.shape
    flat = np.asarray(binary, dtype=bool).T.ravel()
    if flat.size == 0:
        return {"size": [int(height), int(width)], "counts": ""}
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.r_[0, edges, flat.size]).tolist()
    if flat[0]:
        runs.insert(0, 0)
    chars = []
    for index, run in enumerate(runs):
        value = run - runs[index - 2] if index > 2 else run
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            chars.append(chr((group | (0x20 if more else 0)) + 48))
    return {"size": [int(height), int(width)], "counts": "".join(chars)}


def _bbox(binary: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


# -- the files of each format ------------------------------------------------------------------------------------


def _file_bytes(path: Path) -> bytes:
    """A workspace file's bytes as they are (a PNG, or JSON metadata)."""
    return path.read_bytes()


def _jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95, subsampling=0)
    return buffer.getvalue()


def _labels_json(labels: LabelSet) -> bytes:
    return (json.dumps(labels.to_dict(), indent=1) + "\n").encode()


def _ids_text(ids: list[str]) -> bytes:
    return "".join(f"{i}\n" for i in ids).encode()


def layout_files(workspace: Workspace) -> Iterator[tuple[str, bytes]]:
    samples = workspace.list_samples()
    yield LABELS_FILE, _labels_json(workspace.labels)
    for sample in samples:
        for folder in ("images", "masks", "predictions"):
            yield f"{folder}/{sample.id}.png", _file_bytes(workspace.path(folder, f"{sample.id}.png"))
        yield f"meta/{sample.id}.json", _file_bytes(workspace.path("meta", f"{sample.id}.json"))
    for split in ("train", "heldout", "all"):
        yield f"splits/{split}.txt", _ids_text([s.id for s in samples if split == "all" or s.split == split])


def voc_files(workspace: Workspace) -> Iterator[tuple[str, bytes]]:
    samples = workspace.list_samples()
    for sample in samples:
        image = workspace.load_image(sample.id)
        yield f"{VOC_ROOT}/JPEGImages/{sample.id}.jpg", _jpeg(image)
        yield f"{VOC_ROOT}/SegmentationClass/{sample.id}.png", _file_bytes(workspace.path("masks", f"{sample.id}.png"))
    train = [s.id for s in samples if s.split == "train"]
    val = [s.id for s in samples if s.split == "heldout"]
    sets = f"{VOC_ROOT}/ImageSets/Segmentation"
    yield f"{sets}/train.txt", _ids_text(train)
    yield f"{sets}/val.txt", _ids_text(val)
    yield f"{sets}/trainval.txt", _ids_text(train + val)
    yield f"{VOC_ROOT}/{LABELS_FILE}", _labels_json(workspace.labels)


def coco_files(workspace: Workspace) -> Iterator[tuple[str, bytes]]:
    labels = workspace.labels
    images, annotations = [], []
    for number, sample in enumerate(workspace.list_samples(), 1):
        _, _, mask, _ = workspace.load_sample(sample.id)
        yield f"images/{sample.id}.png", _file_bytes(workspace.path("images", f"{sample.id}.png"))
        images.append({"id": number, "file_name": f"{sample.id}.png", "width": sample.width, "height": sample.height,
                       "segdemo_id": sample.id, "split": sample.split, "author": sample.author or "unknown",
                       "revision": sample.mask_revision})
        for index in np.unique(mask).tolist():
            if index == labels.ignore_index:
                continue
            binary = mask == index
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": index + 1,
                                "segmentation": coco_rle(binary), "area": int(binary.sum()), "bbox": _bbox(binary),
                                "iscrowd": 0})
    categories = [{"id": index + 1, "name": name, "supercategory": labels.name, "color": list(color)}
                  for index, (name, color) in enumerate(zip(labels.names, labels.colors))]
    document = {"info": {"description": f"segdemo workspace {workspace.root.name} ({labels.name})",
                         "version": "1.0"},
                "licenses": [], "images": images, "annotations": annotations, "categories": categories}
    yield "annotations.json", json.dumps(document, separators=(",", ":")).encode()


_WRITERS = {"voc": voc_files, "coco": coco_files, "layout": layout_files}


def files(workspace: Workspace, fmt: str) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, bytes) of every file of the export; ExportError for an unknown format or no data."""
    if fmt not in _WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if not workspace.list_samples():
        raise ExportError("nothing to export: the workspace has no corrected samples yet")
    try:
        yield from _WRITERS[fmt](workspace)
    except (StoreError, OSError) as err:
        raise ExportError(f"could not read the workspace: {err}") from None


def zip_bytes(workspace: Workspace, fmt: str) -> bytes:
    """The export as a zip archive in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files(workspace, fmt):
            archive.writestr(name, data)
    return buffer.getvalue()


def export(workspace: Workspace, fmt: str, out: str | Path) -> ExportSummary:
    """Write the export to ``out``: a zip when it ends in ``.zip``, else a new folder. ``out`` must not exist."""
    out = Path(out).expanduser().resolve()
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new path")
    samples = len(workspace.list_samples())
    if out.suffix.lower() == ".zip":
        data = zip_bytes(workspace, fmt)
        try:
            atomic_write_bytes(out, data)
        except OSError as err:
            raise ExportError(f"could not write {out}: {err.strerror or err}") from None
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            count = len(archive.namelist())
        return ExportSummary(fmt, out, samples, count)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    except OSError as err:
        raise ExportError(f"could not write to {out.parent}: {err.strerror or err}") from None
    count = 0
    try:
        for name, data in files(workspace, fmt):
            atomic_write_bytes(staging / name, data)
            count += 1
        os.chmod(staging, DIR_MODE)
        os.rename(staging, out)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"could not write {out}: {err.strerror or err}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportSummary(fmt, out, samples, count)

