"""Label images <-> training targets, per label mode.

* ``classes``: the label value is the class id (0 = background).
* ``instances``: each object has its own id; the network learns background /
  interior / boundary so that touching objects can be told apart, and
  prediction decodes interiors back into one id per object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Target value of pixels that carry no supervision (padding, affine borders).
IGNORE = 255

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
INSTANCE_CLASS_NAMES = ["background", "interior", "boundary"]


def encode(labels: np.ndarray, label_mode: str) -> np.ndarray:
    """Integer label image -> uint8 class-id target."""
    return encode_instances(labels) if label_mode == "instances" else labels.astype(np.uint8)


def encode_instances(instances: np.ndarray) -> np.ndarray:
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    from skimage.segmentation import find_boundaries

    target = np.zeros(instances.shape, np.uint8)
    fg = instances > 0
    target[fg] = INTERIOR
    # 'inner' keeps the boundary on the objects, so two touching objects are
    # split by a line of boundary pixels that belongs to both.
    target[find_boundaries(instances, mode="inner") & fg] = BOUNDARY
    return target


def decode_instances(probs: np.ndarray, min_size: int = 0) -> np.ndarray:
    """(3, H, W) probabilities -> instance label image (uint16, or uint32 if many)."""
    # lazy: skimage takes seconds to import, and the dock and napari-mia --help import this module
    from skimage.measure import label
    from skimage.segmentation import relabel_sequential, watershed

    fg = probs[BACKGROUND] < 0.5
    seeds = label(fg & (probs[INTERIOR] >= probs[BOUNDARY]) & (probs[INTERIOR] > probs[BACKGROUND]))
    instances = watershed(-probs[INTERIOR], seeds, mask=fg)
    # Foreground blobs without an interior seed are still objects.
    orphans = label(fg & (instances == 0))
    if orphans.max():
        instances = np.where(orphans > 0, orphans + instances.max(), instances)
    if min_size > 0:
        instances = remove_small(instances, min_size)
    instances, _, _ = relabel_sequential(instances)
    return instances.astype(np.uint16 if instances.max() < 2**16 else np.uint32)


def remove_small(instances: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(instances.ravel())
    small = sizes < min_size
    small[0] = False
    out = instances.copy()
    out[small[instances]] = 0
    return out


def contour_weights(instances: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """U-Net border weights (Ronneberger et al. 2015), as MIA's *separate contours*.

    ``1 + w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` on background pixels, d1 and d2
    the distances to the nearest and second-nearest object. Each object's
    distance map is computed only within 3 sigma of it, beyond which the term
    is below exp(-18) and does not matter.
    """
    # lazy: slow to import, and the dock and napari-mia --help import this module
    from scipy.ndimage import distance_transform_edt, find_objects

    h, w = instances.shape
    d1 = np.full((h, w), np.inf, np.float32)
    d2 = np.full((h, w), np.inf, np.float32)
    margin = int(np.ceil(3 * sigma)) + 1
    for idx, sl in enumerate(find_objects(instances.astype(np.int64)), start=1):
        if sl is None:
            continue
        y0, y1 = max(sl[0].start - margin, 0), min(sl[0].stop + margin, h)
        x0, x1 = max(sl[1].start - margin, 0), min(sl[1].stop + margin, w)
        dist = distance_transform_edt(instances[y0:y1, x0:x1] != idx).astype(np.float32)
        a, b = d1[y0:y1, x0:x1], d2[y0:y1, x0:x1]
        b[...] = np.where(dist < a, a, np.minimum(b, dist))
        a[...] = np.minimum(a, dist)
    with np.errstate(invalid="ignore", over="ignore"):
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    border = np.nan_to_num(border, nan=0.0, posinf=0.0)
    border[instances > 0] = 0
    return (1.0 + border).astype(np.float32)


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill each label's holes (background enclosed by it) with its value."""
    # lazy: slow to import, and the dock and napari-mia --help import this module
    from scipy.ndimage import binary_fill_holes, find_objects

    out = labels.copy()
    # Each value within its own bounding box: thousands of nuclei on a slide stay fast.
    for v, box in enumerate(find_objects(labels), start=1):
        if box is None:
            continue
        region, target = labels[box], out[box]
        target[binary_fill_holes(region == v) & (region == 0)] = v
    return out


@dataclass
class PostProcess:
    min_size: int = 0  # objects (or class regions) smaller than this are removed
    fill_holes: bool = False
    # Instance mode: cut touching objects apart along the predicted boundaries
    # (off: every connected blob of foreground is one object).
    split_touching: bool = True
