"""Confusion-matrix metrics, exact over a whole epoch (not averaged per batch)."""

from __future__ import annotations

import numpy as np

from .targets import IGNORE


def confusion(pred, target, num_classes: int) -> np.ndarray:
    """Confusion matrix (rows: truth, columns: prediction) of torch tensors."""
    import torch  # lazy: seconds to import, and the dock and napari-mia --help import this module

    valid = target != IGNORE
    idx = target[valid] * num_classes + pred[valid]
    cm = torch.bincount(idx.flatten(), minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def foreground_confusion(cm: np.ndarray) -> np.ndarray:
    """Merge every non-background class: instance mode scores object pixels."""
    out = np.zeros((2, 2), np.int64)
    out[0, 0], out[0, 1] = cm[0, 0], cm[0, 1:].sum()
    out[1, 0], out[1, 1] = cm[1:, 0].sum(), cm[1:, 1:].sum()
    return out


def score(cm: np.ndarray, metric: str, skip_background: bool = True) -> float:
    """Mean over the foreground classes present (accuracy: over all pixels).

    ``skip_background=False`` averages over every class present: classification
    has no background, class 0 is a category like the others.
    """
    if metric == "accuracy":
        return float(np.trace(cm) / max(cm.sum(), 1))
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = {
            "iou": tp / (tp + fp + fn),
            "dice": 2 * tp / (2 * tp + fp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
        }[metric]
    present = (tp + fp + fn) > 0
    if skip_background:
        per_class, present = per_class[1:], present[1:]
    vals = per_class[present & np.isfinite(per_class)]
    return float(vals.mean()) if vals.size else 0.0
