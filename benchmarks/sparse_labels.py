"""Sparse labels against the same labels given the old way and against full labels (issue #16).

    PYTHONPATH=src .venv/bin/python benchmarks/sparse_labels.py SETS OUT --config new.yaml

SETS: the folders of ``heldout_sets.py`` (``train`` to learn from, ``kind`` held out by kind: image
sizes never trained on). From each training image's full mask, a person's quick labelling is
imitated: 3 whole nuclei (chosen at random, seeded) and background painted on purpose, either as
a few dabs (discs in empty places) or as an outline around each chosen nucleus. Models, all trained
the same number of steps with the same ``--config``:

* ``sparse_dabs`` / ``sparse_outline`` / ``sparse_outline_dabs``: sparse labels (``--sparse``: 0 = not
  labelled, 1 = background, 2.. = nuclei) with the background painted as dabs, as an outline, or both;
* ``sparse_nuclei_dabs``: what a person in a hurry paints: the same 3 whole nuclei and 6 background dabs, no
  outlines (its dabs drawn with a generator of their own, so that the other variants stay as they were);
* ``old_way``: the same 3 nuclei, every other pixel background (unpainted = background, no ``--sparse``);
* ``full``: every nucleus labelled.

A model name ``LABELS@CANDIDATE`` trains on those labels with the sparse-label settings of a candidate
(``CANDIDATES``: the ring of background around painted objects, unlabelled pixels as weak background),
e.g. ``sparse_nuclei_dabs@noring``; without ``@`` the ``--config``'s own settings. ``--train-images N``
trains on N training images (seeded) and ``--kind-images N`` scores N held-out images (seeded), to keep
a run affordable.

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
HURRIED_DABS = 6  # sparse_nuclei_dabs
# Sparse-label settings per candidate (data.sparse_ring, data.sparse_unlabelled).
CANDIDATES = {
    "noring": {"sparse_ring": 0.0, "sparse_unlabelled": 0.0},
    "ring": {"sparse_ring": 0.15, "sparse_unlabelled": 0.0},
    "ring30": {"sparse_ring": 0.3, "sparse_unlabelled": 0.0},
    "unlabelled": {"sparse_ring": 0.0, "sparse_unlabelled": 0.05},
    "ring_unlabelled": {"sparse_ring": 0.15, "sparse_unlabelled": 0.05},
}
OUTLINE = 4  # pixels of background painted around a chosen nucleus


def _disc(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def _dabs(labels: np.ndarray, full: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`labels` with `n` background dabs: discs where the full mask has no nucleus at all (a person paints
    clearly empty places)."""
    from scipy.ndimage import binary_erosion

    out = labels.copy()
    free = binary_erosion(full == 0, structure=_disc(DAB_RADIUS), border_value=0)
    ys, xs = np.nonzero(free)
    disc = _disc(DAB_RADIUS)
    for i in rng.choice(len(ys), size=min(n, len(ys)), replace=False) if len(ys) else []:
        y0, x0 = ys[i] - DAB_RADIUS, xs[i] - DAB_RADIUS
        region = out[y0:y0 + disc.shape[0], x0:x0 + disc.shape[1]]
        region[disc[:region.shape[0], :region.shape[1]] & (region == 0)] = 1
    return out


def sparse_masks(full: np.ndarray, rng: np.random.Generator,
                 hurried: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """One full instance mask -> the variants' masks (see the module's docstring); `hurried` draws the dabs
    of ``sparse_nuclei_dabs``."""
    from scipy.ndimage import binary_dilation

    ids = np.unique(full[full > 0])
    chosen = rng.choice(ids, size=min(NUCLEI, len(ids)), replace=False) if len(ids) else []
    old = np.zeros(full.shape, np.uint16)
    for k, v in enumerate(chosen, start=1):
        old[full == v] = k
    nuclei = np.where(old > 0, old + 1, 0).astype(np.uint16)
    dabs = _dabs(nuclei, full, DABS, rng)
    # Outline: background around each chosen nucleus, as far as the next nucleus.
    outline = nuclei.copy()
    ring = binary_dilation(old > 0, structure=_disc(OUTLINE)) & (full == 0)
    outline[ring] = 1
    both = dabs.copy()
    both[ring] = 1
    out = {"sparse_dabs": dabs, "sparse_outline": outline, "sparse_outline_dabs": both, "old_way": old}
    if hurried is not None:
        out["sparse_nuclei_dabs"] = _dabs(nuclei, full, HURRIED_DABS, hurried)
    return out


def build(sets: Path, out: Path, seed: int = 0) -> None:
    import tifffile

    from napari_mia.engine.images import list_images, read_image

    names = ("sparse_dabs", "sparse_outline", "sparse_outline_dabs", "old_way", "sparse_nuclei_dabs")
    missing = [n for n in names if not (out / n).is_dir()]
    for name in missing:
        (out / name).mkdir(parents=True)
    rng = np.random.default_rng(seed)  # the same draws for every variant, whichever are made now
    hurried = np.random.default_rng((seed, 1))
    for f in list_images(sets / "train" / "masks"):
        for name, mask in sparse_masks(read_image(f), rng, hurried).items():
            if name in missing:
                tifffile.imwrite(out / name / (f.stem + ".tif"), mask, compression="zlib")


def subset(folder: Path, out: Path, n: int, seed: int = 0) -> Path:
    """`out` with links to n of `folder`'s images and masks (seeded), or `folder` itself if n is 0."""
    from napari_mia.engine.images import list_images

    if not n:
        return folder
    files = list_images(folder / "images")
    chosen = sorted(np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False))
    masks = {p.stem: p for p in list_images(folder / "masks")}
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i in chosen:
        f = files[i]
        for src, sub in ((f, "images"), (masks[f.stem], "masks")):
            if not (out / sub / src.name).exists():
                (out / sub / src.name).symlink_to(src.resolve())
    return out


def candidate_config(config: Path, candidate: str, out: Path) -> Path:
    from napari_mia.engine.settings import Settings

    s = Settings.load(config)
    s.update(**CANDIDATES[candidate])
    path = out / f"config_{candidate}.yaml"
    s.save(path)
    return path


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
    p.add_argument("--models", nargs="+",
                   default=["sparse_outline_dabs", "sparse_outline", "sparse_dabs", "old_way", "full"],
                   help="label variants, each optionally @CANDIDATE")
    p.add_argument("--train-images", type=int, default=0, help="train on this many training images (seeded; 0: all)")
    p.add_argument("--kind-images", type=int, default=0, help="score this many held-out images (seeded; 0: all)")
    p.add_argument("--reuse", action="store_true", help="score a model already in OUT instead of training it again")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    build(a.sets, a.out)
    train_set = subset(a.sets / "train", a.out / f"train{a.train_images}", a.train_images)
    kind_set = subset(a.sets / "kind", a.out / f"kind{a.kind_images}", a.kind_images)
    cli = [sys.executable, "-m", "napari_mia.cli"]
    print("| model | training s | fg IoU | object F1 | AP 0.5-0.95 | precision | recall | objects found (true) "
          "| images |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in a.models:
        labels, _, candidate = name.partition("@")
        masks = a.sets / "train" / "masks" if labels == "full" else a.out / labels
        config = candidate_config(a.config, candidate, a.out) if candidate else a.config
        model = a.out / f"{name}.pt"
        train = cli + ["train", "--images", str(train_set / "images"), "--masks", str(masks),
                       "--config", str(config), "--out", str(model), "--quiet"]
        if labels.startswith("sparse"):
            train.append("--sparse")
        seconds = float("nan") if a.reuse and model.exists() else run(train, a.out / f"{name}.log")
        scores = a.out / f"{name}_kind.csv"
        run(cli + ["evaluate", "--model", str(model), "--images", str(kind_set / "images"), "--masks",
                   str(kind_set / "masks"), "--out", str(scores), "--quiet"], a.out / f"{name}_eval.log")
        rows = list(csv.DictReader(scores.open()))
        mean = rows[-1]
        print(f"| {name} | {seconds:.0f} | {float(mean['fg_iou']):.3f} | {float(mean['object_f1']):.3f} | "
              f"{float(mean['ap']):.3f} | {float(mean['precision']):.3f} | {float(mean['recall']):.3f} | "
              f"{float(mean['predicted_objects']):.0f} ({float(mean['true_objects']):.0f}) | {len(rows) - 1} |",
              flush=True)


if __name__ == "__main__":
    main()
