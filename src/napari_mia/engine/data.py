"""From (image, labels) arrays or files to normalised training patches.

The engine never modifies the arrays it is given: every step below copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import DataError
from .settings import Settings
from .targets import IGNORE, contour_weights, encode

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


# -- reading ----------------------------------------------------------------
def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except FileNotFoundError as e:
        raise DataError(f"Image file not found: {path}") from e
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable file
        raise DataError(f"Cannot read image {path.name}: {e}") from e


def _full_value(dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def fit_channels(image: np.ndarray, channels: int, name: str = "image") -> tuple[np.ndarray, list[str]]:
    """A file's image as the model reads it, and what was changed, in plain words.

    An RGBA image (H, W, 4) whose alpha is fully opaque loses its alpha (it
    carries nothing); for a Mono model, a colour image whose three channels are
    equal (gray saved as RGB or RGBA) becomes one channel. Anything else is
    returned as it is (the channel checks explain what does not fit). The
    input is never modified.
    """
    image, notes = np.asarray(image), []
    if image.ndim == 3 and image.shape[-1] == 4 and min(image.shape[:2]) >= _LONG:
        alpha = image[..., 3]
        if (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)) \
                and alpha.size and alpha.min() >= _full_value(image.dtype):
            image = image[..., :3]
            notes.append(f"{name}: its alpha (transparency) channel is fully opaque and was dropped.")
    if (channels == 1 and image.ndim == 3 and image.shape[-1] == 3 and min(image.shape[:2]) >= _LONG
            and np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
        image = image[..., 0]
        notes.append(f"{name}: a gray image saved as colour, read as one channel for the Mono model.")
    return image, notes


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"No images (TIFF, PNG, JPEG) in {folder}.")
    return files


def pair_files(images: str | Path, masks: str | Path) -> list[tuple[Path, Path]]:
    """Match images with masks of the same file name (the extension may differ)."""
    masks_by_stem = {p.stem: p for p in list_images(masks)}
    pairs, missing = [], []
    for img in list_images(images):
        m = masks_by_stem.get(img.stem)
        (pairs.append((img, m)) if m is not None else missing.append(img.name))
    if not pairs:
        raise DataError(f"No image in {images} has a mask of the same name in {masks}.")
    if missing:
        import warnings

        warnings.warn(f"{len(missing)} image(s) have no mask and are skipped, e.g. {missing[0]}.", stacklevel=2)
    return pairs


# -- shapes and channels ----------------------------------------------------
def _layout(image: np.ndarray, channels: int, rgb: bool | None) -> tuple[bool, int]:
    """(last axis is channels, number of spatial+frame axes)."""
    if rgb is None:
        rgb = image.ndim >= 3 and (
            (channels > 1 and image.shape[-1] == channels) or (channels == 1 and image.shape[-1] in (3, 4) and image.ndim == 3)
        )
    return bool(rgb), image.ndim - (1 if rgb else 0)


def is_stack(image: np.ndarray, channels: int, rgb: bool | None = None) -> bool:
    return _layout(np.asarray(image), channels, rgb)[1] == 3


# A short axis of this many entries beside two long ones may be channels rather than frames or rows.
_CHANNEL_AXIS = (2, 3, 4)
_LONG = 16  # pixels: a side of an image, not a count of channels


def _small_last_axis(shape: tuple) -> bool:
    """(H, W, 2..4) not read as colour: e.g. two fluorescence channels."""
    return len(shape) == 3 and shape[-1] in _CHANNEL_AXIS and min(shape[:2]) >= _LONG


def _small_first_axis(shape: tuple) -> bool:
    return len(shape) == 3 and shape[0] in _CHANNEL_AXIS and min(shape[1:]) >= _LONG


def _channels_last_message(name: str, shape: tuple) -> str:
    c, (h, w) = shape[-1], shape[:2]
    return (f"'{name}' has shape {tuple(shape)}: napari-mia would read this as {h} frames of {w}x{c} pixels, "
            f"but the last axis looks like {c} channels of one {h}x{w} image. napari-mia trains on one channel "
            "(Mono) or colour (Color, 3 channels) for now: keep one channel (e.g. numpy image[..., 0], or "
            "in napari split the channels), or save the image as RGB to use Color.")


def _channels_first_hint(name: str, shape: tuple) -> str:
    n, h, w = shape
    return (f"Image '{name}' has shape {tuple(shape)}: napari-mia reads this as {n} frames of {h}x{w}. If the first "
            f"axis is {n} channels of one image, napari-mia cannot train on multi-channel images yet: keep one "
            "channel (napari: right-click the layer, Split Stack, and add that layer as the image), or save the "
            "image as RGB to use Color.")


def image_frames(image: np.ndarray, channels: int, name: str = "image", rgb: bool | None = None) -> np.ndarray:
    """Any supported image -> (N, H, W, C) view, checking the channel count.

    2D grayscale (H, W), colour or multi-channel (H, W, C), and stacks of
    either (N, H, W[, C]). ``rgb`` says whether the last axis is channels
    (napari's ``layer.rgb``); ``None`` guesses from the model's channel count.
    """
    image = np.asarray(image)
    rgb, spatial = _layout(image, channels, rgb)
    if not rgb and _small_last_axis(image.shape):
        raise DataError(_channels_last_message(name, image.shape))
    if spatial not in (2, 3) or image.ndim > 4:
        raise DataError(
            f"'{name}' has shape {image.shape}: expected a 2D image (height, width[, channels]) "
            "or a stack of 2D images (frames, height, width[, channels])."
        )
    frames = image if rgb else image[..., None]
    if spatial == 2:
        frames = frames[None]
    c = frames.shape[-1]
    if c != channels:
        kind = {1: "Mono (1 channel)", 3: "Color (3 channels)"}
        raise DataError(
            f"'{name}' has {c} channel{'s' if c != 1 else ''} but the model expects "
            f"{kind.get(channels, f'{channels} channels')}. "
            + ("Choose Color in the training settings, or convert the image to grayscale." if c > channels else
               "Choose Mono in the training settings, or use a colour image.")
        )
    if not (np.issubdtype(frames.dtype, np.number) or frames.dtype == bool):
        raise DataError(f"'{name}' has data type {frames.dtype}, which is not a number type.")
    return frames


def check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"Labels '{name}' have data type {labels.dtype}: labels must be whole numbers "
            "(an integer type, 0 = background). Use a napari Labels layer, or convert the mask to integers."
        )
    if labels.size and labels.min() < 0:
        raise DataError(f"Labels '{name}' contain negative values: use 0 for background and 1, 2, ... for labels.")
    return labels


# guess_label_mode: at least this many ids, nearly all single blobs, read as one id per object.
INSTANCE_MIN_IDS = 8
INSTANCE_BLOB_SHARE = 0.8


def _blobs_per_id(frame: np.ndarray) -> np.ndarray:
    """(H, W) labels -> for each nonzero id present, how many separate blobs (8-connected) it forms."""
    from skimage.measure import label

    comps = label(frame, background=0, connectivity=2)  # touching regions of different ids stay apart
    value_of = np.zeros(int(comps.max()) + 1, frame.dtype)
    value_of[comps.ravel()] = frame.ravel()
    counts = np.bincount(value_of[1:].astype(np.int64))
    return counts[counts > 0]


def guess_label_mode(labels: np.ndarray) -> str | None:
    """Whether a labels array looks like instance ids or class ids: "instances", "classes" or None.

    The rule, per 2D frame (a stack's frames are looked at one by one and must agree):

    - no labelled pixel, or 2 to 7 ids that each form a single blob (e.g. two touching
      nuclei with ids 1 and 2, or three classes painted as one stroke each): None,
      the data cannot tell, keep the user's choice;
    - one id (a binary mask), or ids of which more than 20% form several separate blobs
      (a class is painted in many places): "classes";
    - at least ``INSTANCE_MIN_IDS`` (8) ids of which at least 80% each form one blob
      (8-connected, touching objects of different ids count apart): "instances".

    Floats and negative values give None (they are refused elsewhere with their own message).
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim not in (2, 3) or (labels.size and labels.min() < 0):
        return None
    votes = set()
    for frame in labels.reshape((-1,) + labels.shape[-2:]):
        if not frame.any():
            continue
        blobs = _blobs_per_id(frame)
        single = float(np.mean(blobs == 1))
        if len(blobs) == 1 or single < INSTANCE_BLOB_SHARE:
            votes.add("classes")
        elif len(blobs) >= INSTANCE_MIN_IDS:
            votes.add("instances")
        else:
            votes.add(None)
    return votes.pop() if len(votes) == 1 else None


def check_pair_shape(image_shape: tuple, labels_shape: tuple, name: str = "image", labels_name: str = "labels",
                     rgb: bool | None = None) -> bool:
    """Raise unless the labels cover the image exactly; returns whether the image's last axis is channels."""
    image_shape, labels_shape = tuple(image_shape), tuple(labels_shape)
    if rgb is None:
        rgb = len(image_shape) == len(labels_shape) + 1
    spatial = image_shape[:-1] if rgb else image_shape
    if _small_first_axis(image_shape) and image_shape[1:] == labels_shape:
        raise DataError(
            _channels_first_hint(name, image_shape) + f" If they are frames, labels '{labels_name}' "
            f"{labels_shape} cover one frame: draw labels of shape {image_shape}, one frame per frame."
        )
    if spatial != labels_shape:
        raise DataError(
            f"Image '{name}' {spatial} and labels '{labels_name}' {labels_shape} do not have the same size. "
            "Draw the labels on the image they belong to (same height, width and frames)."
        )
    return bool(rgb)


def labelled_frames(
    image: np.ndarray, labels: np.ndarray, channels: int, name: str = "image", labels_name: str = "labels",
    rgb: bool | None = None,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Pair each labelled frame of an image with its labels: [(index, HWC, HW)]."""
    labels = check_labels(labels, labels_name)
    image = np.asarray(image)
    rgb = check_pair_shape(image.shape, labels.shape, name, labels_name, rgb)
    frames = image_frames(image, channels, name, rgb=rgb)
    lab = labels[None] if labels.ndim == 2 else labels
    if (not rgb and _small_first_axis(image.shape) and lab[0].any()
            and all(np.array_equal(lab[0], lab[i]) for i in range(1, len(lab)))):
        # Frames of a time series or a z-stack hardly all carry the very same labels; channels of one image do.
        raise DataError(
            _channels_first_hint(name, image.shape) + f" Its {len(lab)} frames have identical labels in "
            f"'{labels_name}', as channels would: napari-mia would train on them as {len(lab)} separate grayscale "
            "images. If they really are frames, label each one where it differs."
        )
    out = [(i, frames[i], lab[i]) for i in range(len(lab)) if lab[i].any()]
    if not out:
        raise DataError(
            f"Labels '{labels_name}' are empty (all background). Paint at least one object before training."
        )
    return out


# -- normalisation and scaling ----------------------------------------------
def normalize(frame: np.ndarray, mode: str) -> np.ndarray:
    """(H, W, C) -> float32, per channel over the whole frame.

    Done on the whole image before tiling, so tiled and untiled prediction see
    the same values.
    """
    x = frame.astype(np.float32)
    if mode == "none":
        if np.issubdtype(frame.dtype, np.integer):
            x /= float(np.iinfo(frame.dtype).max)
        return x
    if not np.isfinite(x).all():
        raise DataError("The image contains NaN or infinite values. Replace them (e.g. with 0) before training.")
    axes = (0, 1)
    if mode == "percentile":
        lo, hi = np.percentile(x, [1, 99.8], axis=axes, keepdims=True)
    elif mode == "minmax":
        lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    else:  # standardize
        mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
        return ((x - mean) / np.maximum(std, 1e-6)).astype(np.float32)
    scale = hi - lo
    # A constant channel carries no information; keep it at 0 instead of
    # dividing by zero.
    scale[scale <= 1e-6] = 1.0
    return ((x - lo) / scale).astype(np.float32)


def scaled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    return max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor))


def resize_to(frame: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize a (H, W[, C]) frame to `shape` (order 0 for labels)."""
    if tuple(frame.shape[:2]) == tuple(shape):
        return frame
    from skimage.transform import resize

    return resize(frame, tuple(shape) + frame.shape[2:], order=order, preserve_range=True,
                  anti_aliasing=order > 0 and shape[0] < frame.shape[0]).astype(frame.dtype)


def rescale(frame: np.ndarray, factor: float, order: int) -> np.ndarray:
    return resize_to(frame, scaled_shape(frame.shape[:2], factor), order)


def prepare_image(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """(H, W, C) raw frame -> normalised, down-scaled float32 (H', W', C)."""
    return rescale(normalize(frame, settings.data.normalization), settings.data.downscale, order=1)


def prepare_whole(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """Classification: (H, W, C) raw frame -> normalised float32 (patch_height, patch_width, C).

    The class belongs to the whole image, so the network sees all of it,
    resized to its input size (down scaling does not apply).
    """
    d = settings.data
    return resize_to(normalize(frame, d.normalization), (d.patch_height, d.patch_width), order=1)


# -- samples ----------------------------------------------------------------
@dataclass
class Sample:
    image: np.ndarray  # (H, W, C) float32, normalised and down-scaled
    # (H, W) uint8 class ids, IGNORE where unsupervised; classification: the
    # image's class id as a 0-d uint8 array.
    target: np.ndarray
    weight: np.ndarray | None  # (H, W) float32 pixel weights, or None
    name: str


def make_sample(frame: np.ndarray, labels: np.ndarray, settings: Settings, name: str) -> Sample:
    image = prepare_image(frame, settings)
    if settings.model.task == "detection":  # labels are dots: moved, not resampled, when down scaled
        from .detection import rescale_dots

        return Sample(image, rescale_dots(labels.astype(np.uint8), image.shape[:2]), None, name)
    labels = rescale(labels, settings.data.downscale, order=0)
    t = settings.train
    weight = None
    if t.separate_contours:
        from skimage.measure import label

        inst = labels if settings.model.label_mode == "instances" else label(labels)
        weight = contour_weights(inst, t.contour_weight, t.contour_sigma)
    return Sample(image, encode(labels, settings.model.label_mode), weight, name)


class SampleSource:
    """One labelled frame, prepared now (in memory) or on each use (from disk)."""

    def __init__(self, loader: Callable[[], Sample], name: str, shape: tuple[int, int], keep: bool,
                 max_label: int, label_mode_guess: str | None = None):
        self._loader, self.name, self.shape, self.max_label = loader, name, shape, max_label
        # What the raw labels look like (guess_label_mode), for the check at Start.
        self.label_mode_guess = label_mode_guess
        self._sample = loader() if keep else None

    def get(self) -> Sample:
        return self._sample if self._sample is not None else self._loader()


def sources_from_arrays(
    pairs: Sequence[tuple],
    settings: Settings,
    rgb: Sequence[bool | None] | None = None,
) -> list[SampleSource]:
    """(image, labels[, name[, labels name]]) arrays -> one source per labelled frame."""
    sources = []
    for k, pair in enumerate(pairs):
        image, labels = pair[0], pair[1]
        name = pair[2] if len(pair) > 2 else f"image {k + 1}"
        labels_name = pair[3] if len(pair) > 3 else f"{name} labels"
        frames = labelled_frames(
            image, labels, settings.model.channels, name, labels_name, rgb=None if rgb is None else rgb[k]
        )
        for i, img, lab in frames:
            fname = name if len(frames) == 1 and np.asarray(labels).ndim == 2 else f"{name}[{i}]"
            sources.append(
                SampleSource(
                    (lambda img=img, lab=lab, fname=fname: make_sample(img, lab, settings, fname)),
                    fname, scaled_shape(lab.shape, settings.data.downscale), keep=True, max_label=int(lab.max()),
                    label_mode_guess=_guess_for_check(lab, settings),
                )
            )
    return sources


def _guess_for_check(labels: np.ndarray, settings: Settings) -> str | None:
    # Only a segmentation in classes mode asks (Trainer._check_classes); dots and instance ids need not.
    m = settings.model
    return guess_label_mode(labels) if m.task == "segmentation" and m.label_mode == "classes" else None


def sources_from_points(pairs: Sequence[tuple], settings: Settings) -> list[SampleSource]:
    """Detection: (image, points[, name]) with (N, 2) y, x or (N, 3) y, x, class points -> sources."""
    from .detection import points_to_dots

    out = []
    for k, pair in enumerate(pairs):
        image, points = np.asarray(pair[0]), pair[1]
        name = pair[2] if len(pair) > 2 else f"image {k + 1}"
        rgb = image.ndim == 3 and image.shape[-1] == settings.model.channels and settings.model.channels > 1
        if image.ndim != (3 if rgb else 2):
            raise DataError(f"'{name}': detection takes 2D images (one set of points per image).")
        dots = points_to_dots(points, image.shape[:2], f"{name} points")
        out += sources_from_arrays([(image, dots, name, f"{name} points")], settings, rgb=[rgb])
    return out


def _class_id(value, n: int, name: str) -> int | None:
    """A class id in 0..n-1, or None for an unlabelled frame (-1 or None)."""
    if value is None:
        return None
    # 2.0 from a table of floats is a class; 0.5, True or "a" is not.
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating))
                                                     and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole:
        raise DataError(f"'{name}': the class must be a whole number (0 to {n - 1}, or -1 for no class), "
                        f"got {value!r}.")
    value = int(value)
    if value == -1:
        return None
    if not 0 <= value < n:
        raise DataError(f"'{name}' has class {value}, but there are {n} classes (0 to {n - 1}). "
                        "Add the class to the class list, or correct the image's class.")
    return value


def sources_from_classes(
    items: Sequence[tuple],
    settings: Settings,
    rgb: Sequence[bool | None] | None = None,
) -> list[SampleSource]:
    """Classification: (image, class ids[, name]) -> one source per labelled image or frame.

    The class ids are an int for a 2D (or colour) image, or one entry per
    frame for a stack; -1 or None leaves a frame out. Each source is the
    prepared image only (small), never the raw one.
    """
    n, channels = settings.model.num_classes, settings.model.channels
    sources = []
    for k, item in enumerate(items):
        image, ids = item[0], item[1]
        name = item[2] if len(item) > 2 else f"image {k + 1}"
        layer_rgb = None if rgb is None else rgb[k]
        frames = image_frames(image, channels, name, rgb=layer_rgb)
        stack = is_stack(image, channels, layer_rgb)
        if not stack:
            ids = [ids]
        elif np.ndim(ids) == 0:
            raise DataError(f"'{name}' is a stack of {len(frames)} frames: give one class per frame "
                            "(-1 for a frame with no class).")
        ids = list(ids)
        if len(ids) != len(frames):
            raise DataError(f"'{name}' has {len(frames)} frame{'s' if len(frames) != 1 else ''} but "
                            f"{len(ids)} classes were given: give one class per frame (-1 for none).")
        for i, (frame, value) in enumerate(zip(frames, ids)):
            fname = f"{name}[{i}]" if stack else name
            cid = _class_id(value, n, fname)
            if cid is None:
                continue
            sample = Sample(prepare_whole(frame, settings), np.array(cid, np.uint8), None, fname)
            sources.append(SampleSource(lambda sample=sample: sample, fname, sample.image.shape[:2], keep=True,
                                        max_label=cid))
    if not sources:
        raise DataError("No image has a class yet: give a class to at least two images (or frames) before "
                        "training.")
    return sources


def read_classes_csv(csv_path, images_dir) -> list[tuple[Path, str]]:
    """A classes CSV (name,class) and its images folder -> [(image path, class name)], sorted by name.

    Images the CSV does not name are skipped with a warning; a name with no
    image is an error.
    """
    import csv

    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise DataError(f"Cannot read the classes file {csv_path}: {e.strerror}.") from e
    if not rows or not {"name", "class"} <= set(rows[0]):
        raise DataError(f"{csv_path.name} needs the columns name and class, one row per image "
                        "(name: the image's file name; class: its class, e.g. treated).")
    by_name: dict[str, str] = {}
    for r in rows:
        name, cls = (r["name"] or "").strip(), (r["class"] or "").strip()
        if not name or not cls:
            raise DataError(f"{csv_path.name}: every row needs a name and a class; one has "
                            f"name '{name}' and class '{cls}'.")
        if by_name.setdefault(name, cls) != cls:
            raise DataError(f"{csv_path.name} gives '{name}' two classes ('{by_name[name]}' and '{cls}').")
    files = {f.name: f for f in list_images(images_dir)}
    missing = sorted(set(by_name) - set(files))
    if missing:
        raise DataError(f"{csv_path.name} names {len(missing)} image(s) not in {images_dir}, e.g. '{missing[0]}'.")
    skipped = sorted(set(files) - set(by_name))
    if skipped:
        import warnings

        warnings.warn(f"{len(skipped)} image(s) have no class in {csv_path.name} and are skipped, e.g. "
                      f"{skipped[0]}.", stacklevel=2)
    return [(files[n], c) for n, c in sorted(by_name.items())]


def sources_for_task(items: Sequence[tuple], settings: Settings,
                     rgb: Sequence[bool | None] | None = None) -> list[SampleSource]:
    """Array items -> sources for the settings' task: (image, labels[, name[, labels name]]) for
    segmentation, (image, points[, name]) for detection, (image, class ids[, name]) for classification.
    `rgb`: per item, whether the image's last axis is channels (napari's ``layer.rgb``; None guesses)."""
    task = settings.model.task
    if task == "detection":
        return sources_from_points([it[:3] for it in items], settings)
    if task == "classification":
        return sources_from_classes([it[:3] for it in items], settings, rgb=rgb)
    return sources_from_arrays([it[:4] for it in items], settings, rgb=rgb)


def sources_from_files(pairs: Sequence[tuple[Path, Path]], settings: Settings,
                       notes: list[str] | None = None) -> list[SampleSource]:
    """Image/mask files -> sources; read once now, or per use if not load_full.

    Images pass through ``fit_channels`` (opaque alpha dropped); what it changed
    is added to `notes`."""
    sources = []
    keep = settings.data.load_full
    channels = settings.model.channels
    for img_path, mask_path in pairs:
        labels = check_labels(read_image(mask_path), mask_path.name)
        image, found = fit_channels(read_image(img_path), channels, img_path.name)
        if notes is not None:
            notes += found
        frames = labelled_frames(image, labels, settings.model.channels, img_path.name, mask_path.name)
        if len(frames) != 1 or labels.ndim != 2:
            raise DataError(f"{img_path.name}: the command line takes 2D images; split stacks into one file per frame.")
        shape = scaled_shape(labels.shape, settings.data.downscale)

        def load(img_path=img_path, mask_path=mask_path):
            _, img, lab = labelled_frames(fit_channels(read_image(img_path), channels)[0], read_image(mask_path), channels,
                                          img_path.name, mask_path.name)[0]
            return make_sample(img, lab, settings, img_path.name)

        top, guess = int(labels.max()), _guess_for_check(labels, settings)
        del image, labels  # the loader reads the files again: memory is only kept if load_full
        sources.append(SampleSource(load, img_path.name, shape, keep=keep, max_label=top, label_mode_guess=guess))
    return sources


def too_few_for_validation(n: int, val_split: float) -> str | None:
    """Why `n` labelled images (or frames) cannot be split for validation, in plain words; None if they can."""
    if val_split <= 0:
        return None
    n_val = max(1, round(n * val_split))
    if n - n_val >= 1:
        return None
    return (f"Only {n} labelled image{'s' if n != 1 else ''}: training without validation (a validation split of "
            f"{val_split:.0%} needs at least {n_val + 1}), so there is no validation curve. Label another image "
            "(or frame) to see how the model does on images it does not train on.")


def split_train_val(sources: list[SampleSource], val_split: float, seed: int) -> tuple[list, list]:
    """Hold out whole images for validation.

    Too few images to hold one out (e.g. a single labelled image with the
    default split of 10%): every image trains and none validates, rather than a
    refusal; ``too_few_for_validation`` gives the note the trainer sends with
    ``TrainingStarted``. A region of the image is not held out instead: a
    first training on one image needs all of its few labelled objects.
    """
    n = len(sources)
    if val_split <= 0 or too_few_for_validation(n, val_split):
        return list(sources), []
    n_val = max(1, round(n * val_split))
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(order[:n_val])
    return [sources[i] for i in range(n) if i not in set(val)], [sources[i] for i in val]


def class_frequencies(sources: Sequence[SampleSource], num_classes: int) -> np.ndarray:
    counts = np.zeros(num_classes, np.float64)
    for s in sources:
        t = s.get().target
        counts += np.bincount(t[t != IGNORE].ravel(), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def auto_class_weights(freq: np.ndarray) -> np.ndarray:
    """Median-frequency balancing: rare classes weigh more; absent classes 0."""
    present = freq > 0
    w = np.zeros_like(freq)
    w[present] = np.median(freq[present]) / freq[present]
    return w.astype(np.float32)


# -- patches ----------------------------------------------------------------
def _crop(sample: Sample, y: int, x: int, ph: int, pw: int):
    """Crop a patch at (y, x), padding past the image (IGNORE in the target)."""
    h, w = sample.target.shape
    img = np.zeros((ph, pw, sample.image.shape[2]), np.float32)
    tgt = np.full((ph, pw), IGNORE, np.uint8)
    wgt = np.ones((ph, pw), np.float32)
    ys, xs = slice(max(y, 0), min(y + ph, h)), slice(max(x, 0), min(x + pw, w))
    yd, xd = slice(ys.start - y, ys.stop - y), slice(xs.start - x, xs.stop - x)
    img[yd, xd] = sample.image[ys, xs]
    tgt[yd, xd] = sample.target[ys, xs]
    if sample.weight is not None:
        wgt[yd, xd] = sample.weight[ys, xs]
    return img, tgt, wgt


class PatchDataset:
    """Random training patches, ``len`` = patches per epoch (map-style for DataLoader)."""

    def __init__(self, sources: list[SampleSource], settings: Settings, augment=None, epoch_seed: int = 0):
        self.sources, self.settings, self.augment = sources, settings, augment
        self.epoch_seed = epoch_seed
        d, t = settings.data, settings.train
        self.ph, self.pw = d.patch_height, d.patch_width
        areas = np.array([s.shape[0] * s.shape[1] for s in sources], np.float64)
        self.p = areas / areas.sum()
        if t.steps_per_epoch > 0:
            self.length = t.steps_per_epoch * t.batch_size
        else:
            patches = sum(max(1, math.ceil(a / (self.ph * self.pw))) for a in areas)
            self.length = max(t.batch_size, math.ceil(patches / t.batch_size) * t.batch_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        t = self.settings.train
        rng = np.random.default_rng((t.seed, self.epoch_seed, i))
        tries = t.prefer_tries if t.prefer_labelled else 0
        for attempt in range(tries + 1):
            sample = self.sources[rng.choice(len(self.sources), p=self.p)].get()
            h, w = sample.target.shape
            y = int(rng.integers(0, max(h - self.ph, 0) + 1))
            x = int(rng.integers(0, max(w - self.pw, 0) + 1))
            img, tgt, wgt = _crop(sample, y, x, self.ph, self.pw)
            if attempt == tries or np.count_nonzero((tgt > 0) & (tgt != IGNORE)) >= t.prefer_min_pixels:
                break
        if self.augment is not None:
            img, tgt, wgt = self.augment(img, tgt, wgt, rng)
        return to_tensors(img, tgt, wgt)


class ClassificationDataset:
    """Whole training images, augmented, for classification (map-style for DataLoader).

    ``len`` = images per epoch: every image once (rounded up to whole
    batches), or ``steps_per_epoch`` batches. Each pass over the images has an
    order of its own, seeded, so a run can be repeated exactly.
    """

    def __init__(self, sources: list[SampleSource], settings: Settings, augment=None, epoch_seed: int = 0):
        self.sources, self.settings, self.augment = sources, settings, augment
        self.epoch_seed = epoch_seed
        t = settings.train
        if t.steps_per_epoch > 0:
            self.length = t.steps_per_epoch * t.batch_size
        else:
            self.length = max(t.batch_size, math.ceil(len(sources) / t.batch_size) * t.batch_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        t, n = self.settings.train, len(self.sources)
        order = np.random.default_rng((t.seed, self.epoch_seed, i // n)).permutation(n)
        sample = self.sources[order[i % n]].get()
        img = sample.image
        if self.augment is not None:
            rng = np.random.default_rng((t.seed, self.epoch_seed, n, i))
            # The pipeline is shared with segmentation and moves a mask along: give it a blank one.
            h, w = img.shape[:2]
            img, _, _ = self.augment(img, np.zeros((h, w), np.uint8), np.ones((h, w), np.float32), rng)
        return _class_tensors(img, sample.target)


def _class_tensors(img, target):
    import torch

    # The weight is a placeholder: the trainer's batches are always (image, target, weight).
    return (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)),
            torch.tensor(int(target), dtype=torch.int64), torch.tensor(1.0, dtype=torch.float32))


def to_tensors(img, tgt, wgt):
    import torch

    return (
        torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
        torch.from_numpy(tgt.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(wgt)),
    )


def validation_items(sources: list[SampleSource], settings: Settings):
    """What the validation loop scores: whole images for classification, patches otherwise."""
    if settings.model.task == "classification":
        return (_class_tensors(sample.image, sample.target) for sample in (s.get() for s in sources))
    return validation_patches(sources, settings)


def validation_patches(sources: list[SampleSource], settings: Settings):
    """Non-overlapping patches covering every validation image, no augmentation."""
    ph, pw = settings.data.patch_height, settings.data.patch_width
    for s in sources:
        sample = s.get()
        h, w = sample.target.shape
        for y in range(0, h, ph):
            for x in range(0, w, pw):
                yield to_tensors(*_crop(sample, y, x, ph, pw))
