"""``napari-mia train --sparse --regions DIR``: labels that cover part of an image (issue #16).

Sparse labels: 0 = not labelled, 1 = background painted on purpose, 2, 3, ... = objects or classes.
Reviewed regions: masks with the images' file names, nonzero where the labels are complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine.errors import MiaError


def add_label_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--sparse", action="store_true", default=None,
                   help="sparse labels: 0 = not labelled (ignored), 1 = background painted on purpose, 2, 3, ... = "
                        "objects (instances) or classes (value v is class v-1)")
    t.add_argument("--regions", type=Path, metavar="DIR",
                   help="folder of reviewed-region masks with the images' file names (nonzero = every object "
                        "there is labelled; unpainted pixels there are background); outside them nothing is "
                        "learned. Images without a region file are taken as fully labelled")


def with_regions(a, pairs: list[tuple], app) -> list[tuple]:
    """[(image file, targets)] -> [(image file, targets, region file or None)] when --regions is given."""
    if not getattr(a, "regions", None):
        return pairs
    if app.whole_image:
        raise MiaError(f"--regions: {app.name} learns one answer per whole image; reviewed regions do not apply.")
    from .engine.images import list_images

    by_stem = {p.stem: p for p in list_images(a.regions)}
    out = [(pair[0], pair[1], by_stem.get(Path(pair[0]).stem)) for pair in pairs]
    missing = [Path(p[0]).name for p in out if p[2] is None]
    if len(missing) == len(out):
        raise MiaError(f"No file in {a.regions} has the name of a training image (e.g. {missing[0]}): region "
                       "masks need the images' file names (the extension may differ).")
    if missing:
        print(f"{len(missing)} image(s) have no region file in {a.regions} and are taken as fully labelled "
              f"(e.g. {missing[0]}).", file=sys.stderr)
    return out
