"""Images as the networks read them: files, layouts and channels, label checks, normalisation, scaling.

Application-agnostic: nothing here knows what the labels mean. The engine never
modifies the arrays it is given: every step below copies.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import DataError
from .settings import Settings

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


# -- reading ----------------------------------------------------------------
def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile  # lazy: slow to import, and the dock and napari-mia --help import this module

            return tifffile.imread(path)
        import imageio.v3 as iio  # lazy: slow to import, and the dock and napari-mia --help import this module

        return np.asarray(iio.imread(path))
    except FileNotFoundError as e:
        raise DataError(f"Image file not found: {path}") from e
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable file
        raise DataError(f"Cannot read image {path.name}: {e}") from e


def _full_value(dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def fit_channels(image: np.ndarray, channels: int, name: str = "image",
                 channel_axis: int | None = None) -> tuple[np.ndarray, list[str]]:
    """A file's image as the model reads it, and what was changed, in plain words.

    `channel_axis`: where the channels are in the file (e.g. 0 for (C, H, W)); the result then has them
    last, (H, W, C). None guesses: for a model of 2 or more channels, a (C, H, W) file whose first axis
    holds exactly the model's channels (and whose last does not) is read channels first, as ImageJ and
    most microscopes save them; anything else is read as it is.

    An RGBA image (H, W, 4) whose alpha is fully opaque loses its alpha (it carries nothing), unless the
    model reads 4 channels; for a Mono model, a colour image whose three channels are equal (gray saved
    as RGB or RGBA) becomes one channel. Anything else is returned as it is (the channel checks explain
    what does not fit). The input is never modified.
    """
    image, notes = np.asarray(image), []
    if channel_axis is not None:
        image = channels_last(image, channel_axis, name)
    elif (channels > 1 and image.ndim == 3 and image.shape[0] == channels and image.shape[-1] != channels
          and min(image.shape[1:]) >= _LONG):
        image = np.moveaxis(image, 0, -1)
    if (channels != 4 and image.ndim == 3 and image.shape[-1] == 4 and min(image.shape[:2]) >= _LONG):
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
            f"but the last axis looks like {c} channels of one {h}x{w} image. To train on its {c} channels, "
            f"choose Input: {c} channels with the channel axis last (command line: --channels {c} "
            f"--channel-axis -1; Python: channel_axis=-1); or keep one channel (e.g. numpy image[..., 0]).")


def _channels_first_hint(name: str, shape: tuple) -> str:
    n, h, w = shape
    return (f"Image '{name}' has shape {tuple(shape)}: napari-mia reads this as {n} frames of {h}x{w}. If the first "
            f"axis is {n} channels of one image, choose Input: {n} channels with the channel axis first "
            f"(command line: --channels {n} --channel-axis 0; Python: channel_axis=0); or keep one channel "
            "(napari: right-click the layer, Split Stack, and add that layer as the image).")


def channel_kind(n: int) -> str:
    """A channel count as the dock's Input names it."""
    return {1: "Mono (1 channel)", 3: "Color (3 channels)"}.get(n, f"{n} channels")


def channel_mismatch(name: str, found: int, channels: int, shape: tuple | None = None, where: str = "") -> str:
    """Why an image of `found` channels does not fit a model of `channels`, and what to do, in plain words.

    `shape`: the image's shape as given (before its channels were moved last), to point at an axis that
    may hold the channels. `where`: where the channels were counted, said after the count.
    """
    text = (f"'{name}' has {found} channel{'s' if found != 1 else ''}{where} but the model expects "
            f"{channel_kind(channels)}. ")
    if channels == 1 and found == 3:
        return text + "Choose Color in the training settings, or convert the image to grayscale."
    if channels == 3 and found == 1 and not (shape and len(shape) >= 3 and channels in shape[-3:]):
        return text + "Choose Mono in the training settings, or use a colour image."
    hint = ""
    if found == 1 and shape and len(shape) >= 3:
        axes = [i for i in range(len(shape)) if shape[i] == channels]
        if axes:
            hint = (f" Its shape is {tuple(shape)}: if axis {axes[0]} holds the channels, say so (channel axis "
                    f"{'first' if axes[0] == len(shape) - 3 else 'last' if axes[0] == len(shape) - 1 else axes[0]};"
                    f" command line: --channel-axis {axes[0]}; Python: channel_axis={axes[0]}).")
    return (text + f"Predict images of {channel_kind(channels)} with it, or choose Input: {channel_kind(found)} "
            "to train a new model on images like this one." + hint)


def channels_last(image: np.ndarray, channel_axis: int, name: str = "image") -> np.ndarray:
    """The image with its channel axis moved last: (C, H, W) -> (H, W, C), (N, C, H, W) -> (N, H, W, C).

    `channel_axis` counts as numpy does (0 = first, -1 = last). A view: the image is not copied or changed.
    """
    image = np.asarray(image)
    try:
        axis = int(channel_axis)
    except (TypeError, ValueError):
        raise DataError(f"The channel axis must be a whole number (0 = first axis, -1 = last), got "
                        f"{channel_axis!r}.") from None
    if image.ndim < 3 or not -image.ndim <= axis < image.ndim:
        raise DataError(
            f"'{name}' has shape {tuple(image.shape)}: it has no channel axis {axis}. An image with channels has "
            "3 axes, e.g. (channels, height, width) with the channel axis 0 (first), or (height, width, channels) "
            "with the channel axis -1 (last); a stack has 4, e.g. (frames, channels, height, width).")
    return np.moveaxis(image, axis, -1)


def image_frames(image: np.ndarray, channels: int, name: str = "image", rgb: bool | None = None,
                 channel_axis: int | None = None) -> np.ndarray:
    """Any supported image -> (N, H, W, C) view, checking the channel count.

    2D grayscale (H, W), colour or multi-channel (H, W, C), and stacks of
    either (N, H, W[, C]). ``rgb`` says whether the last axis is channels
    (napari's ``layer.rgb``); ``None`` guesses from the model's channel count.
    ``channel_axis``: where the channels are, when not last (e.g. 0 for (C, H, W), 1 or -3 for
    (N, C, H, W)); they are moved last and ``rgb`` does not apply.
    """
    image = given = np.asarray(image)
    if channel_axis is not None:
        image, rgb = channels_last(image, channel_axis, name), True
    guessed = rgb is None
    rgb, spatial = _layout(image, channels, rgb)
    if not rgb and _small_last_axis(image.shape):
        if not (guessed and channels > 1):
            raise DataError(_channels_last_message(name, image.shape))
        # A model of several channels: a short last axis is channels, of another count (said below).
        rgb, spatial = True, 2
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
        raise DataError(channel_mismatch(name, c, channels, None if channel_axis is not None else given.shape))
    if not (np.issubdtype(frames.dtype, np.number) or frames.dtype == bool):
        raise DataError(f"'{name}' has data type {frames.dtype}, which is not a number type.")
    return frames


def finite_frames(image: np.ndarray, channels: int, rgb: bool | None, name: str) -> np.ndarray:
    """``image_frames`` for prediction: a refusal of NaN or infinite values that names the image."""
    frames = image_frames(image, channels, name, rgb=rgb)
    if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
        raise DataError(f"'{name}' contains NaN or infinite values, so it cannot be predicted. Replace them "
                        "(e.g. with 0) and predict it again.")
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


def blobs_per_id(frame: np.ndarray) -> np.ndarray:
    """(H, W) labels -> for each nonzero id present, how many separate blobs (8-connected) it forms."""
    from skimage.measure import label  # lazy: seconds to import, and the dock and napari-mia --help import this module

    comps = label(frame, background=0, connectivity=2)  # touching regions of different ids stay apart
    value_of = np.zeros(int(comps.max()) + 1, frame.dtype)
    value_of[comps.ravel()] = frame.ravel()
    counts = np.bincount(value_of[1:].astype(np.int64))
    return counts[counts > 0]


def guess_label_mode(labels: np.ndarray, sparse: bool = False) -> str | None:
    """Whether a labels array looks like instance ids or class ids: "instances", "classes" or None.

    The rule, per 2D frame (a stack's frames are looked at one by one and must agree):

    - no labelled pixel, or 2 to 7 ids that each form a single blob (e.g. two touching
      nuclei with ids 1 and 2, or three classes painted as one stroke each): None,
      the data cannot tell, keep the user's choice;
    - one id (a binary mask), or ids of which more than 20% form several separate blobs
      (a class is painted in many places): "classes";
    - at least ``INSTANCE_MIN_IDS`` (8) ids of which at least 80% each form one blob
      (8-connected, touching objects of different ids count apart): "instances".

    Sparse labels (`sparse`) are judged on their objects or classes (2, 3, ...) only: background painted with 1
    as several strokes is not a class painted in many places.

    Floats and negative values give None (they are refused elsewhere with their own message).
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim not in (2, 3) or (labels.size and labels.min() < 0):
        return None
    if sparse:
        labels = np.where(labels > 1, labels, 0)
    votes = set()
    for frame in labels.reshape((-1,) + labels.shape[-2:]):
        if not frame.any():
            continue
        blobs = blobs_per_id(frame)
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
    rgb: bool | None = None, region: np.ndarray | None = None,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Pair each labelled frame of an image with its labels: [(index, HWC, HW)].

    `region`: reviewed regions, the labels' shape (nonzero = reviewed): a frame with a region and no
    labels is labelled too (a region without objects teaches background)."""
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
    out = [(i, frames[i], lab[i]) for i in labelled_indices(labels, region)]
    if not out:
        raise empty_labels(labels_name)
    return out


def labelled_indices(labels: np.ndarray, region: np.ndarray | None = None) -> list[int]:
    """The frames of `labels` (2D: one) that training learns from: painted, or with a reviewed region (nonzero
    in `region`, the labels' shape: a region without objects teaches background)."""
    lab = labels[None] if labels.ndim == 2 else labels
    reg = None if region is None else (region[None] if region.ndim == 2 else region)
    return [i for i in range(len(lab)) if lab[i].any() or (reg is not None and reg[i].any())]


def empty_labels(labels_name: str) -> DataError:
    """The refusal of labels without a single labelled frame (``labelled_indices``)."""
    return DataError(f"Labels '{labels_name}' are empty (all background). Paint at least one object before training.")


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
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    from skimage.transform import resize

    return resize(frame, tuple(shape) + frame.shape[2:], order=order, preserve_range=True,
                  anti_aliasing=order > 0 and shape[0] < frame.shape[0]).astype(frame.dtype)


def rescale(frame: np.ndarray, factor: float, order: int) -> np.ndarray:
    return resize_to(frame, scaled_shape(frame.shape[:2], factor), order)


def prepare_image(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """(H, W, C) raw frame -> normalised, down-scaled float32 (H', W', C)."""
    return rescale(normalize(frame, settings.data.normalization), settings.data.downscale, order=1)

