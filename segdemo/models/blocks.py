"""The convolution blocks every family's decoder is built from (one definition each)."""

from __future__ import annotations

from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, *, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) → BatchNorm (→ ReLU), 'same' padding; modules ``0``, ``1`` (, ``2``)."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
              nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def separable_conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 depthwise conv → BN → ReLU → 1x1 conv → BN → ReLU: a light 3x3 conv for decoders on a mobile encoder."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )
