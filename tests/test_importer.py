"""Importing a folder of images: files, folders, zips, datasets with masks, and every kind of bad input."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.importer import MAX_ZIP_RATIO, import_paths
from segdemo.labels import CAMVID11, LabelSet, mask_to_palette_image
from segdemo.store import Workspace, make_sample_id

from tests.drawing import ROAD, draw_scene, write_dataset

ROOT = Path(__file__).resolve().parents[1]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (900 megapixels by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def reasons(report) -> dict[str, str]:
    return {s.name: s.reason for s in report.skipped}


def test_files_folders_and_zips_become_unlabelled_samples(tmp_path):
    images = [draw_scene(seed)[0] for seed in range(5)]
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(images[0]).save(tmp_path / "in" / "a.png")
    Image.fromarray(images[1]).save(tmp_path / "in" / "sub" / "b.bmp")
    Image.fromarray(images[2]).save(tmp_path / "single.png")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.writestr("c.png", png_bytes(images[3]))
        archive.writestr("deeper/d.png", png_bytes(images[4]))
        archive.writestr("__MACOSX/._c.png", b"resource fork")
    workspace = Workspace(tmp_path / "ws")
    seen = []
    report = import_paths(workspace, [tmp_path / "in", tmp_path / "single.png", tmp_path / "more.zip"],
                          progress=lambda done, total, name: seen.append((done, total)))
    assert report.skipped == [] and report.corrected == []
    expected = [make_sample_id(name, image) for name, image in zip("abcd", images[:2] + images[3:])]
    assert sorted(report.imported) == sorted(expected[:2] + [make_sample_id("single", images[2])] + expected[2:])
    assert seen == [(i, 5) for i in range(1, 6)]
    assert workspace.list_samples() == [] and len(workspace.list_unlabelled()) == 5
    for sample in workspace.list_unlabelled():
        assert any(np.array_equal(workspace.load_image(sample.id), image) for image in images)
    assert report.to_json() == {"imported": 5, "corrected": 0, "skipped": []}


def test_bad_input_gets_a_reason_and_writes_nothing(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    image, truth = draw_scene(1)
    kept = workspace.save_sample(image, np.full_like(truth, ROAD), truth, model="m", weights_version="v1",
                                 source_name="kept.png")
    before = files_of(workspace.root)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes.txt", "not a picture")
        archive.writestr("fake.png", b"\x89PNG but not really")
        archive.writestr("bomb.png", bomb_png())
        archive.writestr("zeros.png", b"\0" * (MAX_ZIP_RATIO * 2**15))
        archive.writestr("../escape.png", png_bytes(draw_scene(2)[0]))
        archive.writestr("/abs/path.png", png_bytes(draw_scene(3)[0]))
        archive.writestr("again.png", png_bytes(image))
        archive.writestr("tiny.png", png_bytes(np.zeros((8, 8, 3), np.uint8)))
        archive.writestr("inner.zip", b"PK\x05\x06" + b"\0" * 18)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 damaged")
    report = import_paths(workspace, [tmp_path / "bad.zip", tmp_path / "broken.zip", tmp_path / "missing.png"])
    why = reasons(report)
    assert report.imported == []
    assert "not an image" in why["bad.zip/notes.txt"] and "not an image" in why["bad.zip/fake.png"]
    assert "too large" in why["bad.zip/bomb.png"]
    assert "decompression bomb" in why["bad.zip/zeros.png"]
    assert "unsafe path" in why["bad.zip:../escape.png"] and "unsafe path" in why["bad.zip:/abs/path.png"]
    assert f"duplicate of sample {kept.id}" in why["bad.zip/again.png"]
    assert "at least 16x16" in why["bad.zip/tiny.png"]
    assert "zip inside" in why["bad.zip/inner.zip"]
    assert "not a readable zip" in why["broken.zip"] and "no such file" in why[str(tmp_path / "missing.png")]
    assert files_of(workspace.root) == before, "nothing already saved may change, nothing new may appear"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "broken.zip", "ws"]


def test_duplicates_within_one_import_and_on_a_second_import(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    image = draw_scene(7)[0]
    for name in ("one.png", "two.png"):
        Image.fromarray(image).save(tmp_path / name)
    report = import_paths(workspace, [tmp_path / "one.png", tmp_path / "two.png"])
    assert report.imported == [make_sample_id("one", image)]
    assert reasons(report) == {"two.png": "duplicate of one.png in this import"}
    again = import_paths(workspace, [tmp_path / "two.png"])
    assert again.imported == [] and "already in the workspace" in reasons(again)["two.png"]
    assert len(workspace.list_unlabelled()) == 1


def test_a_dataset_in_the_standard_layout_brings_its_masks(tmp_path):
    data = write_dataset(tmp_path / "data", train=3, val=1)
    Image.fromarray(draw_scene(50)[0]).save(data / "images" / "nomask.png")
    workspace = Workspace(tmp_path / "ws")
    report = import_paths(workspace, [data])
    assert report.skipped == [] and len(report.corrected) == 4 and len(report.imported) == 5
    assert [s.source_name for s in workspace.list_unlabelled()] == ["nomask.png"]
    for sample in workspace.list_samples():
        stem = sample.source_name.rsplit(".", 1)[0]
        with Image.open(data / "masks" / f"{stem}.png") as mask:
            expected = np.asarray(mask)
        _, prediction, corrected, meta = workspace.load_sample(sample.id)
        assert np.array_equal(corrected, expected) and np.array_equal(prediction, expected)
        assert meta.model == "imported" and meta.changed_pixels == 0
    assert sorted(workspace.split_ids("all")) == sorted(report.corrected)
    assert (workspace.root / "splits" / "all.txt").read_text().split() == workspace.split_ids("all")


def test_dataset_masks_that_do_not_fit_are_refused(tmp_path):
    data = write_dataset(tmp_path / "data", train=3, val=0)
    mask_to_palette_image(np.zeros((10, 10), np.uint8), CAMVID11).save(data / "masks" / "scene001.png")
    Image.fromarray(np.full((72, 96), 40, np.uint8), mode="L").save(data / "masks" / "scene002.png")
    workspace = Workspace(tmp_path / "ws")
    report = import_paths(workspace, [data])
    why = reasons(report)
    assert "10x10 but the image is 96x72" in why["data/images/scene001.png"]
    assert "outside label set" in why["data/images/scene002.png"]
    assert len(report.corrected) == 1

    pets = LabelSet(name="pets", names=("background", "cat", "dog"), colors=((0, 0, 0), (1, 2, 3), (4, 5, 6)))
    other = Workspace(tmp_path / "pets", labels=pets)
    refused = import_paths(other, [data])
    assert refused.imported == [] and all("differs from the workspace's 'pets'" in r for r in reasons(refused).values())


def test_cli_import_prints_the_report_as_json(tmp_path):
    Image.fromarray(draw_scene(3)[0]).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    result = subprocess.run([sys.executable, "-m", "segdemo", "import", "--workspace", str(tmp_path / "ws"),
                             str(tmp_path / "good.png"), str(tmp_path / "bad.jpg"), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] == 1 and report["skipped"][0]["name"] == "bad.jpg"
    assert "not an image" in report["skipped"][0]["reason"]
    assert len(Workspace(tmp_path / "ws").list_unlabelled()) == 1
    nothing = subprocess.run([sys.executable, "-m", "segdemo", "import", "--workspace", str(tmp_path / "ws"),
                              str(tmp_path / "bad.jpg")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert nothing.returncode == 1 and "error: nothing imported" in nothing.stderr
