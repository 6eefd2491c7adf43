"""The command line's Results: ``napari-mia measure`` and ``napari-mia predict --measure``.

Kept out of cli.py so that the train/predict code stays as it is: ``--measure`` runs after ``predict``
has written its files, and measures those files (label TIFFs, or points.csv).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine.errors import DataError

MEASURE_EPILOG = """\
Writes two tables into --out (default: the labels folder):
  objects.csv  one row per object (per object per frame of a stack): image, [frame], label,
               class, class_name, area, perimeter, equivalent diameter, major and minor axis,
               skeleton length, centroid (y, x) and, with --images, min/mean/max intensity
               of the image under the object (one set per channel for colour images).
  counts.csv   objects per class per image (and frame): image, [frame], class, class_name, count.
Lengths and areas are in pixels (columns ending _px, _px2), or in --unit when --pixel-size is
given (e.g. area_um2, perimeter_um).

examples:
  napari-mia measure --labels masks/ --images imgs/ --label-mode instances
  napari-mia measure --labels masks/ --images imgs/ --pixel-size 0.325 --unit um --out results/
"""


def add_measure_options(parser: argparse.ArgumentParser, with_images: bool) -> None:
    """The pixel size options, shared by `measure` and `predict --measure`."""
    parser.add_argument("--pixel-size", type=float, nargs="+", metavar="SIZE",
                        help="size of one pixel in --unit: one number, or two (y x) for rectangular pixels "
                             "(default: 1, lengths in pixels)" if with_images else
                             "with --measure: size of one pixel in --unit (one number, or y x)")
    parser.add_argument("--unit", default=None,
                        help="unit of --pixel-size, e.g. um, nm, mm (default: px); it ends the column names, "
                             "e.g. area_um2")


def add_predict_flag(pr: argparse.ArgumentParser) -> None:
    pr.add_argument("--measure", action="store_true",
                    help="also measure the predictions: a segmentation model writes objects.csv (one row per "
                         "object: class, area, perimeter, diameter, axes, skeleton length, centroid, min/mean/max "
                         "intensity) and counts.csv (objects per class per image) into --out; a detection model "
                         "counts.csv from its points; a classification model's classes.csv already holds every "
                         "image's class")
    add_measure_options(pr, with_images=False)


def add_measure_parser(sub) -> None:
    m = sub.add_parser("measure", help="measure the objects of label images (and count them per class)",
                       epilog=MEASURE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--labels", required=True, type=Path,
                   help="folder of label images (TIFF or PNG; 0 = background), e.g. predictions or masks made "
                        "in another program")
    m.add_argument("--images", type=Path,
                   help="folder of the images under the labels, same file names (the extension may differ): "
                        "adds min/mean/max intensity")
    m.add_argument("--out", type=Path, help="folder for objects.csv and counts.csv (default: the labels folder)")
    m.add_argument("--label-mode", choices=["instances", "classes"], default="instances",
                   help="instances: each number is one object (class 1); classes: each number is a class and "
                        "each connected region of it one object (default: instances)")
    m.add_argument("--class-names", help="classes mode: the classes' names in order from 0, separated by "
                                         "commas, e.g. background,nucleus,cytoplasm")
    add_measure_options(m, with_images=True)
    m.add_argument("--quiet", action="store_true", help="no progress bar")


def _spacing(a) -> tuple[float, float]:
    size = a.pixel_size or [1.0]
    if len(size) > 2 or min(size) <= 0:
        raise DataError(f"--pixel-size takes one positive number, or two (y x); got {' '.join(map(str, size))}.")
    if a.pixel_size and not a.unit:
        raise DataError("--pixel-size needs its unit: add --unit, e.g. --unit um.")
    return (size[0], size[-1])


def _measure_files(pairs, spacing, unit, mode, class_names, out: Path, quiet: bool) -> tuple[Path, Path, int]:
    """Measure (label file, image file or None) pairs into out/objects.csv and out/counts.csv."""
    import pandas as pd

    from .cli import _bar
    from .engine.images import read_image
    from .engine.measure import count_objects, measure_objects, write_table

    tables, frames = [], {}
    bar = _bar(len(pairs), quiet)
    for lab_file, img_file in pairs:
        labels = read_image(lab_file)
        if labels.ndim == 3 and labels.shape[-1] in (3, 4):
            raise DataError(f"{lab_file.name} is a colour image, not labels (whole numbers, 0 = background). "
                            "Check that --labels is the folder of label images.")
        image = read_image(img_file) if img_file is not None else None
        name = (img_file or lab_file).name
        tables.append(measure_objects(labels, image, mode=mode, class_names=class_names, spacing=spacing,
                                      unit=unit, name=name))
        frames[name] = labels.shape[0] if labels.ndim == 3 else None
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    objects = pd.concat(tables, ignore_index=True)
    classes = sorted(set(objects["class"])) or [1]
    if mode == "classes" and class_names:
        classes = list(range(1, len(class_names)))  # every named class, found or not
    counts = count_objects(objects, images=frames, classes=classes,
                           class_names=class_names if mode == "classes" else None)
    out.mkdir(parents=True, exist_ok=True)
    return write_table(objects, out / "objects.csv"), write_table(counts, out / "counts.csv"), len(objects)


def measure(a) -> int:
    from .engine.images import list_images

    labels = list_images(a.labels)
    pairs = [(f, None) for f in labels]
    if a.images:
        by_stem = {p.stem: p for p in list_images(a.images)}
        missing = [f.name for f in labels if f.stem not in by_stem]
        if missing:
            raise DataError(f"{len(missing)} label image(s) have no image of the same name in {a.images}, "
                            f"e.g. {missing[0]}.")
        pairs = [(f, by_stem[f.stem]) for f in labels]
    names = [n.strip() for n in a.class_names.split(",")] if a.class_names else None
    out = a.out or a.labels
    objects, counts, n = _measure_files(pairs, _spacing(a), a.unit, a.label_mode, names, out, a.quiet)
    print(f"Measured {n} object(s) in {len(pairs)} image(s): {objects}, {counts}")
    return 0


def measure_predictions(a) -> int:
    """After `predict`: measure what it wrote into --out."""
    from .engine import applications, modelfile
    from .engine.images import list_images

    s = modelfile.load(a.model)["settings"]
    images = list_images(a.images)  # predict has just read this folder

    def measure_labels(pairs, mode, names):
        return _measure_files(pairs, _spacing(a), a.unit, mode, names, a.out, a.quiet)

    return applications.for_settings(s).cli_measure(a, s, images, measure_labels, _count_detections)


def _count_detections(a, images, class_names) -> int:
    import numpy as np
    import pandas as pd

    from .engine.measure import count_points, read_table, write_table

    points = read_table(a.out / "points.csv")
    classes = list(range(1, len(class_names))) or [1]
    tables = []
    for f in images:
        mine = points[points["name"] == f.name]
        tables.append(count_points(mine[["y", "x"]].to_numpy(float).reshape(-1, 2),
                                   mine["class"].to_numpy(int), name=f.name, class_names=class_names,
                                   classes=classes))
    counts = write_table(pd.concat(tables, ignore_index=True), a.out / "counts.csv")
    print(f"Counted {int(np.sum([t['count'].sum() for t in tables]))} object(s) in {len(images)} image(s): "
          f"{counts}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("Run: napari-mia measure --help")
