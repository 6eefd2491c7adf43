"""``napari-mia measure``: the objects of label images made elsewhere, measured and counted per class."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..workflows.measurement import label_pairs, measure_files
from .options import QUIET_HELP, add_pixel_size_options, pixel_spacing
from .output import follow

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


def add_parser(sub) -> argparse.ArgumentParser:
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
    add_pixel_size_options(m, with_images=True)
    m.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    return m


def run(a: argparse.Namespace) -> int:
    pairs = label_pairs(a.labels, a.images)
    names = [n.strip() for n in a.class_names.split(",")] if a.class_names else None
    out = a.out or a.labels
    steps = measure_files(pairs, out, pixel_spacing(a.pixel_size, a.unit), a.unit, a.label_mode, names)
    r = follow(steps, a.quiet)
    print(f"Measured {r.num_objects} object(s) in {r.num_images} image(s): {r.objects}, {r.counts}")
    return 0
