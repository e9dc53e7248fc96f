"""Inference-only rewrites that keep a model's outputs: BatchNorm folded into the convolution before it."""

from __future__ import annotations

import copy

import torch
from torch import nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` with ``bn`` in eval mode (its running statistics)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    folded = copy.deepcopy(conv)
    folded.weight = nn.Parameter(conv.weight.detach() * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
    return folded


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode where each BatchNorm2d registered right after a Conv2d in the same
    parent (the order every segdemo block applies them in) is folded into that conv and replaced by Identity.

    Only for inference: the copy no longer has BatchNorm statistics to train. ``tests/test_models.py`` checks
    that every registered model gives the same logits folded and unfolded.
    """
    folded = copy.deepcopy(model).eval()
    for parent in folded.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.affine and bn.track_running_stats
                    and conv.out_channels == bn.num_features):
                setattr(parent, conv_name, fold_conv_bn(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return folded
