"""Decoders over the frozen shared encoder: stride-aligned crops, the feature cache of a dataset, training from
it with checkpoints and resumption, and the written weights."""

import random

import numpy as np
import pytest
import torch

from segdemo.cli import main
from segdemo.labels import CAMVID11
from segdemo.learning.features import STRIDE, EncodedDataset, crop_maps, random_box
from segdemo.learning.train_decoder import DecoderConfig, evaluate_views, fit_decoder, shared_encoder
from segdemo.models import build_model
from segdemo.models.encoders.efficientnet import LITE_MEAN, LITE_STD, EfficientNetLite0Encoder
from segdemo.weights import WeightsEntry

STRIDES = (2, 4, 8, 16, 32)


def coordinate_maps(height: int, width: int) -> tuple[torch.Tensor, ...]:
    """Maps whose value at each position is the input row (channel 0) and column (channel 1) it starts at."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    grid = torch.stack([rows, cols]).float()[None]
    return tuple(grid[..., ::s, ::s] for s in STRIDES)


@pytest.mark.parametrize("seed", range(5))
def test_crops_of_every_map_cover_the_same_box(seed):
    padded = (160, 224)
    top, left, height, width = random_box(padded, (96, 128), random.Random(seed))
    assert top % STRIDE == left % STRIDE == height % STRIDE == width % STRIDE == 0
    assert (height, width) == (96, 128) and top + height <= padded[0] and left + width <= padded[1]
    for stride, crop in zip(STRIDES, crop_maps(coordinate_maps(*padded), padded, top, left, height, width)):
        assert crop.shape[-2:] == (height // stride, width // stride)
        assert crop[0, :, 0, 0].tolist() == [top, left]


def test_a_box_larger_than_the_input_is_the_whole_input():
    assert random_box((64, 96), (288, 384), np.random.default_rng(0)) == (0, 0, 64, 96)


def encoded(root, folder, encoder, sha):
    return EncodedDataset(root, folder, labels=CAMVID11, encoder=encoder, encoder_sha256=sha, scales=(0.5, 1.0),
                          flips=True, base_size=64, mean=LITE_MEAN, std=LITE_STD)


def test_the_cache_is_reused_and_recomputed_for_another_encoder(tiny_dataset, tmp_path):
    torch.manual_seed(0)
    encoder = EfficientNetLite0Encoder().eval()
    cache = encoded(tiny_dataset, tmp_path / "cache", encoder, "a" * 64)
    views = cache.load("scene000")
    assert sorted(views.features) == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
    maps, mask = views.view(1.0, 1)
    assert [m.shape[1] for m in maps] == list(encoder.out_channels)
    assert mask.shape == (64, 96) and mask[:, -2:].eq(255).all(), "the mirrored mask has the void border on the right"
    stamp = cache.files.path("scene000").stat().st_mtime_ns
    cache.ensure("scene000")
    assert cache.files.path("scene000").stat().st_mtime_ns == stamp, "a current file is not recomputed"
    encoded(tiny_dataset, tmp_path / "cache", encoder, "b" * 64).ensure("scene000")
    assert cache.files.path("scene000").stat().st_mtime_ns != stamp, "another encoder's file is recomputed"
    cache.files.path("scene001").write_bytes(b"garbage")
    assert cache.load("scene001").masks[1.0].shape == (64, 96), "an unreadable file is recomputed"


@pytest.mark.parametrize("name", ["unet_lite0", "segnet_lite0"])
def test_a_decoder_learns_drawn_scenes_and_resumes_from_its_checkpoint(name, tiny_dataset, tmp_path):
    torch.manual_seed(0)
    encoder, entry = shared_encoder()
    cache = encoded(tiny_dataset, tmp_path / "cache", encoder, entry.sha256)
    train = [cache.load(f"scene{i:03d}") for i in range(8)]
    model = build_model(name)
    model.encoder.load_state_dict(encoder.state_dict())
    before = evaluate_views(model, train, CAMVID11)["miou"]
    checkpoint = tmp_path / "decoder.last.safetensors"
    config = DecoderConfig(epochs=3, batch_size=2, crop=(64, 96), lr=1e-2)
    first = fit_decoder(model, CAMVID11, train, {}, config, checkpoint=checkpoint, log=lambda _: None)
    assert [h["epoch"] for h in first["history"]] == [1, 2, 3]
    config.epochs = 12
    messages = []
    result = fit_decoder(model, CAMVID11, train, {"train": train}, config, checkpoint=checkpoint, log=messages.append)
    assert messages[0].startswith("resumed") and "after epoch 3" in messages[0]
    assert len(result["history"]) == 12
    assert result["metrics"]["train"]["miou"] > before + 0.2


def test_train_decoder_writes_weights_on_the_shared_encoder(tiny_dataset, tmp_path):
    out = tmp_path / "segnet.safetensors"
    assert main(["train-decoder", "--model", "segnet_lite0", "--data", str(tiny_dataset), "--hold-out", "scene001",
                 "--scales", "0.5", "--epochs", "1", "--batch-size", "2", "--crop", "96", "128",
                 "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    entry = WeightsEntry.from_json(out.with_suffix(".json"))
    _, source = shared_encoder()
    assert entry.meta["encoder"] == {"model": "fcn8s_lite0", "file": source.file.name, "sha256": source.sha256,
                                     "version": source.version, "frozen": True}
    assert entry.meta["recipe"]["train_images"] == 7 and set(entry.meta["metrics"]) == {"val", "held-out:scene001"}
    model = build_model("segnet_lite0", weights=entry)
    shipped = build_model("fcn8s_lite0", weights="default")
    for key, value in shipped.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key


def test_train_decoder_refuses_a_model_with_its_own_trunk(tiny_dataset, tmp_path, capsys):
    assert main(["train-decoder", "--model", "unet_compact", "--data", str(tiny_dataset),
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "x.safetensors")]) == 1
    assert "does not run on the shared encoder" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*")), "nothing is written"
