"""Exports other tools read: VOC through torchvision.datasets.VOCSegmentation, COCO through pycocotools, the layout
through our own dataset; all compared pixel by pixel with the workspace's masks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.data import SegmentationDataset
from segdemo.export import ExportError, coco_rle, export, zip_bytes
from segdemo.importer import import_paths
from segdemo.store import Workspace

from tests.drawing import CAR, ROAD, draw_scene

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """Six corrected samples (some held out, some with void), plus one unlabelled image."""
    workspace = Workspace(tmp_path / "ws")
    for seed in range(6):
        image, truth = draw_scene(seed)
        truth[:3, :5] = 255
        workspace.save_sample(image, np.full_like(truth, ROAD), truth, model="m", weights_version="v1",
                              source_name=f"street_{seed}.png")
    workspace.add_unlabelled(draw_scene(40)[0], source_name="unlabelled.png")
    assert {s.split for s in workspace.list_samples()} == {"train", "heldout"}
    return workspace


def masks_of(workspace: Workspace) -> dict[str, np.ndarray]:
    return {s.id: workspace.load_sample(s.id)[2] for s in workspace.list_samples()}


def test_coco_rle_matches_pycocotools():
    mask_api = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    cases = [rng.random((37, 53)) < p for p in (0.02, 0.5, 0.97)]
    cases += [np.zeros((5, 7), bool), np.ones((5, 7), bool), draw_scene(3)[1] == CAR]
    for binary in cases:
        ours = coco_rle(binary)
        theirs = mask_api.encode(np.asfortranarray(binary.astype(np.uint8)))
        assert ours["counts"] == theirs["counts"].decode() and ours["size"] == list(theirs["size"])
        assert np.array_equal(mask_api.decode({"size": ours["size"], "counts": ours["counts"].encode()}), binary)


def test_voc_export_loads_in_torchvision(workspace, tmp_path):
    from torchvision.datasets import VOCSegmentation

    summary = export(workspace, "voc", tmp_path / "voc")
    masks = masks_of(workspace)
    assert summary.samples == len(masks) == 6
    train, heldout = workspace.split_ids("train"), workspace.split_ids("heldout")
    for image_set, expected in (("train", train), ("val", heldout), ("trainval", train + heldout)):
        dataset = VOCSegmentation(str(tmp_path / "voc"), year="2012", image_set=image_set)
        ids = [Path(p).stem for p in dataset.images]
        assert ids == expected
        for index, sample_id in enumerate(ids):
            image, target = dataset[index]
            assert target.mode == "P" and np.array_equal(np.asarray(target), masks[sample_id])
            original = workspace.load_image(sample_id).astype(np.int16)
            assert image.size == (original.shape[1], original.shape[0])
            rmse = np.sqrt(((np.asarray(image, dtype=np.int16) - original) ** 2).mean())
            assert 20 * np.log10(255 / rmse) > 30, "JPEG quality 95 of the same picture (another one is < 20 dB)"
    voc = tmp_path / "voc" / "VOCdevkit" / "VOC2012"
    assert json.loads((voc / "labels.json").read_text())["name"] == workspace.labels.name
    unlabelled = workspace.list_unlabelled()[0].id
    assert not any(unlabelled in p.name for p in (tmp_path / "voc").rglob("*"))


def test_coco_export_reads_back_with_pycocotools(workspace, tmp_path):
    coco_module = pytest.importorskip("pycocotools.coco")
    export(workspace, "coco", tmp_path / "coco")
    coco = coco_module.COCO(str(tmp_path / "coco" / "annotations.json"))
    labels, masks = workspace.labels, masks_of(workspace)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(labels.names)
    assert len(coco.getImgIds()) == len(masks) == 6
    for info in coco.loadImgs(coco.getImgIds()):
        mask = masks[info["segdemo_id"]]
        rebuilt = np.full(mask.shape, labels.ignore_index, np.uint8)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=info["id"]))
        assert sorted(a["category_id"] - 1 for a in annotations) == sorted(set(np.unique(mask)) - {255})
        for annotation in annotations:
            binary = coco.annToMask(annotation).astype(bool)
            assert not (binary & (rebuilt != labels.ignore_index)).any(), "one class per pixel"
            assert annotation["area"] == binary.sum()
            x, y, w, h = annotation["bbox"]
            ys, xs = np.nonzero(binary)
            assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            rebuilt[binary] = annotation["category_id"] - 1
        assert np.array_equal(rebuilt, mask)
        with Image.open(tmp_path / "coco" / "images" / info["file_name"]) as image:
            assert np.array_equal(np.asarray(image.convert("RGB")), workspace.load_image(info["segdemo_id"]))


def test_layout_zip_and_folder_train_as_datasets(workspace, tmp_path):
    masks = masks_of(workspace)
    export(workspace, "layout", tmp_path / "layout")
    dataset = SegmentationDataset.from_split(tmp_path / "layout", "all")
    assert len(dataset) == 6
    for sample_id, tensor in zip(dataset.ids, dataset.masks):
        assert np.array_equal(tensor.numpy(), masks[sample_id])
    export(workspace, "layout", tmp_path / "layout.zip")
    with zipfile.ZipFile(tmp_path / "layout.zip") as archive:
        assert set(archive.namelist()) == {p.relative_to(tmp_path / "layout").as_posix()
                                           for p in (tmp_path / "layout").rglob("*") if p.is_file()}
    assert zipfile.ZipFile(io.BytesIO(zip_bytes(workspace, "coco"))).namelist()[-1] == "annotations.json"


def test_a_voc_export_imports_back_as_corrected_samples(workspace, tmp_path):
    export(workspace, "voc", tmp_path / "voc.zip")
    other = Workspace(tmp_path / "other")
    report = import_paths(other, [tmp_path / "voc.zip"])
    assert report.skipped == [] and len(report.corrected) == 6
    by_source = {s.source_name.rsplit(".", 1)[0]: s.id for s in other.list_samples()}
    for sample_id, mask in masks_of(workspace).items():
        assert np.array_equal(other.load_sample(by_source[sample_id])[2], mask)


def test_refusals_write_nothing(workspace, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export(workspace, "voc", tmp_path / "taken")
    with pytest.raises(ExportError, match="unknown export format"):
        export(workspace, "yolo", tmp_path / "new")
    with pytest.raises(ExportError, match="no corrected samples"):
        export(Workspace(tmp_path / "empty"), "coco", tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken", "ws"]


def test_cli_export(workspace, tmp_path):
    result = subprocess.run([sys.executable, "-m", "segdemo", "export", "--workspace", str(workspace.root),
                             "--format", "coco", "--out", str(tmp_path / "out.zip"), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["samples"] == 6
    again = subprocess.run([sys.executable, "-m", "segdemo", "export", "--workspace", str(workspace.root),
                            "--format", "coco", "--out", str(tmp_path / "out.zip")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr
