"""The workspace: layout, the fixed held-out split, refusals, path safety, concurrency and export."""

import io
import json
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from segdemo.data import SegmentationDataset
from segdemo.export import zip_bytes
from segdemo.labels import CAMVID11, LabelSet
from segdemo.store import StoreError, Workspace, heldout_target, make_sample_id

from tests.drawing import CAR, ROAD, draw_scene


def save(workspace, seed, **kwargs):
    image, truth = draw_scene(seed)
    prediction = np.full_like(truth, ROAD)
    return workspace.save_sample(image, prediction, truth, model="fcn8s_compact", weights_version="v1",
                                 source_name=f"street_{seed}.jpg", **kwargs)


def test_saved_sample_is_a_dataset_in_the_standard_layout(tmp_path):
    workspace = Workspace(tmp_path)
    meta = save(workspace, 1)
    for folder in ("images", "predictions", "masks"):
        assert (tmp_path / folder / f"{meta.id}.png").is_file()
    with Image.open(tmp_path / "masks" / f"{meta.id}.png") as mask:
        assert mask.mode == "P"
    record = json.loads((tmp_path / "meta" / f"{meta.id}.json").read_text())
    assert record["model"] == "fcn8s_compact" and record["weights_version"] == "v1"
    assert record["changed_pixels"] == int((draw_scene(1)[1] != ROAD).sum())
    assert (tmp_path / "labels.json").is_file()
    dataset = SegmentationDataset.from_split(tmp_path, "all")
    assert len(dataset) == 1 and np.array_equal(dataset.masks[0].numpy(), draw_scene(1)[1])


def test_split_is_fixed_deterministic_and_never_moves(tmp_path):
    workspace = Workspace(tmp_path / "a")
    metas = [save(workspace, seed) for seed in range(12)]
    splits = {m.id: m.split for m in metas}
    assert 1 <= sum(s == "heldout" for s in splits.values()) <= 6
    for seed in range(12):
        save(workspace, seed)
    reopened = Workspace(tmp_path / "a")
    assert {m.id: m.split for m in reopened.list_samples()} == splits
    assert set(reopened.split_ids("heldout")) == {i for i, s in splits.items() if s == "heldout"}
    assert (tmp_path / "a" / "splits" / "train.txt").read_text().split() == reopened.split_ids("train")
    other = Workspace(tmp_path / "b")
    assert {m.id: m.split for m in (save(other, seed) for seed in range(12))} == splits


def test_heldout_share_starts_at_one_in_three_then_one_in_five():
    assert [heldout_target(n) for n in (1, 2, 3, 5, 6, 9, 10, 12, 15, 20, 25, 50)] == [0, 0, 1, 1, 2, 3, 3, 4, 4, 4, 5, 10]


def test_every_third_sample_is_held_out_until_there_are_four(tmp_path):
    workspace = Workspace(tmp_path)
    metas = [save(workspace, seed) for seed in range(15)]
    assert [i for i, m in enumerate(metas) if m.split == "heldout"] == [2, 5, 8, 11]
    assert sum(m.split == "heldout" for m in metas) == heldout_target(15)


def test_resave_keeps_id_split_and_creation_time(tmp_path):
    workspace = Workspace(tmp_path)
    first = save(workspace, 3)
    image, truth = draw_scene(3)
    truth[:4, :4] = CAR
    second = workspace.save_sample(image, np.full_like(truth, ROAD), truth, model="fcn8s_compact",
                                   weights_version="v2", sample_id=first.id)
    assert (second.id, second.split, second.created) == (first.id, first.split, first.created)
    assert workspace.load_sample(first.id)[2][:4, :4].tolist() == [[CAR] * 4] * 4
    assert len(workspace.list_samples()) == 1


@pytest.mark.parametrize("change, message", [
    (lambda img, pred, cor: (img, pred, cor[:-1]), "corrected mask is"),
    (lambda img, pred, cor: (img, pred, np.full_like(cor, 40)), "outside label set"),
    (lambda img, pred, cor: (img, pred, np.full_like(cor, 255)), "entirely void"),
    (lambda img, pred, cor: (img, None, cor), "segment an image first"),
    (lambda img, pred, cor: (img[..., 0], pred, cor), "RGB uint8"),
])
def test_bad_saves_are_refused_and_write_nothing(tmp_path, change, message):
    workspace = Workspace(tmp_path)
    image, truth = draw_scene(2)
    with pytest.raises(StoreError, match=message):
        workspace.save_sample(*change(image, np.zeros_like(truth), truth), model="m", weights_version="v")
    assert workspace.list_samples() == []
    assert not any((tmp_path / folder).glob("*") for folder in ("images", "masks", "predictions", "meta")
                   if (tmp_path / folder).exists())


@pytest.mark.parametrize("bad_id", ["../escape", "/etc/passwd", "a\x00b", "x" * 300, "..", ".hidden", "a/b", ""])
def test_ids_cannot_escape_the_workspace(tmp_path, bad_id):
    workspace = Workspace(tmp_path / "ws")
    with pytest.raises(StoreError):
        save(workspace, 1, sample_id=bad_id)
    with pytest.raises(StoreError):
        workspace.load_sample(bad_id)
    with pytest.raises(StoreError):
        workspace.delete_sample(bad_id)
    assert not (tmp_path / "escape.png").exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path/photo.jpg", "a\x00b.png", "é" * 500 + ".png", ""])
def test_ids_made_from_hostile_file_names_are_safe(tmp_path, name):
    workspace = Workspace(tmp_path)
    image = draw_scene(1)[0]
    sample_id = make_sample_id(name, image)
    assert Workspace.check_id(sample_id) == sample_id
    meta = save(workspace, 1) if not name else workspace.save_sample(
        image, np.zeros(image.shape[:2], np.uint8), np.ones(image.shape[:2], np.uint8), model="m",
        weights_version="v", source_name=name)
    assert (tmp_path / "meta" / f"{meta.id}.json").resolve().is_relative_to(tmp_path.resolve())


def test_delete_and_export(tmp_path):
    workspace = Workspace(tmp_path)
    metas = [save(workspace, seed) for seed in range(4)]
    workspace.delete_sample(metas[0].id)
    assert [m.id for m in workspace.list_samples()] == [m.id for m in metas[1:]]
    assert not (tmp_path / "images" / f"{metas[0].id}.png").exists()
    with pytest.raises(StoreError, match="no sample"):
        workspace.delete_sample(metas[0].id)
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(workspace, "layout")))
    names = set(archive.namelist())
    assert "labels.json" in names and "splits/all.txt" in names
    for meta in metas[1:]:
        assert f"masks/{meta.id}.png" in names and f"images/{meta.id}.png" in names
        with Image.open(io.BytesIO(archive.read(f"masks/{meta.id}.png"))) as mask:
            assert mask.mode == "P" and mask.getpalette()[:3] == list(CAMVID11.colors[0])


def test_two_threads_saving_at_once_both_land(tmp_path):
    workspaces = [Workspace(tmp_path), Workspace(tmp_path)]
    errors = []

    def worker(index):
        try:
            for seed in range(index * 10, index * 10 + 6):
                save(workspaces[index], seed)
        except Exception as err:  # collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(Workspace(tmp_path).list_samples()) == 12
    assert len(Workspace(tmp_path).split_ids("all")) == 12
    assert not list(tmp_path.rglob("*.tmp"))


def test_custom_label_set_and_mismatch(tmp_path):
    pets = LabelSet(name="pets", names=("background", "cat", "dog"), colors=((0, 0, 0), (1, 2, 3), (4, 5, 6)))
    Workspace(tmp_path, labels=pets)
    assert Workspace(tmp_path).labels == pets
    with pytest.raises(StoreError, match="already has label set"):
        Workspace(tmp_path, labels=CAMVID11)


def test_live_pointer_and_versions(tmp_path):
    workspace = Workspace(tmp_path)
    assert workspace.live_version("unet_compact") == "shipped" and workspace.live_entry("unet_compact") is None
    assert workspace.next_version("unet_compact") == "v1"
    with pytest.raises(StoreError, match="no version"):
        workspace.set_live("unet_compact", "v4")


def test_disk_full_gives_a_clear_error_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    import errno

    import segdemo.fileio

    workspace = Workspace(tmp_path)
    kept = save(workspace, 1)
    real_replace, calls = segdemo.fileio.os.replace, []

    def replace_until_full(src, dst):
        calls.append(dst)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(segdemo.fileio.os, "replace", replace_until_full)
    with pytest.raises(StoreError, match="No space left on device"):
        save(workspace, 2)
    monkeypatch.undo()
    assert [m.id for m in Workspace(tmp_path).list_samples()] == [kept.id]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [f"{kept.id}.png"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_workspace_that_cannot_be_created_gives_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create workspace"):
        Workspace(tmp_path / "file" / "ws")


def test_unlabelled_sample_is_no_training_data_until_it_gets_a_mask(tmp_path):
    workspace = Workspace(tmp_path)
    image, truth = draw_scene(4)
    meta = workspace.add_unlabelled(image, source_name="street_4.jpg")
    assert (meta.state, meta.split, meta.labelled) == ("unlabelled", "", False)
    assert meta.id == make_sample_id("street_4.jpg", image)
    assert (tmp_path / "images" / f"{meta.id}.png").is_file() and not (tmp_path / "masks").exists()
    assert workspace.list_samples() == [] and workspace.split_ids("all") == []
    assert [s.id for s in workspace.list_unlabelled()] == [meta.id]
    assert np.array_equal(workspace.load_image(meta.id), image)
    with pytest.raises(StoreError, match="no mask yet"):
        workspace.load_sample(meta.id)
    with pytest.raises(StoreError, match="already in the workspace"):
        workspace.add_unlabelled(image, source_name="street_4.jpg")
    saved = workspace.save_sample(image, np.full_like(truth, ROAD), truth, model="m", weights_version="v1",
                                  sample_id=meta.id)
    assert saved.labelled and saved.split in ("train", "heldout") and saved.source_name == "street_4.jpg"
    assert workspace.list_unlabelled() == [] and workspace.split_ids("all") == [meta.id]
    assert np.array_equal(workspace.load_sample(meta.id)[2], truth)
    assert workspace.digests() == {saved.image_sha256: meta.id}


def test_stale_temp_file_is_swept_but_a_live_writers_is_not(tmp_path):
    """A kill -9 mid-write leaves meta/.<id>.json.<random>.tmp: the next open deletes it; a write in progress in
    another process (its temp file flock-ed) is left alone however old it looks, and goes once that process dies."""
    import os
    import subprocess
    import sys

    workspace = Workspace(tmp_path)
    kept = save(workspace, 1)
    stale = tmp_path / "meta" / f".{kept.id}.json.k9x2ab.tmp"
    stale.write_text('{"id": "half')
    live = tmp_path / "images" / ".other.png.q7w8e9.tmp"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()", str(live)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        old = stale.stat().st_mtime - 3600
        for path in (stale, live):
            os.utime(path, (old, old))
        fresh = tmp_path / "masks" / f".{kept.id}.png.a1b2c3.tmp"
        fresh.write_bytes(b"just created, not locked yet")
        Workspace(tmp_path)
        assert not stale.exists(), "a temp file nobody holds must be swept"
        assert live.exists(), "another process's write in progress must not be touched"
        assert fresh.exists(), "a temp file seconds old may not be locked yet by its writer"
    finally:
        writer.kill()
        writer.wait()
    Workspace(tmp_path)
    assert not live.exists(), "once its writer is dead the temp file is stale"
    assert [s.id for s in Workspace(tmp_path).list_samples()] == [kept.id]
