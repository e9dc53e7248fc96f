"""Residual building blocks shared by the compact configurations (torchvision's ResNet BasicBlock), and the narrow
ResNet encoder the compact FCN-8s reads its features from."""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock
from torchvision.ops import Conv2dNormActivation


def residual_stage(in_channels: int, width: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """``blocks`` BasicBlocks going from ``in_channels`` to ``width``; the first one strides by ``stride``."""
    downsample = None
    if stride != 1 or in_channels != width:
        downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
    layers = [BasicBlock(in_channels, width, stride, downsample)]
    layers += [BasicBlock(width, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stem(in_channels: int, width: int) -> nn.Sequential:
    """A 3x3 stride-2 conv to ``width // 2`` channels, then a 3x3 conv to ``width``: input → stride 2."""
    return nn.Sequential(Conv2dNormActivation(in_channels, width // 2, 3, stride=2),
                         Conv2dNormActivation(width // 2, width, 3, stride=1))


class ResNetTrunk(nn.Module):
    """A narrow ResNet (torchvision BasicBlocks) whose stages ``layer1``..``layer4`` end at :attr:`strides` 4, 8, 16
    and 32 with ``out_channels`` = ``widths`` channels."""

    strides: tuple[int, ...] = (4, 8, 16, 32)
    output_stride: int = 32

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int], blocks: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.out_channels = tuple(widths)
        self.stem = nn.Sequential(*stem(in_channels, widths[0]), nn.MaxPool2d(3, stride=2, padding=1))
        inputs = (widths[0],) + tuple(widths[:-1])
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            residual_stage(i, w, n, stride=1 if index == 0 else 2)
            for index, (i, w, n) in enumerate(zip(inputs, widths, blocks)))
