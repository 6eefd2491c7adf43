"""Object scale: the typical object diameter of label images and, without labels, of images.

No Qt, numpy/scipy/scikit-image only. Diameters are in pixels of the array they were
measured on:

* the *model diameter* is measured on the training labels in the network's pixels (after
  any rescaling applied at training time) and is stored in the model file;
* the *image diameter* ``D`` is the objects' diameter in the user's image pixels (given as
  ``--diameter D``, or estimated by :func:`estimate_diameter`).

Prediction resizes the user's image by :func:`rescale_factor` ``= model_diameter / D``
before the network and resizes the result back, so that objects reach the network at the
size it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage as ndi


# Object sizes within this factor of each other are taken as the same: the network sees objects zoomed by
# more than this in training (AugmentSettings.zoom_range), and resampling costs detail for a size's noise.
SAME_SCALE = 1.25
# Training images are brought to the model's object size by at most this factor up or down: beyond it the
# labels' size is surely not the objects' (a few huge blobs), and memory would grow with the square.
MAX_TRAINING_SCALE = 4.0


# --------------------------------------------------------------------------- labels


def _label_frames(labels) -> Iterable[np.ndarray]:
    if isinstance(labels, np.ndarray):
        if labels.ndim == 2:
            yield labels
        elif labels.ndim >= 3:
            yield from labels.reshape((-1,) + labels.shape[-2:])
        return
    for item in labels:  # a list / tuple of label images (or stacks)
        yield from _label_frames(np.asarray(item))


def _object_areas(frame: np.ndarray, instances: bool) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype.kind == "b":
        frame = frame.astype(np.uint8)
    if frame.dtype.kind == "f":
        frame = frame.astype(np.int64)
    if not frame.size or not frame.any():
        return np.zeros(0, np.int64)
    if instances:
        flat = frame.ravel()
        if flat.min() < 0:
            flat = np.where(flat < 0, 0, flat)
        areas = np.bincount(flat.astype(np.intp, copy=False))[1:]
        return areas[areas > 0]
    out = []
    for c in np.unique(frame):
        if c <= 0:
            continue
        cc, n = ndi.label(frame == c)
        if n:
            out.append(np.bincount(cc.ravel(), minlength=n + 1)[1:])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def object_diameters(labels, instances: bool = True) -> np.ndarray:
    """Equivalent diameters ``2*sqrt(area/pi)`` of all objects (pooled over frames / images)."""
    areas = [_object_areas(f, instances) for f in _label_frames(labels)]
    areas = np.concatenate(areas) if areas else np.zeros(0)
    return 2.0 * np.sqrt(areas.astype(np.float64) / np.pi)


def object_diameter(labels, instances: bool = True) -> float | None:
    """Median equivalent diameter (px) of the objects of a label image; None without objects.

    ``labels``: a 2-D label image, a stack of 2-D frames (any leading axes) or a list of them;
    objects are pooled over all frames. ``instances=True``: one object per id > 0 in each frame
    (an id that appears in two frames counts as two objects; an id split into pieces in one frame
    counts once). ``instances=False`` (class labels): the objects are the connected components
    (4-connectivity) of each class > 0.
    """
    d = object_diameters(labels, instances)
    return float(np.median(d)) if d.size else None


def rescale_factor(model_diameter: float | None, diameter: float | None) -> float:
    """The zoom to apply to the user's image before the network: ``model_diameter / diameter``.

    Both in pixels: ``model_diameter`` in the network's pixels (recorded at training),
    ``diameter`` in the user's image pixels. 1.0 when either is unknown or not positive.
    A factor < 1 shrinks the image (the user's objects are larger than the training objects).
    """
    if not model_diameter or not diameter or model_diameter <= 0 or diameter <= 0:
        return 1.0
    if not (np.isfinite(model_diameter) and np.isfinite(diameter)):
        return 1.0
    return float(model_diameter) / float(diameter)


# --------------------------------------------------------------------------- images
#
# estimate_diameter, method "threshold" (the default, chosen by measurement, see
# benchmarks/diameter_estimate.py): percentile-normalise the grey image (inverted when most
# pixels are bright: dark objects on a bright background), smooth (sigma 1 px), Otsu foreground
# (rejected when it covers > 40% of the image), then for each
# connected component twice the largest inscribed radius (the maximum of the Euclidean distance
# transform: a clump of touching round nuclei keeps the size of one nucleus, not of the clump);
# the median over components, times a calibration factor from inscribed to equivalent diameter.
# Method "log": scale-space maxima of the normalised Laplacian of Gaussian over a Gaussian
# pyramid, diameter 2*sqrt(2)*sigma, median weighted by response^2, times its calibration.
# Both calibration factors are the median ratio true/estimate on 60 DSB images (native and
# upscaled 2x, 3x, 4x) outside the benchmark's sample.

_THRESHOLD_CALIBRATION = 2.0 ** 0.257  # equivalent / inscribed diameter, measured
_LOG_CALIBRATION = 2.0 ** 0.169
_MAX_FOREGROUND = 0.4  # a larger Otsu foreground is no object mask (falls back to LoG)
_BUDGET = 512 * 512  # pixels analysed per pass (bounds the time: ~0.1 s per image)
_SQ2 = np.sqrt(2.0)


def _grey(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] <= 4 < min(a.shape[:2]):
        a = a.astype(np.float32).mean(-1)
    elif a.ndim == 3 and a.shape[0] <= 4 < min(a.shape[1:]):
        a = a.astype(np.float32).mean(0)
    if a.ndim != 2:
        raise ValueError(f"estimate_diameter takes a 2-D grey or (H, W, C) image, not shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return a


def _normalise(a: np.ndarray) -> np.ndarray | None:
    """Percentiles 1 / 99.8 to 0 / 1, objects bright; None when the image is flat."""
    if min(a.shape) < 8:
        return None
    sample = a[:: max(1, a.shape[0] // 256), :: max(1, a.shape[1] // 256)]
    lo, hi = np.percentile(sample, [1.0, 99.8])
    if not hi > lo:
        lo, hi = float(sample.min()), float(sample.max())
        if not hi > lo:
            return None
    a = (a - np.float32(lo)) / np.float32(hi - lo)
    if np.median(sample) > (lo + hi) / 2.0:  # most pixels bright: dark objects on a bright background
        a = 1.0 - a
    return a


def _threshold_diameters(a: np.ndarray) -> np.ndarray:
    """Twice the largest inscribed radius of each Otsu foreground component (px of ``a``)."""
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    from skimage.filters import threshold_otsu

    sample = a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)]
    if not sample.max() > sample.min():
        return np.zeros(0)
    a = ndi.gaussian_filter(a, 1.0)  # noise and chromatin speckle
    fg = a > threshold_otsu(a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)])
    if fg.mean() > _MAX_FOREGROUND:  # textured background split from darker background: no object mask
        return np.zeros(0)
    cc, n = ndi.label(fg)
    if not n:
        return np.zeros(0)
    edt = ndi.distance_transform_edt(fg)
    r = np.asarray(ndi.maximum(edt, cc, np.arange(1, n + 1)))
    area = np.bincount(cc.ravel(), minlength=n + 1)[1:]
    keep = (area >= 9) & (r >= 1.5)  # specks of noise are no objects
    return 2.0 * r[keep]


def _threshold_diameter(a: np.ndarray) -> float | None:
    d = _threshold_diameters(a)
    return float(np.median(d)) * _THRESHOLD_CALIBRATION if d.size else None


def _log_detections(a: np.ndarray, sigma0: float = 1.0, per_octave: int = 4, max_sigma: float | None = None):
    """Scale-space maxima of the normalised -LoG over a Gaussian pyramid.

    Returns (sigma in px of ``a``, response, y, x). Each pyramid level holds one octave of sigmas
    (sigma0..2*sigma0 level px) plus one neighbour scale each side; a maximum is taken over its
    3x3x3 neighbours within the level and refined in scale by a parabola.
    """
    if max_sigma is None:
        max_sigma = min(a.shape) / 4.0
    ratio = 2.0 ** (1.0 / per_octave)
    pre = 0.0  # blur already in the level (level px)
    level, f = a, 1.0
    out_s, out_r, out_y, out_x = [], [], [], []
    while True:
        sig = sigma0 * ratio ** np.arange(-1, per_octave + 1)  # level px
        if sig[1] * f > max_sigma or min(level.shape) < 8:
            break
        stack = np.empty((len(sig),) + level.shape, np.float32)
        for i, s in enumerate(sig):
            eff = np.sqrt(max(s * s - pre * pre, 0.25))
            stack[i] = -(s * s) * ndi.gaussian_laplace(level, eff, mode="reflect")
        mx = ndi.maximum_filter(stack, size=3, mode="nearest")
        peak = (stack == mx) & (stack > 0.02)
        peak[0] = peak[-1] = False
        k, y, x = np.nonzero(peak)
        r0, rm, rp = stack[k, y, x], stack[k - 1, y, x], stack[k + 1, y, x]
        den = rm - 2.0 * r0 + rp
        off = np.where(den < 0, 0.5 * (rm - rp) / np.where(den < 0, den, -1.0), 0.0).clip(-0.5, 0.5)
        out_s.append(sig[k] * ratio**off * f)
        out_r.append(r0)
        out_y.append((y + 0.5) * f)
        out_x.append((x + 0.5) * f)
        add = np.sqrt(max(1.0 - pre * pre, 0.0))  # to sigma 1 level px, then every other pixel
        level = ndi.gaussian_filter(level, add, mode="reflect")[::2, ::2]
        pre, f = 0.5, f * 2.0
    if not out_s:
        return (np.zeros(0),) * 4
    return tuple(np.concatenate(v) for v in (out_s, out_r, out_y, out_x))


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    o = np.argsort(v)
    c = np.cumsum(w[o])
    return float(v[o][min(int(np.searchsorted(c, c[-1] / 2.0)), len(v) - 1)])


def _log_diameter(a: np.ndarray) -> float | None:
    s, r, _, _ = _log_detections(a)
    if not s.size:
        return None
    keep = r > 0.1 * r.max()
    return _weighted_median(2.0 * _SQ2 * s[keep], r[keep] ** 2) * _LOG_CALIBRATION


def _two_pass(a: np.ndarray, fn: Callable[[np.ndarray], float | None], min_px: float = 12.0) -> float | None:
    """``fn`` on the image block-averaged to <= _BUDGET pixels; when the objects are small there
    (< ``min_px``), ``fn`` again on a central full-resolution crop of <= _BUDGET pixels.
    Returns a diameter in px of ``a``."""
    b = int(np.ceil(np.sqrt(a.size / _BUDGET)))
    if b <= 1:
        return fn(a)
    h, w = (a.shape[0] // b) * b, (a.shape[1] // b) * b
    d = fn(a[:h, :w].reshape(h // b, b, w // b, b).mean((1, 3)))
    if d is not None and d >= min_px:
        return d * b
    ch = min(int(np.sqrt(_BUDGET)), a.shape[0])
    cw = min(_BUDGET // ch, a.shape[1])
    y0, x0 = (a.shape[0] - ch) // 2, (a.shape[1] - cw) // 2
    d2 = fn(a[y0 : y0 + ch, x0 : x0 + cw])
    return d2 if d2 is not None else (d * b if d is not None else None)


METHODS = ("threshold", "log")


def estimate_diameter(image, method: str = "threshold") -> float | None:
    """Typical object diameter (px of ``image``) without labels: an estimate of what
    :func:`object_diameter` of its true instance labels would be.

    ``image``: 2-D grey, (H, W, C) or (C, H, W) with C <= 4 (channels averaged); any dtype.
    Bright objects on a dark background, or dark on bright (decided by the median pixel).
    ``method``: "threshold" (default: Otsu foreground, median inscribed diameter of its
    components, calibrated) or "log" (Laplacian-of-Gaussian scale space); "threshold" falls back
    to "log" when it finds no object. Returns None when the image is flat (or empty / smaller
    than 8 px); never raises for such images. Large images are analysed block-averaged to
    <= 512*512 px, plus a full-resolution central crop when the objects are small, so the
    time is bounded (~0.1-0.3 s on one core).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    a = _normalise(_grey(image))
    if a is None:
        return None
    d = None
    if method == "threshold":
        d = _two_pass(a, _threshold_diameter)
    if d is None:
        d = _two_pass(a, _log_diameter)
    return float(d) if d is not None and np.isfinite(d) and d > 0 else None
