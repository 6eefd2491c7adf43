"""The maths of detection (``applications.detection``), as MIA does it: the network regresses a map with a
gaussian bump on every object (width from *object size*, height *object
intensity*), and prediction finds the map's peaks.

Points travel through patches and augmentation as one-pixel dots in a label
image (value = the point's class, 1 for plain points), so cropping, flips and
padding need nothing of their own; the heatmap is made from the dots on the
fly, per batch.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..evaluate import match_points
from ..images import list_images
from ..targets import IGNORE


def sigma_of(object_size: float) -> float:
    """The gaussian's standard deviation for objects `object_size` pixels across."""
    return max(object_size / 4.0, 0.5)


def points_to_dots(points: np.ndarray, shape: tuple[int, int], name: str = "points") -> np.ndarray:
    """(N, 2) y, x or (N, 3) y, x, class points -> (H, W) uint8 dot image (0 = no point)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, np.asarray(points).shape[-1] if len(points) else 2)
    if pts.shape[1] not in (2, 3):
        raise DataError(f"'{name}': points need 2 columns (y, x) or 3 (y, x, class), got {pts.shape[1]}.")
    if not np.isfinite(pts).all():
        raise DataError(f"'{name}': some points have no coordinates (NaN).")
    yx = np.round(pts[:, :2]).astype(np.int64)
    inside = (yx[:, 0] >= 0) & (yx[:, 0] < shape[0]) & (yx[:, 1] >= 0) & (yx[:, 1] < shape[1])
    if not inside.all():
        bad = pts[~inside][0]
        raise DataError(f"'{name}': the point at y={bad[0]:g}, x={bad[1]:g} lies outside the image "
                        f"({shape[0]} x {shape[1]}). Put the points on the image they belong to.")
    cls = np.ones(len(pts), np.int64) if pts.shape[1] == 2 else pts[:, 2].astype(np.int64)
    if len(cls) and (cls.min() < 1 or cls.max() >= IGNORE):
        raise DataError(f"'{name}': point classes must be 1 to {IGNORE - 1}.")
    dots = np.zeros(shape, np.uint8)
    dots[yx[:, 0], yx[:, 1]] = cls
    return dots


def dots_to_points(dots: np.ndarray) -> np.ndarray:
    """(H, W) dot image -> (N, 3) float y, x, class."""
    ys, xs = np.nonzero((dots > 0) & (dots != IGNORE))
    return np.stack([ys, xs, dots[ys, xs]], 1).astype(np.float64)


def rescale_dots(dots: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Move the dots to an image of another size (nearest-neighbour resizing would drop them)."""
    if dots.shape == tuple(shape):
        return dots
    pts = dots_to_points(dots)
    fy, fx = shape[0] / dots.shape[0], shape[1] / dots.shape[1]
    pts[:, 0] = np.clip((pts[:, 0] + 0.5) * fy - 0.5, 0, shape[0] - 1)
    pts[:, 1] = np.clip((pts[:, 1] + 0.5) * fx - 0.5, 0, shape[1] - 1)
    return points_to_dots(pts, shape)


def _kernel(sigma: float, device):
    import torch  # lazy: torch (the dock imports this before training)

    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    return torch.exp(-x**2 / (2 * sigma**2))  # peak 1: a lone object's bump is `intensity` high


def target_heatmap(dots, n_out: int, sigma: float, intensity: float):
    """(N, H, W) int dots (IGNORE where unsupervised) -> ((N, C, H, W) heatmap, (N, H, W) valid mask)."""
    import torch  # lazy: torch (the dock imports this before training)
    import torch.nn.functional as F  # lazy: torch (the dock imports this before training)

    valid = dots != IGNORE
    onehot = torch.stack([(dots == c + 1) & valid for c in range(n_out)], 1).float()
    k = _kernel(sigma, dots.device)
    r = (len(k) - 1) // 2
    # Separable gaussian: rows then columns, one channel at a time (groups).
    heat = F.conv2d(onehot, k.view(1, 1, 1, -1).repeat(n_out, 1, 1, 1), padding=(0, r), groups=n_out)
    heat = F.conv2d(heat, k.view(1, 1, -1, 1).repeat(n_out, 1, 1, 1), padding=(r, 0), groups=n_out)
    return heat * intensity, valid


def blob_classes(heat, intensity: float):
    """(N, C, H, W) heatmap -> (N, H, W) class ids where a bump stands above half its height, else 0.

    Scored like segmentation (IoU, F1, ... of the bumps) while training.
    """
    import torch  # lazy: torch (the dock imports this before training)

    top, idx = heat.max(1)
    return torch.where(top > intensity / 2, idx + 1, torch.zeros_like(idx))


def find_points(heat: np.ndarray, object_size: float, intensity: float, threshold: float = 0.5) -> np.ndarray:
    """(C, H, W) predicted heatmap -> (N, 4) y, x, class, score of its peaks.

    A peak must stand `threshold` x `intensity` high and be at least half an
    object size from a higher one.
    """
    from skimage.feature import peak_local_max  # lazy: seconds to import; the dock imports this module

    out = []
    for c, channel in enumerate(heat):
        peaks = peak_local_max(channel, min_distance=max(1, int(round(object_size / 2))),
                               threshold_abs=threshold * intensity, exclude_border=False)
        for y, x in peaks:
            out.append((y, x, c + 1, channel[y, x] / intensity))
    return np.array(out, np.float64).reshape(-1, 4)


def read_points_csv(csv_path, images_dir) -> list:
    """A points CSV (name,y,x[,class]) and its images folder -> [(image path, (N, 3) y, x, class)]."""
    csv_path = Path(csv_path)
    try:
        rows = list(csv.DictReader(csv_path.open(newline="")))
    except OSError as e:
        raise DataError(f"Cannot read the points file {csv_path}: {e.strerror}.") from e
    if not rows or not {"name", "y", "x"} <= set(rows[0]):
        raise DataError(f"{csv_path.name} needs the columns name, y, x (and optionally class), one row per object.")
    by_name: dict[str, list] = {}
    try:
        for r in rows:
            by_name.setdefault(r["name"], []).append((float(r["y"]), float(r["x"]), float(r.get("class") or 1)))
    except ValueError as e:
        raise DataError(f"{csv_path.name}: a coordinate or class is not a number ({e}).") from e
    files = {f.name: f for f in list_images(images_dir)}
    missing = sorted(set(by_name) - set(files))
    if missing:
        raise DataError(f"{csv_path.name} has points for {len(missing)} image(s) not in {images_dir}, "
                        f"e.g. '{missing[0]}'.")
    return [(files[n], np.array(p)) for n, p in sorted(by_name.items())]


def _tally(found_and_truth, tolerance: float) -> dict:
    """Point matches and count errors over [(found points, true points)] of several images."""
    tp = fp = fn = 0
    errors, counts = [], []
    for found, truth in found_and_truth:
        a, b, c = match_points(found, truth, tolerance)
        tp, fp, fn = tp + a, fp + b, fn + c
        errors.append(abs(len(found) - len(truth)))
        counts.append(len(truth))
    mae, mean = float(np.mean(errors)), float(np.mean(counts))
    return {"tp": tp, "fp": fp, "fn": fn, "f1": 2 * tp / max(2 * tp + fp + fn, 1), "count_mae": mae,
            "mean_count": mean, "count_mae_percent": 100 * mae / max(mean, 1e-9)}


def score_detection(predictor, pairs, tolerance: float = 6.0) -> dict:
    """Counts and point matches of `predictor` on (image, (N, 2+) true points) pairs."""
    return _tally(((predictor.detect(image), truth) for image, truth in pairs), tolerance)


def calibrate_threshold(predictor, pairs, tolerance: float) -> float:
    """The peak threshold (fraction of object intensity) with the best point F1 on (image, points) pairs.

    A network trained with a squared error underestimates the bumps' height
    for a long time, so a fixed half-height threshold misses objects; the
    training images tell how high the model's bumps really are.
    """
    d = predictor.settings.data
    heats = [(predictor.probabilities(img[..., None] if img.ndim == 2 else img), pts) for img, pts in pairs]
    best = (-1.0, 0.0, d.detection_threshold)
    for thr in np.round(np.arange(0.2, 0.71, 0.05), 2):
        r = _tally(((find_points(heat, d.object_size, d.object_intensity, float(thr)), truth)
                    for heat, truth in heats), tolerance)
        if (r["f1"], -r["count_mae"]) > best[:2]:  # ties: the better count
            best = (r["f1"], -r["count_mae"], float(thr))
    return best[2]
