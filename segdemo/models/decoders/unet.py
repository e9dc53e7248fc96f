"""U-Net (Ronneberger, Fischer, Brox, MICCAI 2015): a contracting path and a symmetric expanding path whose
up-convolved features are concatenated with the same-level contracting features at every level."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from segdemo.models.base import SegmentationModel, SharedDecoder, SharedEncoderModel
from segdemo.models.blocks import conv_bn, separable_conv_bn_relu
from segdemo.models.encoders.resnet import residual_stage, stem
from segdemo.models.registry import register_model


class DoubleConv(nn.Sequential):
    """Two 3x3 conv → BN → ReLU layers (the unit of both paths)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(conv_bn(in_channels, out_channels), conv_bn(out_channels, out_channels))


class Down(nn.Sequential):
    """2x2 max-pool, then a DoubleConv: one step down the contracting path."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(nn.Module):
    """2x2 up-convolution halving the channels, concatenation with the skip, then a DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels // 2 + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


def through_u(x: torch.Tensor, downs: nn.ModuleList, ups: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    """The U up to its last level: ``downs`` in turn, keeping every level's features, then every up but the last,
    each joined with the features kept at its level. (N, C, H, W) in; out the two inputs of ``ups[-1]``: the
    deeper features and the skip features of the top level."""
    skips = [x]
    for down in downs:
        skips.append(down(skips[-1]))
    x = skips.pop()
    for up in ups[:-1]:
        x = up(x, skips.pop())
    return x, skips.pop()


class LastLevelMixin:
    """The fast learner's cheap part for U-Nets: the last up stage (up-convolution, concatenation with the
    full-detail skip features, convolutions) and the classifier. Everything below is frozen; the cached
    features are the last stage's two inputs. The 1x1 classifier alone reads classes from only
    ``decoder_widths[0]`` channels; the last stage also decides how the skip's fine detail is used, which is what
    corrections of boundaries teach."""

    ups: nn.ModuleList
    head: nn.Module

    def top_modules(self) -> list[nn.Module]:
        return [self.ups[-1], self.head]

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        logits = self.head(self.ups[-1](*features))
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits


class UNet(LastLevelMixin, SegmentationModel):
    """U-Net with ``len(widths)`` levels; ``widths[i]`` channels at level i (stride 2**i)."""

    def __init__(self, *, widths: tuple[int, ...], num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=2 ** (len(widths) - 1),
                         input_scale=input_scale)
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.ups = nn.ModuleList(Up(b, a, a) for a, b in zip(reversed(widths[:-1]), reversed(widths[1:])))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return through_u(self.inc(x), self.downs, self.ups)


class ResidualUNet(LastLevelMixin, SegmentationModel):
    """U-Net whose contracting path is a narrow ResNet: a stride-2 stem, then one residual stage per level.

    ``widths[i]`` channels at stride 2**(i+1) on the way down; the expanding path up-convolves, concatenates the
    same-level features and applies a DoubleConv of ``decoder_widths[i]`` channels. Logits come out at stride 2
    and are upsampled bilinearly.
    """

    def __init__(self, *, widths: tuple[int, ...], blocks: tuple[int, ...], decoder_widths: tuple[int, ...],
                 num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=2 ** len(widths),
                         input_scale=input_scale)
        self.stem = stem(in_channels, widths[0])
        self.downs = nn.ModuleList(residual_stage(a, b, n, stride=2)
                                   for a, b, n in zip(widths[:-1], widths[1:], blocks))
        deeper = (widths[-1],) + tuple(decoder_widths[:0:-1])
        self.ups = nn.ModuleList(Up(d, skip, out) for d, skip, out in
                                 zip(deeper, reversed(widths[:-1]), reversed(decoder_widths)))
        self.head = nn.Conv2d(decoder_widths[0], num_classes, 1)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return through_u(self.stem(x), self.downs, self.ups)


class LiteUp(nn.Module):
    """2x2 up-convolution, concatenation with the same-level encoder features, then two separable 3x3 convs."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = nn.Sequential(separable_conv_bn_relu(in_channels // 2 + skip_channels, out_channels),
                                  separable_conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class LiteUNetDecoder(SharedDecoder):
    """U-Net's expanding path over the shared encoder's maps at strides 2–32: a 1x1 reduction of the stride-32
    map to ``bottleneck`` channels, then per level a :class:`LiteUp` (up-convolution, concatenation with the
    same-level encoder map, two separable convs) of ``widths[i]`` channels at stride 2**(i+1); logits at stride 2."""

    def __init__(self, encoder_channels: tuple[int, ...], num_classes: int, *, widths: tuple[int, int, int, int],
                 bottleneck: int) -> None:
        super().__init__()
        self.reduce = conv_bn(encoder_channels[-1], bottleneck, 1)
        deeper = (bottleneck,) + tuple(widths[:0:-1])
        self.ups = nn.ModuleList(LiteUp(d, skip, out) for d, skip, out in
                                 zip(deeper, reversed(encoder_channels[:-1]), reversed(widths)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        *skips, y = features
        y = self.reduce(y)
        for up in self.ups:
            y = up(y, skips.pop())
        return self.head(y)


@register_model(family="unet", config="paper")
def unet(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0) -> UNet:
    """U-Net as in the paper: 5 levels, 64 to 1024 channels (with padding and BatchNorm)."""
    return UNet(widths=(64, 128, 256, 512, 1024), num_classes=num_classes, in_channels=in_channels,
                input_scale=input_scale)


@register_model(family="unet", config="compact")
def unet_compact(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0,
                 widths: tuple[int, ...] = (32, 32, 64, 128, 256), blocks: tuple[int, ...] = (1, 2, 2, 2),
                 decoder_widths: tuple[int, ...] = (16, 32, 64, 128)) -> ResidualUNet:
    """Residual U-Net with 5 levels of 32 to 256 channels at full resolution: sized for a laptop CPU."""
    return ResidualUNet(widths=widths, blocks=blocks, decoder_widths=decoder_widths, num_classes=num_classes,
                        in_channels=in_channels, input_scale=input_scale)


@register_model(family="unet", config="pretrained")
def unet_lite0(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0,
               widths: tuple[int, int, int, int] = (24, 32, 64, 96), bottleneck: int = 192) -> SharedEncoderModel:
    """U-Net's expanding path on the zoo's shared EfficientNet-Lite0 encoder."""
    return SharedEncoderModel(decoder=partial(LiteUNetDecoder, widths=widths, bottleneck=bottleneck),
                              num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)
