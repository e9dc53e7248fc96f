"""What every segdemo model shares: input checks, internal resolution, padding to the network's stride."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from segdemo.geometry import MIN_INPUT_SIZE, pad_to_stride, scaled_size



class SegmentationModel(nn.Module):
    """Base class. ``forward``: float (N, in_channels, H, W) → logits (N, num_classes, H, W), any H, W ≥ 16.

    Subclasses implement ``forward_padded`` on inputs whose sides are multiples of ``stride``. With
    ``input_scale`` < 1 the network runs at that fraction of the input resolution and its logits are
    upsampled bilinearly back to (H, W).
    """

    shared_trunk = ""
    """Models whose :meth:`trunk` is the same function of the same named weights share this name (and so their
    cached features, when the weights are equal too); empty: a trunk of the model's own."""

    def __init__(self, *, num_classes: int, in_channels: int, stride: int, input_scale: float = 1.0) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        if not 0.0 < input_scale <= 1.0:
            raise ValueError(f"input_scale must lie in (0, 1], got {input_scale}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stride = stride
        self.input_scale = input_scale

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The part the fast learner keeps frozen: a padded input (sides multiples of ``stride``) → the float
        feature maps :meth:`top` turns into logits."""
        raise NotImplementedError

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        """The cheap part: :meth:`trunk`'s features → logits (N, num_classes, *size) for a padded input of ``size``."""
        raise NotImplementedError

    def top_modules(self) -> list[nn.Module]:
        """The modules :meth:`top` trains through (the fast learner's parameters); they include the classifier."""
        return [self.classifier()]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.trunk(x), x.shape[-2:])

    def padded_input(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Validate ``x`` (N, in_channels, H, W), resize it by ``input_scale`` and pad it to the stride;
        return the padded input and the (height, width) of its unpadded part."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < MIN_INPUT_SIZE:
            raise ValueError(f"input {height}x{width} is too small: segdemo models need at least "
                             f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} pixels")
        if self.input_scale != 1.0:
            x = F.interpolate(x, size=scaled_size(height, width, self.input_scale), mode="bilinear",
                              align_corners=False, antialias=not self.training)
        run_h, run_w = x.shape[-2:]
        return pad_to_stride(x, self.stride), (run_h, run_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x, (run_h, run_w) = self.padded_input(x)
        logits = self.forward_padded(x)[..., :run_h, :run_w]
        if (run_h, run_w) != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return logits

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of a pretrained (ImageNet) encoder, trained at a lower LR; none by default."""
        return []

    def load_imagenet(self) -> dict:
        """Initialise the encoder from ImageNet weights; returns their provenance for the recipe."""
        raise ValueError(f"{type(self).__name__} has no ImageNet-pretrained encoder")

    def classifier(self) -> nn.Module:
        """The layer(s) that map features to class scores; replaced when the label set changes.

        Default: ``self.head``, a 1x1 convolution; models with another head override both methods."""
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Re-initialise the class-score layers for ``num_classes`` classes, keeping everything else."""
        self.num_classes = num_classes
        self.head = nn.Conv2d(self.head.in_channels, num_classes, 1)


class PretrainedEncoderMixin:
    """For models whose ``self.encoder`` is the EfficientNet-Lite0 trunk (``models/encoders/efficientnet.py``)."""

    encoder: nn.Module

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def load_imagenet(self) -> dict:
        from segdemo.models.encoders.efficientnet import load_imagenet_encoder

        return load_imagenet_encoder(self.encoder)


class SharedDecoder(nn.Module):
    """A family's decoder over the shared encoder: ``forward`` maps the encoder's five feature maps to logits at any
    stride; ``head`` is its classifier."""

    head: nn.Module

    def new_head(self, num_classes: int) -> nn.Module:
        """A fresh classifier for ``num_classes`` classes; default: a 1x1 convolution like ``head``."""
        return nn.Conv2d(self.head.in_channels, num_classes, 1)


class SharedEncoderModel(PretrainedEncoderMixin, SegmentationModel):
    """A family's decoder over the zoo's shared encoder (EfficientNet-Lite0 with its 1280-channel head conv).

    ``decoder``: built from the encoder's ``out_channels`` (``decoder(out_channels, num_classes)``), a
    :class:`SharedDecoder` mapping its five feature maps (strides 2, 4, 8, 16, 32) to logits at any stride, with its
    classifier as ``decoder.head``. The fast learner's trunk is the encoder and its top the
    whole decoder, so every family's cache holds the same features.
    """

    shared_trunk = "lite0"

    def __init__(self, *, decoder: Callable[[tuple[int, ...], int], SharedDecoder], num_classes: int, in_channels: int,
                 input_scale: float) -> None:
        from segdemo.models.encoders.efficientnet import EfficientNetLite0Encoder

        super().__init__(num_classes=num_classes, in_channels=in_channels,
                         stride=EfficientNetLite0Encoder.output_stride, input_scale=input_scale)
        self.encoder = EfficientNetLite0Encoder(in_channels=in_channels, with_head=True)
        self.decoder = decoder(self.encoder.out_channels, num_classes)

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(x))

    def top(self, features: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        logits = self.decoder(features)
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def top_modules(self) -> list[nn.Module]:
        return [self.decoder]

    def classifier(self) -> nn.Module:
        return self.decoder.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.decoder.head = self.decoder.new_head(num_classes)
