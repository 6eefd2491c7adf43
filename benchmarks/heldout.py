"""Per-image scores of models on the held-out sets of ``heldout_sets.py``, through ``napari-mia evaluate``.

    PYTHONPATH=src .venv/bin/python benchmarks/heldout.py OUT MODEL [MODEL ...] [--plain]

For each model: the mean over images of fg IoU, object F1 at IoU 0.5 and AP (0.5-0.95) on
``OUT/kind`` (other experiments, never trained on), on ``OUT/x1`` (24 of them at their own size)
and on the same upscaled 3x and 4x with ``--diameter auto`` (``--plain``: also without it, slow on
a CPU: the 4x images are 2080x2784). The CSVs of every run are written beside the models.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path


def evaluate(model: Path, folder: Path, diameter: str | None) -> tuple[dict, float]:
    tag = f"{folder.name}{'_auto' if diameter else ''}"
    out = model.with_name(f"{model.stem}_{tag}.csv")
    cmd = [sys.executable, "-m", "napari_mia.cli", "evaluate", "--model", str(model), "--images",
           str(folder / "images"), "--masks", str(folder / "masks"), "--out", str(out), "--quiet"]
    if diameter:
        cmd += ["--diameter", diameter]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return list(csv.DictReader(out.open()))[-1], seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sets", type=Path)
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--plain", action="store_true", help="also the upscaled sets without --diameter")
    a = p.parse_args()
    runs = [("kind", None), ("x1", None), ("x3", "auto"), ("x4", "auto")]
    if a.plain:
        runs += [("x3", None), ("x4", None)]
    print("| model | set | diameter | images | fg IoU | object F1 | AP 0.5-0.95 | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in a.models:
        for name, diameter in runs:
            folder = a.sets / name
            mean, seconds = evaluate(model, folder, diameter)
            n = len(list((folder / "images").iterdir()))
            print(f"| {model.stem} | {name} | {diameter or '-'} | {n} | {float(mean['fg_iou']):.3f} | "
                  f"{float(mean['object_f1']):.3f} | {float(mean['ap']):.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
