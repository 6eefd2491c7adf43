"""Held-out sets by image kind and by magnification, built from ../shared/data/dsb2018_fluo.

    PYTHONPATH=src .venv/bin/python benchmarks/heldout_sets.py OUT [--upscaled N]

A random validation split comes from the same folder as the training images and
flatters: models are judged here on images of a kind they never saw.

- ``OUT/train``: every image except the held-out kinds (symlinks).
- ``OUT/kind``: all 512x640 and all 520x696 images (103): other experiments of the
  challenge, larger fields with dimmer, larger nuclei; never trained on.
- ``OUT/x1``: N of those held-out images (seeded), at their own size;
  ``OUT/x3``, ``OUT/x4``: the same images and their masks upscaled 3x and 4x (images bilinear,
  masks nearest), standing for a higher magnification.
- ``OUT/x4_tune``: 3 other held-out images upscaled 4x, to fine-tune on (``train --from``);
  they are not in ``OUT/x4``.

Each folder has ``images/`` and ``masks/`` with the same file names, as ``napari-mia
evaluate --images --masks`` reads them.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

# NAPARI_MIA_SHARED: the folder holding data/ when it is not ../shared (as for the tests).
DSB = Path(os.environ.get("NAPARI_MIA_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "dsb2018_fluo"
HELD_OUT_SIZES = {(512, 640), (520, 696)}
SEED = 15


def _link(names, folder: Path) -> None:
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            dst = folder / sub / n
            if not dst.exists():
                dst.symlink_to(DSB / sub / n)


def _upscale(names, folder: Path, k: int) -> None:
    import tifffile
    from skimage.transform import resize

    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for n in names:
        if (folder / "masks" / n).exists():
            continue
        img, mask = tifffile.imread(DSB / "images" / n), tifffile.imread(DSB / "masks" / n)
        shape = (img.shape[0] * k, img.shape[1] * k)
        big = resize(img, shape + img.shape[2:], order=1, preserve_range=True, anti_aliasing=False)
        tifffile.imwrite(folder / "images" / n, np.round(big).astype(img.dtype))
        tifffile.imwrite(folder / "masks" / n,
                         resize(mask, shape, order=0, preserve_range=True, anti_aliasing=False).astype(mask.dtype))


def build(out: Path, upscaled: int = 24) -> dict[str, int]:
    rows = list(csv.DictReader((DSB / "index.csv").open()))
    names = {r["name"] + ".tif": (int(r["height"]), int(r["width"])) for r in rows}
    held = sorted(n for n, hw in names.items() if hw in HELD_OUT_SIZES)
    train = sorted(n for n in names if n not in held)
    _link(train, out / "train")
    _link(held, out / "kind")
    pick = np.random.default_rng(SEED).permutation(len(held))
    magnified, tune = [held[i] for i in pick[:upscaled]], [held[i] for i in pick[upscaled:upscaled + 3]]
    _link(magnified, out / "x1")
    _upscale(magnified, out / "x3", 3)
    _upscale(magnified, out / "x4", 4)
    _upscale(tune, out / "x4_tune", 4)
    return {"train": len(train), "kind": len(held), "x1": len(magnified), "x3": len(magnified), "x4": len(magnified), "x4_tune": 3}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--upscaled", type=int, default=24, help="held-out images to upscale (default 24)")
    a = p.parse_args()
    for k, v in build(a.out, a.upscaled).items():
        print(f"{a.out / k}: {v} images")
