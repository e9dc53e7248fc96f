"""Confusion-matrix metrics: pixel accuracy, mean class accuracy, per-class IoU and mIoU, void ignored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def pixel_error(prediction: np.ndarray, target: np.ndarray, ignore_index: int = 255) -> float:
    """Share in [0, 1] of ``target``'s non-void pixels that ``prediction`` gets wrong (what a person repaints);
    0 when every pixel is void. Integer arrays of equal shape."""
    prediction, target = np.asarray(prediction), np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target sizes differ: {prediction.shape} vs {target.shape}")
    valid = target != ignore_index
    total = int(valid.sum())
    return float((prediction[valid] != target[valid]).sum() / total) if total else 0.0


def class_iou(matrix: np.ndarray) -> list[float | None]:
    """Per-class IoU of a (K, K) confusion matrix (rows truth, columns prediction): TP / (truth + predicted − TP),
    in [0, 1]; None for a class in neither. Every metric in segdemo that reads IoU from a matrix reads it here."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(1) + matrix.sum(0) - true_positive
    return [float(tp / u) if u > 0 else None for tp, u in zip(true_positive, union)]


def image_miou(prediction: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255) -> float:
    """mIoU of one image in [0, 1]: IoU averaged over the classes in its non-void ground truth or prediction
    (1.0 when every pixel is void). Integer arrays of equal shape, values in 0..num_classes-1 or void."""
    prediction, target = np.asarray(prediction).ravel(), np.asarray(target).ravel()
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target sizes differ: {prediction.shape} vs {target.shape}")
    keep = target != ignore_index
    if not keep.any():
        return 1.0
    matrix = np.bincount(target[keep].astype(np.int64) * num_classes + prediction[keep].astype(np.int64),
                         minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    return float(np.mean([iou for iou in class_iou(matrix) if iou is not None]))


@dataclass
class ConfusionMatrix:
    """Accumulates a (K, K) matrix: rows = ground truth, columns = prediction; ``ignore_index`` pixels skipped."""

    num_classes: int
    ignore_index: int = 255

    def __post_init__(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, prediction, target) -> None:
        """Add a batch: integer arrays/tensors of equal shape; target values in 0..K-1 or ``ignore_index``."""
        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy()
        if isinstance(target, torch.Tensor):
            target = target.detach().cpu().numpy()
        prediction, target = np.asarray(prediction).ravel(), np.asarray(target).ravel()
        if prediction.shape != target.shape:
            raise ValueError(f"prediction and target sizes differ: {prediction.shape} vs {target.shape}")
        keep = (target != self.ignore_index) & (target < self.num_classes)
        index = target[keep].astype(np.int64) * self.num_classes + prediction[keep].astype(np.int64)
        self.matrix += np.bincount(index, minlength=self.num_classes ** 2).reshape(self.num_classes, self.num_classes)

    def merge(self, other: "ConfusionMatrix") -> None:
        self.matrix += other.matrix

    def compute(self, names: tuple[str, ...] | list[str] | None = None) -> dict:
        """Metrics as fractions in [0, 1].

        ``miou`` averages IoU over classes present in the ground truth or the predictions; a class with
        neither has IoU None and is left out. ``mean_acc`` averages recall over classes present in the
        ground truth.
        """
        matrix = self.matrix.astype(np.float64)
        true_positive = np.diag(matrix)
        gt_count = matrix.sum(1)
        total = matrix.sum()
        iou = class_iou(matrix)
        recall = [float(tp / g) for tp, g in zip(true_positive, gt_count) if g > 0]
        names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        present = [v for v in iou if v is not None]
        return {
            "pixel_acc": float(true_positive.sum() / total) if total else 0.0,
            "mean_acc": float(np.mean(recall)) if recall else 0.0,
            "miou": float(np.mean(present)) if present else 0.0,
            "per_class_iou": dict(zip(names, iou)),
            "pixels": int(total),
        }


def matrix_metrics(matrix: np.ndarray, names: tuple[str, ...] | list[str], ignore_index: int = 255) -> dict:
    """A (K, K) confusion matrix → :meth:`ConfusionMatrix.compute`'s metrics, plus ``matrix`` as nested lists."""
    confusion = ConfusionMatrix(len(names), ignore_index)
    confusion.matrix = np.asarray(matrix, dtype=np.int64)
    return {**confusion.compute(names), "matrix": confusion.matrix.tolist()}
