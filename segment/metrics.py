"""Segmentation metrics: confusion matrices, mIoU over classes present, pixel accuracy (ignore label 255)."""

from __future__ import annotations

import numpy as np

IGNORE = 255


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction; 255 is ignored."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {truth.shape}")
    keep = truth != IGNORE
    t, p = truth[keep].astype(np.int64), pred[keep].astype(np.int64)
    if t.size and (t.max() >= num_classes or p.max() >= num_classes or p.min() < 0):
        raise ValueError(f"labels outside 0..{num_classes - 1} (255 = ignore)")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for classes absent from both ground truth and prediction."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU over the classes present in ground truth or prediction."""
    return float(np.nanmean(iou_per_class(confusion)))


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Fraction of labelled pixels predicted correctly."""
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")
