"""Scores of predictions against labels, per image, as users judge results.

Pixels pooled over a validation split let big, easy images dominate; every
score here is computed per image and averaged over images (``mean_scores``).
Segmentation objects are matched one-to-one above an IoU threshold; for a
threshold of 0.5 or more a match is unique by construction (two objects
cannot both overlap one object by more than half of their union).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

AP_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def _objects(labels: np.ndarray, instances: bool) -> np.ndarray:
    """Instance ids: as given, or the connected regions of each class."""
    labels = np.asarray(labels)
    if instances:
        return labels.astype(np.int64, copy=False)
    from skimage.measure import label  # lazy: seconds to import, and the dock and napari-mia --help import this module

    out = np.zeros(labels.shape, np.int64)
    for c in np.unique(labels[labels > 0]):
        regions = label(labels == c, connectivity=1)
        out[regions > 0] = regions[regions > 0] + out.max()
    return out


def object_ious(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of every (predicted object, true object) pair, shape (n_pred, n_true).

    Ids need not be consecutive; rows and columns follow the sorted ids > 0.
    """
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    p_inv, t_inv = p_inv.reshape(-1), t_inv.reshape(-1)
    p_off, t_off = int(p_ids[0] == 0), int(t_ids[0] == 0)  # column 0 is the background when present
    n_p, n_t = len(p_ids), len(t_ids)
    area_p = np.bincount(p_inv, minlength=n_p)[p_off:]
    area_t = np.bincount(t_inv, minlength=n_t)[t_off:]
    both = (pred.reshape(-1) > 0) & (truth.reshape(-1) > 0)
    pairs, counts = np.unique(p_inv[both].astype(np.int64) * n_t + t_inv[both], return_counts=True)
    inter = np.zeros((n_p - p_off, n_t - t_off), np.float64)
    inter[pairs // n_t - p_off, pairs % n_t - t_off] = counts
    return inter / np.maximum(area_p[:, None] + area_t[None, :] - inter, 1)


def _matches(iou: np.ndarray, threshold: float) -> int:
    return int((iou > threshold).sum()) if iou.size else 0


def segmentation_scores(pred: np.ndarray, truth: np.ndarray, instances: bool = True) -> dict:
    """Foreground IoU, object precision / recall / F1 at IoU 0.5 and AP over IoU 0.5-0.95.

    AP follows the Data Science Bowl 2018 (and cellpose, StarDist) definition:
    TP / (TP + FP + FN) at each IoU threshold, averaged over the thresholds.
    An image with no objects in either scores 1 everywhere (nothing to find,
    nothing found).
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and labels {truth.shape} differ in shape")
    fg_p, fg_t = pred > 0, truth > 0
    union = int((fg_p | fg_t).sum())
    fg_iou = float((fg_p & fg_t).sum() / union) if union else 1.0
    p, t = _objects(pred, instances), _objects(truth, instances)
    iou = object_ious(p, t)
    n_p, n_t = iou.shape
    tp = _matches(iou, 0.5)
    aps = [(_matches(iou, th) / (n_p + n_t - _matches(iou, th))) if n_p + n_t else 1.0 for th in AP_THRESHOLDS]
    return {
        "fg_iou": fg_iou,
        "object_f1": 2 * tp / (n_p + n_t) if n_p + n_t else 1.0,
        "precision": tp / n_p if n_p else float(n_t == 0),
        "recall": tp / n_t if n_t else 1.0,
        "ap": float(np.mean(aps)),
        "true_objects": n_t,
        "predicted_objects": n_p,
    }


def match_points(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives): one-to-one matches closer than `tolerance`."""
    # Lazy: seconds to import, and the dock imports this module as it opens.
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    if len(pred) == 0 or len(truth) == 0:
        return 0, len(pred), len(truth)
    d = cdist(np.asarray(pred)[:, :2], np.asarray(truth)[:, :2])
    rows, cols = linear_sum_assignment(np.where(d <= tolerance, d, 1e6))
    tp = int((d[rows, cols] <= tolerance).sum())
    return tp, len(pred) - tp, len(truth) - tp


def detection_scores(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> dict:
    """Point F1 (one-to-one matches closer than `tolerance` pixels) and the count error."""
    tp, fp, fn = match_points(np.asarray(pred), np.asarray(truth), tolerance)
    n_p, n_t = tp + fp, tp + fn
    return {
        "point_f1": 2 * tp / (n_p + n_t) if n_p + n_t else 1.0,
        "precision": tp / n_p if n_p else float(n_t == 0),
        "recall": tp / n_t if n_t else 1.0,
        "count_error": n_p - n_t,
        "abs_count_error": abs(n_p - n_t),
        "true_objects": n_t,
        "predicted_objects": n_p,
    }


def classification_scores(pred: Sequence[int], truth: Sequence[int], num_classes: int) -> dict:
    """Accuracy and the confusion matrix (rows: true class, columns: predicted class)."""
    pred, truth = np.asarray(pred, np.int64), np.asarray(truth, np.int64)
    cm = np.bincount(truth * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes,
                                                                                               num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diag(cm) / cm.sum(1)
    return {"accuracy": float(np.trace(cm) / max(cm.sum(), 1)), "confusion": cm,
            "class_recall": [None if np.isnan(r) else float(r) for r in recall]}


def mean_scores(rows: Sequence[Mapping]) -> dict:
    """The mean over images of every numeric score (images weigh the same, whatever their size)."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)] \
        if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}
