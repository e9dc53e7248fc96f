"""SegNet (Badrinarayanan, Kendall, Cipolla, TPAMI 2017): an encoder whose max-pooling indices are stored
and reused by the decoder's max-unpooling, so upsampling is non-learned and no encoder features are copied."""

from __future__ import annotations

import torch
from torch import nn

from segdemo.models.base import SegmentationModel
from segdemo.models.registry import register_model


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, relu: bool) -> nn.Sequential:
    """Conv → BN (→ ReLU), 'same' padding."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
              nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class EncoderStage(nn.Module):
    """Convolutions, then a 2x2 max-pool that also returns its argmax indices."""

    def __init__(self, in_channels: int, width: int, convs: int, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(conv_bn(in_channels if i == 0 else width, width, kernel_size, True)
                                     for i in range(convs)))
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(self.convs(x))


class DecoderStage(nn.Module):
    """Max-unpooling with the matching encoder's indices, then convolutions densifying the sparse map."""

    def __init__(self, width: int, out_channels: int, convs: int, kernel_size: int, relu: bool) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.convs = nn.Sequential(*(conv_bn(width, out_channels if i == convs - 1 else width, kernel_size, relu)
                                     for i in range(convs)))

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return self.convs(self.unpool(x, indices))


class SegNet(SegmentationModel):
    """SegNet with one encoder/decoder pair per ``(width, convs)`` stage."""

    def __init__(self, *, stages: tuple[tuple[int, int], ...], kernel_size: int, decoder_relu: bool,
                 num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=2 ** len(stages),
                         input_scale=input_scale)
        widths = [w for w, _ in stages]
        self.encoders = nn.ModuleList(
            EncoderStage(in_channels if i == 0 else widths[i - 1], w, n, kernel_size) for i, (w, n) in enumerate(stages))
        self.decoders = nn.ModuleList(
            DecoderStage(w, widths[max(i - 1, 0)], n, kernel_size, decoder_relu) for i, (w, n) in enumerate(stages))
        self.head_channels = widths[0]
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        indices = []
        for encoder in self.encoders:
            x, index = encoder(x)
            indices.append(index)
        for decoder in reversed(self.decoders):
            x = decoder(x, indices.pop())
        return self.head(x)

    def classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Conv2d(self.head_channels, num_classes, 1)


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
def segnet_compact(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 0.5,
                   stages: tuple[tuple[int, int], ...] = ((32, 1), (64, 1), (96, 2), (128, 2), (160, 2))) -> SegNet:
    """SegNet with 5 encoder/decoder stages of 32 to 160 channels (1, 1, 2, 2, 2 convs), run at half resolution."""
    return SegNet(stages=stages, kernel_size=3, decoder_relu=True,
                  num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)
