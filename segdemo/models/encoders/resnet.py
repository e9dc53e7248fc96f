"""Residual building blocks shared by the compact configurations (torchvision's ResNet BasicBlock)."""

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
