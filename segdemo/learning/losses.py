"""The losses every learner trains with: cross-entropy on the corrections, and one distillation term that keeps a
teacher's predictions where no correction speaks (the whole-network loop, the top's steps, the editor's fill-in)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor,
                           pixel_weights: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean cross-entropy over non-void pixels, each weighted by class weight x pixel weight."""
    losses = F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    denominator = (class_weights[target.clamp(max=len(class_weights) - 1)] * pixel_weights * valid).sum()
    return (losses * pixel_weights).sum() / denominator.clamp(min=1e-6)


def pixel_kl(student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """KL(teacher ‖ student) at every pixel: log-probabilities over classes along ``dim`` in, that dimension summed
    out; the caller weights and averages it."""
    return F.kl_div(student_log_probs, teacher_log_probs, log_target=True, reduction="none").sum(dim)
