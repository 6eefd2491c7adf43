"""How unsure a model is about an image, and where: what to label next.

The model predicts each image under the 8 flips and 90-degree rotations of test-time augmentation
(``Predictor.moments``). Two measures come from those 8 views:

* ``disagreement``: how much the views' outputs differ, the variance over the views summed over the output
  channels (0 where every view says the same);
* ``entropy``: the predictive entropy of the views' mean, in [0, 1] (1: the classes are equally likely).

An image's score is the mean over its pixels (classification: over its classes); an image larger than
``RANK_TILE`` in either side is also scored per tile, so that a large image's worst part can be labelled
alone. The ``regions`` are boxes around the most uncertain places, in the image's pixels, for a Shapes layer
that the user corrects as a reviewed region.

Which measure ranks by default was measured (benchmarks/label_efficiency.py, docs/benchmarks.md): on test images of
a kind never trained on, an image's entropy rose with its error (1 - object F1; Spearman +0.05 and +0.40, two
seeds) and its disagreement did not (-0.16 and -0.36: where a model misses dim nuclei, all 8 views agree on
background). Whether ranking beats choosing at random at all was measured there too: not reliably.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .images import finite_frames, is_stack

MEASURES = ("disagreement", "entropy")
DEFAULT_MEASURE = "entropy"
RANK_TILE = 512  # image pixels: larger images are ranked by tiles of about this size too
MAX_REGIONS = 5
REGION_QUANTILE = 0.98  # a region is where the smoothed uncertainty is in the image's top 2% ...
REGION_FLOOR = 0.02  # ... and above this, so that an image the model is sure of everywhere has no regions


@dataclass
class Unsure:
    """How unsure the model is about one image, frame or tile."""

    name: str
    disagreement: float
    entropy: float
    frame: int | None = None  # the frame of a stack
    tile: tuple[int, int, int, int] | None = None  # (y0, x0, y1, x1) in the image's pixels; None: all of it
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)  # most uncertain first

    def score(self, by: str = DEFAULT_MEASURE) -> float:
        return float(getattr(self, check_measure(by)))

    @property
    def where(self) -> str:
        """E.g. "frame 2, rows 0-512, columns 512-1024", or "" for a whole 2D image."""
        parts = [] if self.frame is None else [f"frame {self.frame}"]
        if self.tile is not None:
            y0, x0, y1, x1 = self.tile
            parts.append(f"rows {y0}-{y1}, columns {x0}-{x1}")
        return ", ".join(parts)


def check_measure(by: str) -> str:
    if by not in MEASURES:
        raise DataError(f"Uncertainty is measured as {' or '.join(MEASURES)}, not '{by}'.")
    return by


def _entropy(mean: np.ndarray, binary: bool) -> np.ndarray:
    """(C, ...) mean of the views -> entropy in [0, 1] per pixel (or per image for class vectors)."""
    p = np.clip(mean, 1e-7, 1.0)
    if binary:  # independent maps (detection's heat maps): each a probability of an object there
        q = np.clip(1.0 - mean, 1e-7, 1.0)
        return (-(p * np.log2(p) + q * np.log2(q))).mean(0)
    return -(p * np.log2(p)).sum(0) / np.log2(max(mean.shape[0], 2))


def _moments(predictor, fn):
    """fn() with the predictor giving the views' mean and second moment (8 views, whatever its tta)."""
    tta, moments = predictor.tta, predictor.moments
    predictor.tta = predictor.moments = True
    try:
        return fn()
    finally:
        predictor.tta, predictor.moments = tta, moments


def maps(predictor, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W[, C]) frame -> (disagreement, entropy) maps of (H, W), at the frame's size."""
    frame = frame[..., None] if frame.ndim == 2 else frame
    out = _moments(predictor, lambda: predictor.probabilities(frame))
    mean, second = np.split(out, 2, axis=0)
    disagreement = np.clip(second - mean * mean, 0, None).sum(0)
    s = predictor.settings
    binary = s.model.task == "detection"
    if binary:  # heat maps in [0, object_intensity]: as the chance of an object there
        scale = float(s.data.object_intensity) or 1.0
        mean, disagreement = mean / scale, disagreement / (scale * scale)
    return disagreement, _entropy(mean, binary)


def _classes(predictor, image, rgb, name) -> list[Unsure]:
    from .applications.classification import prepare_whole

    s = predictor.settings
    frames = finite_frames(image, s.model.channels, rgb, name)
    predictor.model.eval()
    out = []
    for i in range(0, len(frames), predictor.batch_size):
        batch = np.ascontiguousarray(np.stack([prepare_whole(f, s).transpose(2, 0, 1)
                                               for f in frames[i:i + predictor.batch_size]]))
        out.extend(_moments(predictor, lambda b=batch: predictor.forward(b)))
    stack = is_stack(image, s.model.channels, rgb)
    result = []
    for i, row in enumerate(out):
        mean, second = np.split(row, 2)
        result.append(Unsure(name, float(np.clip(second - mean * mean, 0, None).sum()),
                             float(_entropy(mean[:, None], False)[0]), frame=i if stack else None))
    return result


def measure(predictor, image: np.ndarray, name: str = "image", rgb: bool | None = None,
            tile: int | None = None, by: str = DEFAULT_MEASURE) -> list[Unsure]:
    """How unsure the model is about `image` (2D, colour, or a stack): one ``Unsure`` per frame, each followed
    by one per tile where the frame is larger than `tile` pixels (about `tile` square, covering it). The regions
    are those of the measure `by`."""
    s = predictor.settings
    tile = tile or RANK_TILE
    if s.model.task == "classification":
        return _classes(predictor, image, rgb, name)
    frames = finite_frames(image, s.model.channels, rgb, name)
    stack = is_stack(image, s.model.channels, rgb)
    result = []
    for i, frame in enumerate(frames):
        disagreement, entropy = maps(predictor, frame)
        frame_no = i if stack else None
        boxes = regions(entropy if check_measure(by) == "entropy" else disagreement)
        result.append(Unsure(name, float(disagreement.mean()), float(entropy.mean()), frame_no, None, boxes))
        for box in tiles(disagreement.shape, tile):
            y0, x0, y1, x1 = box
            inside = [r for r in boxes if r[0] < y1 and r[2] > y0 and r[1] < x1 and r[3] > x0]
            result.append(Unsure(name, float(disagreement[y0:y1, x0:x1].mean()),
                                 float(entropy[y0:y1, x0:x1].mean()), frame_no, box, inside))
    return result


def tiles(shape: tuple[int, int], tile: int | None = None) -> list[tuple[int, int, int, int]]:
    """Tiles of about `tile` pixels covering an image of `shape`, as (y0, x0, y1, x1); none where it is no
    larger than one and a half tiles (then the image is its own tile)."""
    h, w = shape
    tile = tile or RANK_TILE
    if max(h, w) <= 1.5 * tile:
        return []
    ny, nx = max(1, round(h / tile)), max(1, round(w / tile))
    ys = np.linspace(0, h, ny + 1).round().astype(int)
    xs = np.linspace(0, w, nx + 1).round().astype(int)
    return [(int(ys[a]), int(xs[b]), int(ys[a + 1]), int(xs[b + 1])) for a in range(ny) for b in range(nx)]


def regions(uncertainty: np.ndarray, most: int = MAX_REGIONS, margin: int = 8) -> list[tuple[int, int, int, int]]:
    """Boxes (y0, x0, y1, x1) around the most uncertain places of a map, most uncertain (in all) first."""
    from scipy import ndimage  # lazy: seconds to import; the dock imports this module

    h, w = uncertainty.shape
    smooth = ndimage.gaussian_filter(uncertainty.astype(np.float32), sigma=max(2.0, min(h, w) / 128))
    level = max(float(np.quantile(smooth, REGION_QUANTILE)), REGION_FLOOR)
    blobs, n = ndimage.label(smooth > level)
    if n == 0:
        return []
    weight = ndimage.sum(smooth, blobs, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(blobs)
    out = []
    for k in np.argsort(-weight)[:most]:
        ys, xs = boxes[k]
        out.append((max(ys.start - margin, 0), max(xs.start - margin, 0), min(ys.stop + margin, h),
                    min(xs.stop + margin, w)))
    return out


def ranked(items: list[Unsure], by: str = DEFAULT_MEASURE) -> list[Unsure]:
    """Most uncertain first (ties: in the order given)."""
    check_measure(by)
    return sorted(items, key=lambda u: -u.score(by))


def random_order(items: list[Unsure], seed: int = 0) -> list[Unsure]:
    """The items in a random order: the honest alternative to ranking (see docs/benchmarks.md)."""
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order]
