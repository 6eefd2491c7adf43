"""From (image, labels) arrays or files to training samples and their sources.

Application-agnostic: what labels mean (classes, instance ids, dots, a class per image) is asked of the
application each function is given (``engine.applications``; ``engine.task_data`` looks it up from the
settings). The engine never modifies the arrays it is given: every step below copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .errors import DataError
from .images import (
    blobs_per_id, check_labels, fit_channels, labelled_frames, read_image, resize_to, scaled_shape,
)
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover - types only: the applications import this module
    from .applications.base import Application


# -- samples ----------------------------------------------------------------
@dataclass
class Sample:
    image: np.ndarray  # (H, W, C) float32, normalised and down-scaled
    # (H, W) uint8 class ids, IGNORE where unsupervised; classification: the
    # image's class id as a 0-d uint8 array.
    target: np.ndarray
    weight: np.ndarray | None  # (H, W) float32 pixel weights, or None
    name: str
    # (H, W) where the labels are known (sparse labels, reviewed regions); None: everywhere.
    known: np.ndarray | None = None


def make_sample(app: Application, frame: np.ndarray, labels: np.ndarray, settings: Settings, name: str,
                known: np.ndarray | None = None) -> Sample:
    """One labelled frame -> a prepared Sample, as `app` (the settings' application) makes it.

    `known`: where the labels are to be trusted (``supervision``), None: everywhere. Elsewhere the
    target is IGNORE: neither the loss nor the metrics see it."""
    sample = app.make_sample(frame, labels, settings, name)
    if known is not None:
        known = resize_to(known.astype(np.uint8), sample.target.shape, order=0).astype(bool)
        sample.target = app.mask_unknown(sample.target, known, settings)
        sample.known = known
        app.learn_unknown(sample, settings)
    return sample


# -- sparse labels and reviewed regions ---------------------------------------------
def supervision(labels: np.ndarray, sparse: bool, region: np.ndarray | None = None,
                name: str = "labels") -> tuple[np.ndarray, np.ndarray | None]:
    """Raw labels -> (labels as the applications read them: 0 background, 1, 2, ... objects or classes;
    where they are known, or None for everywhere).

    Sparse: 0 = not labelled, 1 = background painted on purpose, v >= 2 = object or class v - 1.
    `region` (nonzero = reviewed, fully labelled): inside it an unpainted pixel is background; outside it
    nothing is learned, unless sparse labels paint it (painted on purpose counts everywhere).
    The input is never modified. Training adds the application's ring of background (``with_ring``)."""
    labels = np.asarray(labels)
    known = None
    if sparse:
        known = labels > 0
        labels = np.where(known, labels - 1, 0).astype(labels.dtype)
    if region is not None:
        region = np.asarray(region)
        if region.shape != labels.shape:
            raise DataError(f"The reviewed regions of '{name}' are {_size(region.shape)} but the labels are "
                            f"{_size(labels.shape)}: draw the regions on the same image.")
        reviewed = region > 0
        if known is None:
            known, labels = reviewed, np.where(reviewed, labels, 0).astype(labels.dtype)
        else:
            known = known | reviewed
    return labels, known


RING_MIN_WIDTH = 2  # pixels: the ring of the smallest objects still says where they end


def ring_width(diameter: float, share: float) -> int:
    """The ring's width in pixels around an object of this diameter (``background_ring``)."""
    return max(RING_MIN_WIDTH, int(round(share * diameter)))


def background_ring(labels: np.ndarray, known: np.ndarray, share: float) -> np.ndarray:
    """Where background may be taken as painted around whole painted objects: the unpainted pixels within
    ``ring_width`` of an object (`labels` > 0 where `known`; its equivalent diameter times `share`).

    A person who paints an object whole says where it ends: just outside it is background, or another
    object, which would be painted too if it touched. So a thin ring teaches the object's edge and the
    background around it, which a few background dabs far away do not. Painted pixels are never changed
    (the ring only covers pixels not `known`), so no ring lies between touching painted objects. An
    unpainted object touching a painted one loses a rim this wide to background; a thin ring keeps that
    small. A stack ((N, H, W) labels) has rings in each frame."""
    from scipy.ndimage import binary_dilation, find_objects  # lazy: seconds to import, and the dock imports this module

    if labels.ndim == 3:
        return np.stack([background_ring(lab, kn, share) for lab, kn in zip(labels, known)])
    objects = np.where(known, labels, 0)
    out = np.zeros(labels.shape, bool)
    if not objects.any():
        return out
    ids = np.unique(objects[objects > 0])
    # find_objects lists every id up to the largest: relabel to 1..n first.
    compact = np.searchsorted(ids, objects) + 1
    compact[objects == 0] = 0
    h, w = labels.shape
    for k, box in enumerate(find_objects(compact), start=1):
        if box is None:
            continue
        mine = compact[box] == k
        r = ring_width(2 * np.sqrt(np.count_nonzero(mine) / np.pi), share)
        y0, y1 = max(box[0].start - r, 0), min(box[0].stop + r, h)
        x0, x1 = max(box[1].start - r, 0), min(box[1].stop + r, w)
        obj = compact[y0:y1, x0:x1] == k
        yy, xx = np.ogrid[-r:r + 1, -r:r + 1]
        grown = binary_dilation(obj, structure=yy * yy + xx * xx <= r * r)
        out[y0:y1, x0:x1] |= grown & ~known[y0:y1, x0:x1]
    return out


def _size(shape: tuple) -> str:
    return "x".join(str(n) for n in shape)


def label_one_as_background(labels: np.ndarray, name: str) -> str | None:
    """Why label 1 looks like background painted on purpose (sparse labels) in labels read as full labels, in
    plain words; None if it does not: 1 painted as several separate patches while every other label is one
    object."""
    frames = labels[None] if labels.ndim == 2 else labels
    for frame in frames:
        if not (frame == 1).any():
            continue
        blobs = blobs_per_id(frame)
        ids = np.unique(frame[frame > 0])
        ones, others = blobs[ids == 1], blobs[ids > 1]
        if len(ones) and ones[0] >= 3 and len(others) >= 2 and np.mean(others == 1) >= 0.8:
            return (f"In '{name}', label 1 is painted as {int(ones[0])} separate patches while the other labels "
                    "are one object each: is 1 the background, painted on purpose? Then tick Sparse labels "
                    "(command line: --sparse): 1 = background, 2, 3, ... = objects, 0 = not labelled. If 1 "
                    "really is one object, give each patch its own number.")
    return None


def check_sparse_one(labels: np.ndarray, settings: Settings, name: str) -> None:
    """Refuse instance labels where 1 looks like background painted on purpose while Sparse labels is off (in
    instance mode every value is one object, so the pattern is a mistake; classes may legitimately look so)."""
    if settings.data.sparse or settings.model.label_mode != "instances":
        return
    message = label_one_as_background(labels, name)
    if message:
        raise DataError(message)


def sparse_from_full(labels: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Full labels (0 = background) as sparse labels: background 1, objects or classes v + 1, and 0 (not
    labelled) outside `region` (nonzero = reviewed; None: the whole image), for a sparse training set."""
    labels = np.asarray(labels)
    inside = np.ones(labels.shape, bool) if region is None else np.asarray(region).astype(bool)
    return np.where(inside, np.where(labels > 0, labels + 1, 1), 0).astype(np.promote_types(labels.dtype, np.uint16))


def labelled_counts(labels: np.ndarray, sparse: bool, region: np.ndarray | None = None) -> dict[str, int]:
    """Pixels labelled as what (the dock's summary): 'background', 'objects' (or classes), 'not labelled'."""
    labels, known = supervision(labels, sparse, region)
    n = labels.size
    k = n if known is None else int(np.count_nonzero(known))
    fg = int(np.count_nonzero(labels if known is None else (labels > 0) & known))
    return {"background": k - fg, "objects": fg, "not labelled": n - k}


class SampleSource:
    """One labelled frame, prepared now (in memory) or on each use (from disk)."""

    def __init__(self, loader: Callable[[], Sample], name: str, shape: tuple[int, int], keep: bool,
                 max_label: int, label_mode_guess: str | None = None, diameters: np.ndarray | None = None,
                 background: bool | None = None, make: Callable[[Settings], Sample] | None = None,
                 raw_shape: tuple[int, int] | None = None, settings: Settings | None = None):
        self._loader, self.name, self.shape, self.max_label = loader, name, shape, max_label
        # The sample at other settings (another scale, ``rescaled``), from the raw frame of `raw_shape`.
        self._make, self.raw_shape, self._settings, self._keep = make, raw_shape, settings, keep
        self.scale = 1.0  # how much more this frame is scaled than the settings' down scaling says
        # Sparse labels or reviewed regions: whether any background is known; None: every unlabelled
        # pixel is background.
        self.background = background
        # What the raw labels look like (guess_label_mode), for the check at Start.
        self.label_mode_guess = label_mode_guess
        # The labelled objects' diameters in the network's pixels (Application.object_diameters), or None.
        self.diameters = diameters
        self._sample = loader() if keep else None

    def get(self) -> Sample:
        return self._sample if self._sample is not None else self._loader()

    def rescaled(self, factor: float) -> SampleSource:
        """This frame scaled by `factor` more than the down scaling (labels resampled before their targets are
        made, so boundaries keep their width); itself if it cannot be (no raw frame kept)."""
        if self._make is None or self._settings is None:
            return self
        st = self._settings.copy()
        # Beyond 1 on purpose: small objects are enlarged to the model's size (Settings.validate is for users).
        st.data.downscale = self._settings.data.downscale * factor
        out = SampleSource(lambda: self._make(st), self.name, scaled_shape(self.raw_shape, st.data.downscale),
                           self._keep, self.max_label, self.label_mode_guess,
                           None if self.diameters is None else self.diameters * factor, self.background)
        out.scale = self.scale * factor
        return out


def array_sources(
    app: Application,
    pairs: Sequence[tuple],
    settings: Settings,
    rgb: Sequence[bool | None] | None = None,
    regions: Sequence[np.ndarray | None] | None = None,
    sparse: bool | None = None,
) -> list[SampleSource]:
    """(image, labels[, name[, labels name]]) arrays -> one source per labelled frame, made by `app`.

    `regions`: per pair, its reviewed regions (the labels' shape, nonzero = reviewed) or None;
    `sparse`: whether the labels are sparse (None: the settings' ``data.sparse``), see ``supervision``."""
    sparse = settings.data.sparse if sparse is None else sparse
    sources = []
    for k, pair in enumerate(pairs):
        image, labels = pair[0], pair[1]
        name = pair[2] if len(pair) > 2 else f"image {k + 1}"
        labels_name = pair[3] if len(pair) > 3 else f"{name} labels"
        region = None if regions is None or regions[k] is None else np.asarray(regions[k])
        raw = check_labels(labels, labels_name)
        check_sparse_one(raw, settings, labels_name)
        mapped, known = supervision(raw, sparse, region, labels_name)
        # Background painted or reviewed, not the ring: without it the labels say nothing about background.
        painted = None if known is None else known & (mapped == 0)
        known = with_ring(app, mapped, known, settings, sparse)
        frames = labelled_frames(
            image, raw, settings.model.channels, name, labels_name, rgb=None if rgb is None else rgb[k],
            region=region,
        )
        for i, img, _ in frames:
            lab = mapped if mapped.ndim == 2 else mapped[i]
            kn = None if known is None else (known if known.ndim == 2 else known[i])
            fname = name if len(frames) == 1 and raw.ndim == 2 else f"{name}[{i}]"

            def make(st, img=img, lab=lab, kn=kn, fname=fname):
                return make_sample(app, img, lab, st, fname, kn)

            sources.append(
                SampleSource(
                    (lambda make=make: make(settings)),
                    fname, scaled_shape(lab.shape, settings.data.downscale), keep=True, max_label=int(lab.max()),
                    label_mode_guess=app.label_mode_guess(lab, settings), diameters=app.object_diameters(lab, settings),
                    background=None if kn is None else bool(np.any(painted if painted.ndim == 2 else painted[i])),
                    make=make, raw_shape=lab.shape, settings=settings,
                )
            )
    return sources


def with_ring(app: Application, labels: np.ndarray, known: np.ndarray | None, settings: Settings,
              sparse: bool) -> np.ndarray | None:
    """`known` (``supervision``) and the ring of background the application takes around sparse labels' painted
    objects (``background_ring``; none in classes mode, where a painted stroke need not be a whole region)."""
    share = app.background_ring(settings)
    if known is None or not sparse or share <= 0:
        return known
    return known | background_ring(labels, known, share)


def object_diameter(sources: Sequence[SampleSource]) -> float | None:
    """The median diameter of the objects labelled in `sources`, in the network's pixels; None if none."""
    found = [s.diameters for s in sources if getattr(s, "diameters", None) is not None and len(s.diameters)]
    return float(np.median(np.concatenate(found))) if found else None


def to_object_size(sources: Sequence[SampleSource], diameter: float) -> list[SampleSource]:
    """Each frame scaled so that its labelled objects' median diameter is `diameter` (network pixels), as
    cellpose trains: one object size to learn, and prediction brings each image to it (``Predictor``'s
    "auto" diameter). Frames without objects, or already within ``SAME_SCALE`` of it, stay as they are."""
    from .scale import MAX_TRAINING_SCALE, SAME_SCALE  # lazy: scale imports scipy, slow; the dock imports this module

    out = []
    for s in sources:
        d = float(np.median(s.diameters)) if getattr(s, "diameters", None) is not None and len(s.diameters) else None
        factor = 1.0 if not d else float(np.clip(diameter / d, 1 / MAX_TRAINING_SCALE, MAX_TRAINING_SCALE))
        out.append(s if abs(math.log(factor)) < math.log(SAME_SCALE) else s.rescaled(factor))
    return out


def file_sources(app: Application, pairs: Sequence[tuple], settings: Settings,
                 notes: list[str] | None = None, channel_axis: int | None = None) -> list[SampleSource]:
    """(image file, mask file[, region file or None]) -> sources made by `app`; read once now, or per use if not
    load_full.

    Images pass through ``fit_channels`` (opaque alpha dropped, the channels moved last from
    `channel_axis`, or from where they are guessed to be); what it changed is added to `notes`. A region
    file marks the reviewed regions (nonzero), see ``supervision``."""
    sources = []
    keep = settings.data.load_full
    channels = settings.model.channels

    def read(img_path, mask_path, region_path, check=False):
        raw = check_labels(read_image(mask_path), mask_path.name)
        region = None if region_path is None else read_image(region_path)
        if check:  # once, when the source is made: a streamed source reads its files again for every patch
            check_sparse_one(raw, settings, mask_path.name)
        labels, known = supervision(raw, settings.data.sparse, region, mask_path.name)
        painted = None if known is None else bool(np.any(known & (labels == 0)))
        known = with_ring(app, labels, known, settings, settings.data.sparse)
        image = fit_channels(read_image(img_path), channels, img_path.name, channel_axis)
        frames = labelled_frames(image[0], raw, channels, img_path.name, mask_path.name, region=region)
        if len(frames) != 1 or labels.ndim != 2:
            raise DataError(f"{img_path.name}: the command line takes 2D images; split stacks into one file per frame.")
        return frames[0][1], labels, known, image[1], painted

    for pair in pairs:
        img_path, mask_path = pair[0], pair[1]
        region_path = pair[2] if len(pair) > 2 else None
        img, labels, known, found, painted = read(img_path, mask_path, region_path, check=True)
        if notes is not None:
            notes += found
        shape = scaled_shape(labels.shape, settings.data.downscale)

        def make(st, img_path=img_path, mask_path=mask_path, region_path=region_path):
            img, lab, kn, _, _ = read(img_path, mask_path, region_path)
            return make_sample(app, img, lab, st, img_path.name, kn)

        top, guess = int(labels.max()), app.label_mode_guess(labels, settings)
        diameters = app.object_diameters(labels, settings)
        background = painted
        raw_shape = labels.shape
        del img, labels, known  # the loader reads the files again: memory is only kept if load_full
        sources.append(SampleSource(lambda make=make: make(settings), img_path.name, shape, keep=keep, max_label=top,
                                    label_mode_guess=guess, diameters=diameters, background=background, make=make,
                                    raw_shape=raw_shape, settings=settings))
    return sources


def check_known_background(sources: Sequence[SampleSource]) -> None:
    """Refuse sparse labels or regions that nowhere say what background is: the model would call everything an
    object."""
    flags = [s.background for s in sources if getattr(s, "background", None) is not None]
    if flags and not any(flags) and len(flags) == len(sources):
        raise DataError(
            "Nothing is labelled as background: with sparse labels, paint some background with label 1 (or draw "
            "a reviewed region around objects you labelled completely), so that the model learns what is not "
            "an object.")


def scaled_note(sources, diameter: float) -> str:
    """What bringing the images to one object size did, in a sentence ("" when nothing was scaled)."""
    scales = [s.scale for s in sources if getattr(s, "scale", 1.0) != 1.0]
    if not scales:
        return ""
    low, high = min(scales), max(scales)
    span = f"by {low:.2g}" if math.isclose(low, high, rel_tol=0.05) else f"by {low:.2g} to {high:.2g}"
    return (f"{len(scales)} of {len(sources)} images scaled {span} so that their objects are about "
            f"{diameter:.0f} px across, the size the model learns.")
