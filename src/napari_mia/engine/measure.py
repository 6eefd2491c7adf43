"""Measurements of objects, counts per class and their tables: MIA's Results window, without Qt.

Pure functions over arrays (the engine never touches a layer):

- ``measure_objects``: labels [+ the image under them] [+ pixel size and unit] -> one row per object
  (per object per frame in a stack), from scikit-image's region properties;
- ``count_objects`` / ``count_points``: objects or detected points -> counts per class per image and frame;
- ``write_table`` / ``read_table``: CSV, round trip.

Lengths and areas carry their unit in the column name: ``area_px2`` in pixels, ``area_um2`` in square
micrometres when a pixel size is given (``unit_suffix`` turns napari's unit names into these suffixes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError

# napari's (pint's) unit names -> the ASCII suffix of the columns
_UNIT_SUFFIX = {"pixel": "px", "px": "px", "": "px", "micrometer": "um", "micron": "um", "um": "um", "µm": "um",
                "nanometer": "nm", "nm": "nm", "millimeter": "mm", "mm": "mm", "centimeter": "cm", "meter": "m",
                "m": "m"}
CHANNEL_NAMES = ("red", "green", "blue")


def unit_suffix(unit) -> str:
    """'micrometer' (or pint's Unit) -> 'um'; None or 'pixel' -> 'px'."""
    text = "" if unit is None else str(unit).strip()
    if text in _UNIT_SUFFIX:
        return _UNIT_SUFFIX[text]
    return "".join(ch for ch in text if ch.isalnum()) or "px"


def class_name(names: Sequence[str] | None, value: int) -> str:
    """The name of class `value` (names[value], as the model's class_names are ordered), else 'class <value>'."""
    if names is not None and 0 <= value < len(names):
        return str(names[value])
    return f"class {value}"


def _skeleton_length(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    """Length of the object's skeleton: the steps between 8-connected skeleton pixels, each counted once
    (sideways and up-down steps scaled by the pixel size, diagonal ones by its diagonal)."""
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    from skimage.morphology import skeletonize

    sk = skeletonize(np.pad(mask, 1))
    sy, sx = spacing
    diagonal = float(np.hypot(sy, sx))
    total = (np.count_nonzero(sk[:-1, :] & sk[1:, :]) * sy + np.count_nonzero(sk[:, :-1] & sk[:, 1:]) * sx
             + (np.count_nonzero(sk[:-1, :-1] & sk[1:, 1:]) + np.count_nonzero(sk[:-1, 1:] & sk[1:, :-1])) * diagonal)
    # A diagonal step beside a sideways and an up-down step (an L of three pixels) would be counted twice:
    # keep the two short steps, drop the diagonal (the usual 8-connected path length).
    corner = sk[:-1, :-1] & sk[1:, 1:] & (sk[:-1, 1:] | sk[1:, :-1])
    anti = sk[:-1, 1:] & sk[1:, :-1] & (sk[:-1, :-1] | sk[1:, 1:])
    total -= (np.count_nonzero(corner) + np.count_nonzero(anti)) * diagonal
    return float(total)


def _indexed_frames(array: np.ndarray, ndim: int):
    """(frame index or None, 2D frame) for a 2D array or a stack of them (leading axes flattened)."""
    if array.ndim == ndim:
        yield None, array
        return
    lead = array.shape[:array.ndim - ndim]
    for i, idx in enumerate(np.ndindex(*lead)):
        yield i, array[idx]


# Over 80 lines: one table built row by row, its columns named where they are computed.
def measure_objects(labels: np.ndarray, image: np.ndarray | None = None, *, mode: str = "instances",
                    classes: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                    spacing: Sequence[float] = (1.0, 1.0), unit=None, name: str | None = None,
                    rgb: bool | None = None):
    """One row per object (per object per frame of a stack), as a pandas DataFrame.

    labels: (H, W) or a stack (F, H, W) of whole numbers, 0 = background.
    mode: 'instances' (each number is one object; its class is 1 'object', or the most common non-zero
        value of `classes` under it) or 'classes' (each number is a class; each connected region of a
        class is one object, numbered 1, 2, ... per frame in the `label` column).
    image: the image under the labels, same height and width (and frames), grayscale or colour
        (rgb: its last axis is colour; guessed when None): min/mean/max intensity of each object.
    spacing, unit: the size of a pixel (y, x) and its unit (e.g. napari's layer.scale[-2:] and
        layer.units[-1]); the lengths and areas are in that unit. Anisotropic pixels have no perimeter (NaN).
    name: the image's name, put in an `image` column.
    """
    # lazy: pandas and skimage take seconds to import, and the dock and napari-mia --help import this module
    import pandas as pd
    from skimage.measure import label as connected_regions
    from skimage.measure import regionprops, regionprops_table

    labels = np.asarray(labels)
    if labels.ndim < 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise DataError(f"Labels must be a 2D image or a stack of them, of whole numbers (got {labels.dtype}, "
                        f"{labels.ndim} dimensions).")
    if mode not in ("instances", "classes"):
        raise DataError(f"mode must be 'instances' or 'classes', not '{mode}'.")
    spacing = tuple(float(s) for s in spacing[-2:])
    if len(spacing) != 2 or min(spacing) <= 0:
        raise DataError(f"The pixel size must be two positive numbers (y, x), got {spacing}.")
    if image is not None:
        image = np.asarray(image)
        if rgb is None:
            rgb = image.ndim == labels.ndim + 1 and image.shape[-1] in (3, 4)
        core = image.shape[:-1] if rgb else image.shape
        if tuple(core) != labels.shape:
            raise DataError(f"The image {'(' + name + ') ' if name else ''}has the shape {image.shape}, the labels "
                            f"{labels.shape}: they must cover the same pixels.")
    if classes is not None and np.shape(classes) != labels.shape:
        raise DataError(f"The class layer has the shape {np.shape(classes)}, the labels {labels.shape}.")
    # napari's default unit is 'pixel': a scale without a unit gives sizes in (world) pixels, 'px'.
    u = unit_suffix(unit)
    isotropic = spacing[0] == spacing[1]
    props = ["label", "area", "equivalent_diameter_area", "axis_major_length", "axis_minor_length", "centroid",
             "image"]
    if isotropic:
        props.insert(2, "perimeter")
    frames = []
    image_frames = dict(_indexed_frames(image, 3 if rgb else 2)) if image is not None else {}
    class_frames = dict(_indexed_frames(np.asarray(classes), 2)) if classes is not None else {}
    for f, lab in _indexed_frames(labels, 2):
        lab = lab.astype(np.int64, copy=False)
        objects = connected_regions(lab, background=0, connectivity=1) if mode == "classes" else lab
        if not objects.any():
            continue
        img = image_frames.get(f) if image is not None else None
        t = regionprops_table(objects, intensity_image=img, spacing=spacing,
                              properties=props + (["intensity_min", "intensity_mean", "intensity_max"]
                                                  if img is not None else []))
        n = len(t["label"])
        row = {}
        if name is not None:
            row["image"] = [name] * n
        if f is not None:
            row["frame"] = np.full(n, f, int)
        row["label"] = t["label"].astype(int)
        if mode == "classes":  # the class is the labels' value in the region (one value per region)
            values = {r.label: int(lab[r.coords[0][0], r.coords[0][1]]) for r in regionprops(objects)}
            cls = np.array([values[k] for k in t["label"]], int)
        elif classes is not None:
            by_label = regionprops_table(objects, intensity_image=np.asarray(class_frames[f]), properties=["label"],
                                         extra_properties=[_class_under])
            cls = np.asarray(by_label["_class_under"], int)
        else:
            cls = np.ones(n, int)
        row["class"] = cls
        names = class_names if (class_names is not None or mode == "classes") else [None, "object"]
        row["class_name"] = [class_name(names, int(c)) for c in cls]
        row[f"area_{u}2"] = t["area"]
        row[f"perimeter_{u}"] = t["perimeter"] if isotropic else np.full(n, np.nan)
        row[f"equivalent_diameter_{u}"] = t["equivalent_diameter_area"]
        row[f"major_axis_{u}"] = t["axis_major_length"]
        row[f"minor_axis_{u}"] = t["axis_minor_length"]
        row[f"skeleton_length_{u}"] = [_skeleton_length(m, spacing) for m in t["image"]]
        row[f"centroid_y_{u}"] = t["centroid-0"]
        row[f"centroid_x_{u}"] = t["centroid-1"]
        if img is not None:
            for stat in ("min", "mean", "max"):
                if rgb:
                    for c in range(img.shape[-1]):
                        cname = CHANNEL_NAMES[c] if c < 3 else f"c{c}"
                        row[f"intensity_{stat}_{cname}"] = t[f"intensity_{stat}-{c}"]
                else:
                    row[f"intensity_{stat}"] = t[f"intensity_{stat}"]
        frames.append(pd.DataFrame(row))
    if not frames:
        columns = _empty_columns(name, labels.ndim > 2, u)
        if image is not None:
            channels = [f"_{CHANNEL_NAMES[c] if c < 3 else f'c{c}'}" for c in range(image.shape[-1])] if rgb else [""]
            columns += [f"intensity_{stat}{c}" for stat in ("min", "mean", "max") for c in channels]
        return pd.DataFrame({k: [] for k in columns})
    return pd.concat(frames, ignore_index=True)


def _empty_columns(name, stack: bool, u: str) -> list[str]:
    return ((["image"] if name is not None else []) + (["frame"] if stack else [])
            + ["label", "class", "class_name", f"area_{u}2", f"perimeter_{u}", f"equivalent_diameter_{u}",
               f"major_axis_{u}", f"minor_axis_{u}", f"skeleton_length_{u}", f"centroid_y_{u}", f"centroid_x_{u}"])


def _class_under(region_mask, classes):
    return _majority(classes[region_mask])


def _majority(values: np.ndarray) -> int:
    """The most common non-zero value (0 when there is none)."""
    values = values[values != 0]
    if values.size == 0:
        return 0
    found, counts = np.unique(values, return_counts=True)
    return int(found[np.argmax(counts)])


def count_objects(objects, images: dict[str, int | None] | None = None,
                  class_names: Sequence[str] | None = None, classes: Sequence[int] | None = None):
    """Objects per class per image (and per frame): image, [frame], class, class_name, count.

    objects: a table of ``measure_objects`` (with an `image` column, else one image named '').
    images: image name -> number of frames (None for a single image), so that images and frames with no
    object are counted too (count 0). classes: the classes to count (default: those found, else 1).
    """
    import pandas as pd  # lazy: seconds to import, and the dock and napari-mia --help import this module

    table = objects if "image" in objects else objects.assign(image="")
    stack = "frame" in table
    if images is None:
        images = {n: (int(table.loc[table["image"] == n, "frame"].max()) + 1 if stack else None)
                  for n in dict.fromkeys(table["image"])}
    if classes is None:
        classes = sorted(int(c) for c in set(table["class"])) or [1]
    names = {int(c): n for c, n in zip(table["class"], table["class_name"])}
    rows = []
    for image, frames in images.items():
        mine = table[table["image"] == image]
        for f in ([None] if frames is None else range(frames)):
            here = mine if f is None or not stack else mine[mine["frame"] == f]
            for c in classes:
                rows.append({"image": image, **({"frame": f} if frames is not None else {}), "class": int(c),
                             "class_name": names.get(int(c), class_name(class_names, int(c))
                                                     if class_names is not None else
                                                     ("object" if c == 1 else f"class {c}")),
                             "count": int((here["class"] == c).sum())})
    out = pd.DataFrame(rows, columns=["image", "frame", "class", "class_name", "count"])
    if all(f is None for f in images.values()):
        out = out.drop(columns="frame")
    return out


def count_points(points: np.ndarray, point_classes: np.ndarray | None = None, *, name: str = "",
                 frames: int | None = None, class_names: Sequence[str] | None = None,
                 classes: Sequence[int] | None = None):
    """Detected (or clicked) points per class per image and frame: image, [frame], class, class_name, count.

    points: (N, 2) y, x or (N, 3) frame, y, x. point_classes: each point's class (missing or 0 count as
    class 1, as napari-mia trains them). frames: the stack's number of frames (None: a single image).
    """
    import pandas as pd  # lazy: seconds to import, and the dock and napari-mia --help import this module

    points = np.asarray(points, float).reshape(-1, np.shape(points)[-1] if np.size(points) else 2)
    cls = np.ones(len(points), int) if point_classes is None else np.asarray(point_classes).astype(int)
    cls = np.where(cls <= 0, 1, cls)
    stack = frames is not None or points.shape[1] > 2
    fr = np.round(points[:, 0]).astype(int) if points.shape[1] > 2 else np.zeros(len(points), int)
    if stack and frames is None:
        frames = int(fr.max()) + 1 if len(fr) else 1
    classes = sorted(set(cls.tolist())) or [1] if classes is None else list(classes)
    names = class_names if class_names is not None else [None, "object"]
    rows = []
    for f in (range(frames) if stack else [None]):
        here = cls if f is None else cls[fr == f]
        for c in classes:
            rows.append({"image": name, **({"frame": f} if stack else {}), "class": int(c),
                         "class_name": class_name(names, int(c)), "count": int((here == c).sum())})
    return pd.DataFrame(rows, columns=["image", *(["frame"] if stack else []), "class", "class_name", "count"])


def write_table(table, path: str | Path) -> Path:
    """The table as CSV (comma separated, a header row, no index column); plain-words errors."""
    path = Path(path)
    try:
        table.to_csv(path, index=False)
    except OSError as e:
        raise DataError(f"Cannot write {path}: {e.strerror}.") from e
    return path


def read_table(path: str | Path):
    import pandas as pd  # lazy: seconds to import, and the dock and napari-mia --help import this module

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read the table {path}: {e}") from e
