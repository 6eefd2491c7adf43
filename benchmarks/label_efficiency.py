"""Issue #29's honesty checks: is the learning-curve forecast right, and does labelling the images the model is
most unsure of beat labelling images chosen at random? On the user's path: the documented commands
(``napari-mia curve``, ``rank``, ``train``, with their defaults and no --config), run as subprocesses.

    PYTHONPATH=src .venv/bin/python benchmarks/label_efficiency.py OUT [--heldout /tmp/heldout] \\
        [--seeds 0 1] [--minutes 2] [--pool 128] [--budgets 8 24] [--by entropy]

Held-out sets from ``benchmarks/heldout_sets.py`` (build them first): the pool of labelled images is drawn
from HELDOUT/train, the test images are HELDOUT/x1 (24 images of a kind never trained on, at their own size),
scored per image (object F1 at IoU 0.5) and averaged.

Per seed:

1. **Forecast.** ``napari-mia curve`` on POOL images (nested subsets 1/8, 1/4, 1/2, all), --minutes each. The
   curve through the three smaller subsets forecasts the score of the largest (twice the labels of the third):
   the error is measured minus forecast, and whether the measured score fell in the 80% interval.
2. **Which measure.** The 1/8 subset's model ranks the test images (``rank``, both measures); the Spearman
   correlation of each measure with the image's error (1 - object F1) says which one knows where the model fails.
3. **Uncertainty against random.** From the 1/8 subset's images and model, BUDGET more images of the rest of the
   pool are labelled: the top of ``rank --by BY`` (whole images), or BUDGET drawn at random. A model is trained on each
   (``train --minutes``, same seed) and scored on the test images.

It prints a table and writes OUT/results_BY.json. Run again with another --by, it keeps what is made (the
curves, the random arms) and trains only the new arms. Each training must run alone on the machine (the time plan
adapts to the speed it sees).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_mia.engine.curve import fit_curve  # noqa: E402

CLI = [sys.executable, "-m", "napari_mia.cli"]
KEY = "object_f1"


def cli(*args, log: Path) -> float:
    """Run a napari-mia command; its seconds. Output to `log`."""
    t = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with open(log, "w") as f:
        rc = subprocess.run([*CLI, *map(str, args)], stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        raise SystemExit(f"{' '.join(map(str, args[:1]))} failed: see {log}")
    return time.monotonic() - t


def link_folder(names, src: Path, dst: Path) -> Path:
    for sub in ("images", "masks"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            if not (dst / sub / n).exists():
                os.symlink((src / sub / n).resolve(), dst / sub / n)
    return dst


def per_image(scores_csv: Path) -> dict[str, float]:
    with open(scores_csv) as f:
        return {r["name"]: float(r[KEY]) if r[KEY] else np.nan for r in csv.DictReader(f) if r["name"] != "mean"}


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def one_seed(seed: int, a, out: Path) -> dict:
    train, test = a.heldout / "train", a.heldout / "x1"
    every = sorted(p.name for p in (train / "images").iterdir())
    rng = np.random.default_rng(1000 + seed)
    pool_names = [every[i] for i in rng.permutation(len(every))[:a.pool]]
    pool = link_folder(pool_names, train, out / "pool")
    result: dict = {"seed": seed}

    # 1. the forecast
    curve_dir = out / "curve"
    t = None  # a curve already made (the script was run again): kept
    if not (curve_dir / "curve.csv").is_file():
        t = cli("curve", "--images", pool / "images", "--masks", pool / "masks", "--test-images", test / "images",
                "--test-masks", test / "masks", "--minutes", a.minutes, "--seed", seed, "--out", curve_dir,
                "--quiet", log=out / "curve.log")
    subsets = sorted(curve_dir.glob("subset_*"))
    with open(curve_dir / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    labels = [float(r["labelled_objects"]) for r in rows]
    names = sorted(per_image(subsets[0] / "test_scores.csv"))
    tables = [[per_image(s / "test_scores.csv").get(n, np.nan) for n in names] for s in subsets]
    fit3 = fit_curve(labels[:3], tables[:3], seed)
    measured = float(np.nanmean(tables[3]))
    # At the largest subset's own labels (about, not exactly, twice the third's); the interval is the doubling's.
    forecast = float(fit3(labels[3]))
    result["forecast"] = {
        "labels": labels, "images": [int(r["images"]) for r in rows], "scores": [float(r[KEY]) for r in rows],
        "forecast_at_largest": forecast, "interval": [fit3.now + fit3.low, fit3.now + fit3.high],
        "measured_at_largest": measured, "error": measured - forecast,
        "inside": bool(fit3.now + fit3.low <= measured <= fit3.now + fit3.high),
        "gain_forecast": fit3.gain, "gain_measured": measured - float(np.nanmean(tables[2])),
        "curve_seconds": t, "command_forecast": next(line for line in (out / "curve.log").read_text().splitlines()
                                 if line.startswith(("Twice the", "The curve has"))),
    }

    # 2. which measure knows where the model fails
    base = subsets[0]
    base_model = base / "model.pt"
    t = cli("rank", "--model", base_model, "--images", test / "images", "--out", out / "rank_test.csv", "--quiet",
            log=out / "rank_test.log")
    with open(out / "rank_test.csv") as f:
        ranked_test = [r for r in csv.DictReader(f) if not r["tile"]]
    err = per_image(base / "test_scores.csv")
    keep = [r for r in ranked_test if np.isfinite(err.get(r["name"], np.nan))]
    result["measures"] = {m: spearman([float(r[m]) for r in keep], [1 - err[r["name"]] for r in keep])
                          for m in ("disagreement", "entropy")}
    result["rank_test_seconds"] = t

    # 3. uncertainty against random
    base_names = sorted(p.name for p in (base / "images").iterdir())
    rest = [n for n in pool_names if n not in base_names]
    rest_dir = link_folder(rest, train, out / "rest")
    ranking = out / f"rank_{a.by}.csv"
    t = None
    if not ranking.is_file():
        t = cli("rank", "--model", base_model, "--images", rest_dir / "images", "--by", a.by, "--out", ranking,
                "--quiet", log=out / f"rank_{a.by}.log")
    result["rank_seconds"], result["rank_images"] = t, len(rest)
    with open(ranking) as f:
        order = [r["name"] for r in csv.DictReader(f) if not r["tile"]]
    arms = {}
    for budget in a.budgets:
        picks = {a.by: order[:budget],
                 "random": [rest[i] for i in np.random.default_rng(2000 + seed).permutation(len(rest))[:budget]]}
        for arm, chosen in picks.items():
            d = link_folder(base_names + chosen, train, out / f"{arm}_{budget}")
            t = None
            if not (d / "model_rounds.csv").is_file():
                t = cli("train", "--images", d / "images", "--masks", d / "masks", "--label-mode", "instances",
                        "--minutes", a.minutes, "--seed", seed, "--test-images", test / "images", "--test-masks",
                        test / "masks", "--out", d / "model.pt", "--quiet", log=d / "train.log")
            with open(d / "model_rounds.csv") as f:
                last = list(csv.DictReader(f))[-1]
            arms[f"{arm}_{budget}"] = {"images": len(base_names) + budget, "objects": float(last["objects"]),
                                       KEY: float(last[f"test_{KEY}"]), "fg_iou": float(last["test_fg_iou"]),
                                       "steps": int(last["steps"]), "seconds": t}
    result["arms"] = arms
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--heldout", type=Path, default=Path("/tmp/heldout"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--pool", type=int, default=128)
    p.add_argument("--budgets", type=int, nargs="+", default=[8, 24])
    p.add_argument("--by", choices=["disagreement", "entropy"], default="entropy",
                   help="the measure that ranks (rank --by)")
    a = p.parse_args()
    results = []
    for seed in a.seeds:
        d = a.out / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        results.append(one_seed(seed, a, d))
        (a.out / f"results_{a.by}.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(results[-1], indent=1), flush=True)
    for r in results:
        fc = r["forecast"]
        print(f"seed {r['seed']}: forecast {fc['forecast_at_largest']:.3f} ({fc['interval'][0]:.3f}-"
              f"{fc['interval'][1]:.3f}), measured {fc['measured_at_largest']:.3f}, error {fc['error']:+.3f}; "
              f"measures {r['measures']}; " + "; ".join(f"{k} {v[KEY]:.3f}" for k, v in r["arms"].items()))


if __name__ == "__main__":
    main()
