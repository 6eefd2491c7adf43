"""Sparse labels against the same labels given the old way and against full labels (issue #16).

    PYTHONPATH=src .venv/bin/python benchmarks/sparse_labels.py SETS OUT --config new.yaml

SETS: the folders of ``heldout_sets.py`` (``train`` to learn from, ``kind`` held out by kind: image
sizes never trained on). From each training image's full mask, a person's quick labelling is
imitated: 3 whole nuclei (chosen at random, seeded) and background painted on purpose, either as
a few dabs (discs in empty places) or as an outline around each chosen nucleus. Models, all trained
the same number of steps with the same ``--config``:

* ``sparse_dabs`` / ``sparse_outline`` / ``sparse_outline_dabs``: sparse labels (``--sparse``: 0 = not
  labelled, 1 = background, 2.. = nuclei) with the background painted as dabs, as an outline, or both;
* ``old_way``: the same 3 nuclei, every other pixel background (unpainted = background, no ``--sparse``);
* ``full``: every nucleus labelled.

Each is scored per image on ``SETS/kind`` through ``napari-mia evaluate`` (fg IoU, object F1 at IoU
0.5, AP), the mean over images printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NUCLEI = 3
DABS, DAB_RADIUS = 4, 6
OUTLINE = 4  # pixels of background painted around a chosen nucleus


def _disc(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def sparse_masks(full: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One full instance mask -> the variants' masks (see the module's docstring)."""
    from scipy.ndimage import binary_dilation, binary_erosion

    ids = np.unique(full[full > 0])
    chosen = rng.choice(ids, size=min(NUCLEI, len(ids)), replace=False) if len(ids) else []
    old = np.zeros(full.shape, np.uint16)
    for k, v in enumerate(chosen, start=1):
        old[full == v] = k
    nuclei = np.where(old > 0, old + 1, 0).astype(np.uint16)
    # Dabs: discs where the full mask has no nucleus at all (a person paints clearly empty places).
    dabs = nuclei.copy()
    free = binary_erosion(full == 0, structure=_disc(DAB_RADIUS), border_value=0)
    ys, xs = np.nonzero(free)
    disc = _disc(DAB_RADIUS)
    for i in rng.choice(len(ys), size=min(DABS, len(ys)), replace=False) if len(ys) else []:
        y0, x0 = ys[i] - DAB_RADIUS, xs[i] - DAB_RADIUS
        region = dabs[y0:y0 + disc.shape[0], x0:x0 + disc.shape[1]]
        region[disc[:region.shape[0], :region.shape[1]] & (region == 0)] = 1
    # Outline: background around each chosen nucleus, as far as the next nucleus.
    outline = nuclei.copy()
    ring = binary_dilation(old > 0, structure=_disc(OUTLINE)) & (full == 0)
    outline[ring] = 1
    both = dabs.copy()
    both[ring] = 1
    return {"sparse_dabs": dabs, "sparse_outline": outline, "sparse_outline_dabs": both, "old_way": old}


def build(sets: Path, out: Path, seed: int = 0) -> None:
    import tifffile

    from napari_mia.engine.images import list_images, read_image

    names = ("sparse_dabs", "sparse_outline", "sparse_outline_dabs", "old_way")
    missing = [n for n in names if not (out / n).is_dir()]
    for name in missing:
        (out / name).mkdir(parents=True)
    rng = np.random.default_rng(seed)  # the same draws for every variant, whichever are made now
    for f in list_images(sets / "train" / "masks"):
        for name, mask in sparse_masks(read_image(f), rng).items():
            if name in missing:
                tifffile.imwrite(out / name / (f.stem + ".tif"), mask, compression="zlib")


def run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sets", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--config", type=Path, required=True, help="settings for every model (label mode instances)")
    p.add_argument("--models", nargs="+", default=["sparse_outline_dabs", "sparse_outline", "sparse_dabs", "old_way", "full"])
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    build(a.sets, a.out)
    cli = [sys.executable, "-m", "napari_mia.cli"]
    print("| labels | training s | fg IoU | object F1 | AP 0.5-0.95 | images |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in a.models:
        masks = a.sets / "train" / "masks" if name == "full" else a.out / name
        model = a.out / f"{name}.pt"
        train = cli + ["train", "--images", str(a.sets / "train" / "images"), "--masks", str(masks),
                       "--config", str(a.config), "--out", str(model), "--quiet"]
        if name.startswith("sparse"):
            train.append("--sparse")
        seconds = run(train, a.out / f"{name}.log")
        scores = a.out / f"{name}_kind.csv"
        run(cli + ["evaluate", "--model", str(model), "--images", str(a.sets / "kind" / "images"), "--masks",
                   str(a.sets / "kind" / "masks"), "--out", str(scores), "--quiet"], a.out / f"{name}_eval.log")
        rows = list(csv.DictReader(scores.open()))
        mean = rows[-1]
        print(f"| {name} | {seconds:.0f} | {float(mean['fg_iou']):.3f} | {float(mean['object_f1']):.3f} | "
              f"{float(mean['ap']):.3f} | {len(rows) - 1} |", flush=True)


if __name__ == "__main__":
    main()
