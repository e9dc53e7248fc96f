"""SegNet (Badrinarayanan, Kendall, Cipolla, TPAMI 2017): an encoder whose max-pooling indices are stored
and reused by the decoder's max-unpooling, so upsampling is non-learned and no encoder features are copied."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from segdemo.models.base import SegmentationModel, SharedDecoder, SharedEncoderModel
from segdemo.models.blocks import conv_bn, separable_conv_bn_relu
from segdemo.models.encoders.resnet import residual_stage, stem
from segdemo.models.registry import register_model


class EncoderStage(nn.Module):
    """Convolutions, then a 2x2 max-pool that also returns its argmax indices."""

    def __init__(self, in_channels: int, width: int, convs: int, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(conv_bn(in_channels if i == 0 else width, width, kernel_size)
                                     for i in range(convs)))
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(self.convs(x))


class DecoderStage(nn.Module):
    """Max-unpooling with the matching encoder's indices, then convolutions densifying the sparse map."""

    def __init__(self, width: int, out_channels: int, convs: int, kernel_size: int, relu: bool) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.convs = nn.Sequential(*(conv_bn(width, out_channels if i == convs - 1 else width, kernel_size, relu=relu)
                                     for i in range(convs)))

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return self.convs(self.unpool(x, indices))


class SegNet(SegmentationModel):
    """SegNet with one encoder/decoder pair per ``(width, convs)`` stage; the fast learner trains its classifier
    on the last decoder's output (the paper configurations have no shipped weights)."""

    def __init__(self, *, stages: tuple[tuple[int, int], ...], kernel_size: int, decoder_relu: bool,
                 num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=2 ** len(stages),
                         input_scale=input_scale)
        widths = [w for w, _ in stages]
        self.encoders = nn.ModuleList(
            EncoderStage(in_channels if i == 0 else widths[i - 1], w, n, kernel_size) for i, (w, n) in enumerate(stages))
        self.decoders = nn.ModuleList(
            DecoderStage(w, widths[max(i - 1, 0)], n, kernel_size, decoder_relu) for i, (w, n) in enumerate(stages))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        indices = []
        for encoder in self.encoders:
            x, index = encoder(x)
            indices.append(index)
        for decoder in reversed(self.decoders):
            x = decoder(x, indices.pop())
        return (x,)

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        return self.head(features[0])


class ResidualSegNet(SegmentationModel):
    """SegNet's index-unpooling decoder over residual stages, as ENet builds it.

    A stride-2 stem, then per stage a 2x2 max-pool that keeps its indices followed by BasicBlocks; the decoder
    mirrors it: BasicBlocks, a 1x1 conv back to the previous stage's width, and max-unpooling with that stage's
    indices. No encoder features are copied. Logits come out at stride 2 and are upsampled bilinearly.
    """

    def __init__(self, *, widths: tuple[int, ...], blocks: tuple[int, ...], decoder_blocks: tuple[int, ...],
                 num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=2 ** (len(widths) + 1),
                         input_scale=input_scale)
        self.stem = stem(in_channels, widths[0])
        inputs = (widths[0],) + tuple(widths[:-1])
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.encoders = nn.ModuleList(residual_stage(i, w, n) for i, w, n in zip(inputs, widths, blocks))
        self.decoders = nn.ModuleList(
            nn.Sequential(*(residual_stage(w, w, n) if n else ()), conv_bn(w, i, 1))
            for i, w, n in zip(inputs, widths, decoder_blocks))
        self.refine = conv_bn(widths[0], widths[0])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        indices = []
        for encoder in self.encoders:
            x, index = self.pool(x)
            indices.append(index)
            x = encoder(x)
        for decoder in reversed(self.decoders):
            x = self.unpool(decoder(x), indices.pop())
        return (x,)

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        """The fast learner's cheap part: the last decoder's densifying 3x3 convolution (``refine``, at stride 2,
        after the final index unpooling) and the classifier, then bilinear upsampling to ``size``. The unpooling
        itself learns nothing, so the sparse unpooled map is cached; ``refine`` is the first layer that can learn
        how this workspace's classes look at full detail."""
        return F.interpolate(self.head(self.refine(features[0])), size=size, mode="bilinear", align_corners=False)

    def top_modules(self) -> list[nn.Module]:
        return [self.refine, self.head]


class LiteSegNetDecoder(SharedDecoder):
    """SegNet's decoder over the shared encoder's maps at strides 2–32.

    The encoder keeps its strided convolutions; the positions SegNet's max-pooling would have chosen come from a
    2x2 max-pool with indices over each of its stride-2 to stride-16 maps, which costs almost nothing. The
    stride-32 map is reduced (1x1) to ``repeats[3]`` times the channels of the deepest index map; each stage
    max-unpools with its level's indices (each encoder channel's positions serve ``repeats[i]`` decoder
    channels, so the decoder can be wider than the encoder's early maps) and densifies with two separable convs,
    of ``widths[i]`` channels and then of the next stage's unpooled width (``widths[0]`` at the last). No encoder
    features are copied and no upsampling is learned; logits at stride 2."""

    def __init__(self, encoder_channels: tuple[int, ...], num_classes: int, *, widths: tuple[int, int, int, int],
                 repeats: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.repeats = tuple(repeats)
        unpooled = tuple(c * r for c, r in zip(encoder_channels[:-1], repeats))
        self.reduce = conv_bn(encoder_channels[-1], unpooled[-1], 1)
        outputs = (widths[0],) + unpooled[:-1]
        self.stages = nn.ModuleList(
            nn.Sequential(separable_conv_bn_relu(unpooled[level], widths[level]),
                          separable_conv_bn_relu(widths[level], outputs[level]))
            for level in reversed(range(len(unpooled))))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        y = self.reduce(features[-1])
        levels = zip(self.stages, reversed(features[:-1]), reversed(self.repeats))
        for stage, skip, repeat in levels:
            _, indices = F.max_pool2d(skip, 2, stride=2, return_indices=True)
            y = F.max_unpool2d(y, indices.repeat(1, repeat, 1, 1), 2, stride=2, output_size=skip.shape[-2:])
            y = stage(y)
        return self.head(y)


@register_model(family="segnet", config="paper")
def segnet_vgg16(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0) -> SegNet:
    """SegNet with the 13-layer VGG16 encoder and its mirrored decoder (the paper's main network)."""
    return SegNet(stages=((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), kernel_size=3, decoder_relu=True,
                  num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)


@register_model(family="segnet", config="paper")
def segnet_basic(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0) -> SegNet:
    """SegNet-Basic: 4 encoders and 4 decoders of one 7x7 conv, 64 channels, no ReLU in the decoder."""
    return SegNet(stages=((64, 1),) * 4, kernel_size=7, decoder_relu=False,
                  num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)


@register_model(family="segnet", config="compact")
def segnet_compact(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0,
                   widths: tuple[int, ...] = (32, 64, 128, 256), blocks: tuple[int, ...] = (1, 2, 2, 2),
                   decoder_blocks: tuple[int, ...] = (1, 1, 1, 1)) -> ResidualSegNet:
    """Residual SegNet with 4 pooled stages of 32 to 256 channels at full resolution: sized for a laptop CPU."""
    return ResidualSegNet(widths=widths, blocks=blocks, decoder_blocks=decoder_blocks, num_classes=num_classes,
                          in_channels=in_channels, input_scale=input_scale)


@register_model(family="segnet", config="pretrained")
def segnet_lite0(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0,
                 widths: tuple[int, int, int, int] = (32, 64, 96, 192),
                 repeats: tuple[int, int, int, int] = (2, 2, 2, 2)) -> SharedEncoderModel:
    """SegNet's index-unpooling decoder on the zoo's shared EfficientNet-Lite0 encoder."""
    return SharedEncoderModel(decoder=partial(LiteSegNetDecoder, widths=widths, repeats=repeats),
                              num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)
