"""FCN (Long, Shelhamer, Darrell, CVPR 2015): a classification trunk made fully convolutional, class scores
read at strides 32, 16 and 8, fused by addition, and upsampled by transposed convolutions initialised to
bilinear interpolation (the FCN-8s skip architecture).

The fast learner's cheap part (``top``) is the whole FCN-8s head: the three score layers and their upsamplers.
It is where FCN reads classes from the trunk's features, it costs almost nothing (1x1 convolutions on stride-8 to
stride-32 features), and the trunk's features at three strides are small enough to cache per sample."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg16
from torchvision.models._utils import IntermediateLayerGetter

from segdemo.models.base import SegmentationModel, SharedDecoder, SharedEncoderModel
from segdemo.models.encoders.resnet import ResNetTrunk
from segdemo.models.registry import register_model


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """(channels, channels, k, k) weights that make a ConvTranspose2d upsample each channel bilinearly."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(kernel_size, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = ramp[:, None] * ramp[None, :]
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Learnable ×factor upsampling, initialised to exact bilinear interpolation."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return up


class FCN8sHead(nn.Module):
    """Score layers at strides 8/16/32 and the fusing upsamplers: features → class logits at stride 1."""

    def __init__(self, channels: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        c8, c16, c32 = channels
        self.score8 = nn.Conv2d(c8, num_classes, 1)
        self.score16 = nn.Conv2d(c16, num_classes, 1)
        self.score32 = nn.Conv2d(c32, num_classes, 1)
        self.up32 = bilinear_upsampler(num_classes, 2)
        self.up16 = bilinear_upsampler(num_classes, 2)
        self.up8 = bilinear_upsampler(num_classes, 8)
        for score in (self.score8, self.score16):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)

    def forward(self, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor) -> torch.Tensor:
        fused16 = self.score16(f16) + self.up32(self.score32(f32))
        fused8 = self.score8(f8) + self.up16(fused16)
        return self.up8(fused8)


class FCN8s(SegmentationModel):
    """FCN-8s over any trunk exposing feature maps at strides 8, 16 and 32."""

    def __init__(self, *, trunk: nn.Module, return_layers: dict[str, str], channels: tuple[int, int, int],
                 neck: nn.Module | None, num_classes: int, in_channels: int, input_scale: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, stride=32, input_scale=input_scale)
        self.encoder = IntermediateLayerGetter(trunk, return_layers=return_layers)
        self.neck = neck if neck is not None else nn.Identity()
        self.channels = channels
        self.head = FCN8sHead(channels, num_classes)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.encoder(x)
        return features["s8"], features["s16"], self.neck(features["s32"])

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        return self.head(*features)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = FCN8sHead(self.channels, num_classes)


class LiteFCN8sDecoder(SharedDecoder):
    """FCN-8s over the shared encoder: class scores read from its stride-8 (40 ch), stride-16 (112 ch) and
    stride-32 features (the 1280-channel head conv, the encoder's last layer before ImageNet's classifier). Its
    classifier is the whole :class:`FCN8sHead`."""

    def __init__(self, encoder_channels: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.channels = tuple(encoder_channels[-3:])
        self.head = FCN8sHead(self.channels, num_classes)

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.head(*features[-3:])

    def new_head(self, num_classes: int) -> FCN8sHead:
        return FCN8sHead(self.channels, num_classes)


@register_model(family="fcn", config="paper")
def fcn8s_vgg16(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0) -> FCN8s:
    """FCN-8s on VGG16 (the paper's network; fc6/fc7 as 7x7 and 1x1 convolutions of width 4096)."""
    features = vgg16(weights=None).features
    if in_channels != 3:
        features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    neck = nn.Sequential(
        nn.Conv2d(512, 4096, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
        nn.Conv2d(4096, 4096, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
    )
    return FCN8s(trunk=features, return_layers={"16": "s8", "23": "s16", "30": "s32"}, channels=(256, 512, 4096),
                 neck=neck, num_classes=num_classes, in_channels=in_channels, input_scale=input_scale)


@register_model(family="fcn", config="compact")
def fcn8s_compact(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0,
                  widths: tuple[int, int, int, int] = (32, 64, 128, 256),
                  blocks: tuple[int, int, int, int] = (1, 2, 2, 2)) -> FCN8s:
    """FCN-8s on a narrow ResNet trunk, sized for a laptop CPU."""
    trunk = ResNetTrunk(in_channels, widths, blocks)
    return FCN8s(trunk=trunk, return_layers={"layer2": "s8", "layer3": "s16", "layer4": "s32"},
                 channels=trunk.out_channels[1:], neck=None, num_classes=num_classes, in_channels=in_channels,
                 input_scale=input_scale)


@register_model(family="fcn", config="pretrained")
def fcn8s_lite0(*, num_classes: int = 11, in_channels: int = 3, input_scale: float = 1.0) -> SharedEncoderModel:
    """FCN-8s on the shared EfficientNet-Lite0 encoder (ImageNet-initialised for training). Files written before
    it became a :class:`SharedEncoderModel` name its head ``head.*``; they load unchanged (``weights.RENAMED``)."""
    return SharedEncoderModel(decoder=LiteFCN8sDecoder, num_classes=num_classes, in_channels=in_channels,
                              input_scale=input_scale)
