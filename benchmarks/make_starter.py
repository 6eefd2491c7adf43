"""Make the fluorescence-nuclei starter that ships in the package (src/napari_mia/starters/nuclei.pt).

    PYTHONPATH=src .venv/bin/python benchmarks/make_starter.py WORK [--minutes 60] [--seed 0] [--install]

1. The training images: ../shared/data/dsb2018_fluo (CC0) without the held-out kinds of ``heldout_sets.py``
   (so that its held-out scores are honest) and without the package's sample frames (so that the demo's
   prediction is of images it never saw).
2. napari-mia's own command, as a user runs it (no --config):
   ``napari-mia train --images WORK/train/images --masks WORK/train/masks --label-mode instances
   --minutes M --seed S --out WORK/nuclei_full.pt``.
3. The file made compact: the kept weights in float16 (napari-mia trains and predicts with them in float32),
   nothing kept to resume the run; its rounds, record and methods paragraph stay.
4. Scored by ``napari-mia evaluate`` (diameter auto, the default) per image on WORK/heldout's kind, x1, x3 and
   x4 sets, the scores written into the file's model card; the float32 file on kind too, to compare.
5. ``--install`` copies it into the package only when its mean held-out object F1 beats the installed
   starter's (one file version in the repository: regenerate it only when the held-out scores improve).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout import evaluate  # noqa: E402
from heldout_sets import DSB, build  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INSTALLED = REPO / "src" / "napari_mia" / "starters" / "nuclei.pt"
SETS = ("kind", "x1", "x3", "x4")
SET_WORDS = {"kind": "other experiments of the challenge (512x640 and 520x696 fields)",
             "x1": "24 of those", "x3": "the same 24 upscaled 3x", "x4": "the same 24 upscaled 4x"}

CARD = {
    "title": "Nuclei (fluorescence) starter",
    "meant_for": "2D fluorescence images of nuclei (DAPI, Hoechst and the like), one channel, at any magnification "
                 "(prediction rescales the image to the nuclei size it learned: diameter auto). Predict before "
                 "labelling anything, then correct and fine-tune (train --from nuclei).",
    "not_meant_for": "H&E or other brightfield stains, cytoplasm or whole cells, 3D stacks as volumes (each plane "
                     "is predicted alone), images where nuclei are not the bright objects.",
    "licence": "the training images and masks: CC0 1.0 (Kaggle Data Science Bowl 2018 / BBBC038 stage1_train, "
               "with community mask fixes); the weights: BSD-3-Clause, as napari-mia.",
    "citation": "Caicedo et al., Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl. "
                "Nature Methods 16:1247-1253 (2019).",
}


def training_folder(work: Path) -> Path:
    """DSB without the held-out kinds and the sample frames, as symlinks."""
    heldout = work / "heldout"
    build(heldout)
    sample = (REPO / "src" / "napari_mia" / "sample_data" / "SOURCES.txt").read_text().split()
    sample_ids = {w for w in sample if len(w) == 64}
    train = work / "train"
    for sub in ("images", "masks"):
        (train / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((heldout / "train" / sub).iterdir()):
            if f.stem not in sample_ids and not (train / sub / f.name).exists():
                (train / sub / f.name).symlink_to(DSB / sub / f.name)
    return train


def compact(full: Path, out: Path) -> None:
    import torch

    content = torch.load(full, map_location="cpu", weights_only=True)
    content["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in content["state_dict"].items()}
    for key in ("last_state_dict", "optimizer", "run_state", "best_epoch_state"):
        content.pop(key, None)
    torch.save(content, out)


def scores(model: Path, heldout: Path, sets=SETS) -> list[dict]:
    rows = []
    for name in sets:
        folder = heldout / name
        mean, seconds = evaluate(model, folder, None)
        rows.append({"set": name, "images": len(list((folder / "images").iterdir())), "what": SET_WORDS[name],
                     "fg_iou": float(mean["fg_iou"]), "object_f1": float(mean["object_f1"]),
                     "ap": float(mean["ap"]), "seconds": round(seconds)})
        print(f"  {model.name} on {name}: fg IoU {rows[-1]['fg_iou']:.3f}, object F1 {rows[-1]['object_f1']:.3f} "
              f"({seconds:.0f} s)", flush=True)
    return rows


def write_card(model: Path, held_out: list[dict], minutes: float, seed: int, images: int) -> None:
    import torch

    content = torch.load(model, map_location="cpu", weights_only=True)
    steps = sum(r.get("steps") or 0 for r in content.get("rounds") or [])
    content["card"] = {**CARD, "held_out": held_out,
                       "trained_on": f"{images} images of {DSB.name} (fluorescence nuclei, mostly 256x256 and "
                                     "360x360 fields of many experiments), their instance masks",
                       "training": f"napari-mia train --label-mode instances --minutes {minutes:g} --seed {seed} on a "
                                   f"2-core CPU: {steps} steps (benchmarks/make_starter.py)"}
    torch.save(content, model)


def mean_f1(model: Path) -> float:
    import torch

    card = torch.load(model, map_location="cpu", weights_only=True).get("card") or {}
    rows = card.get("held_out") or []
    return sum(r["object_f1"] for r in rows) / len(rows) if rows else float("-inf")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-train", action="store_true", help="WORK/nuclei_full.pt is already trained")
    p.add_argument("--install", action="store_true",
                   help="copy into the package if it beats the installed starter on the held-out sets")
    a = p.parse_args()
    train = training_folder(a.work)
    images = len(list((train / "images").iterdir()))
    full, small = a.work / "nuclei_full.pt", a.work / "nuclei.pt"
    if not a.skip_train:
        cmd = [sys.executable, "-m", "napari_mia.cli", "train", "--images", str(train / "images"), "--masks",
               str(train / "masks"), "--label-mode", "instances", "--minutes", f"{a.minutes:g}", "--seed",
               str(a.seed), "--out", str(full), "--quiet"]
        print(" ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    compact(full, small)
    print(f"{full.name}: {full.stat().st_size / 1e6:.1f} MB; "
          f"{small.name} (float16): {small.stat().st_size / 1e6:.1f} MB")
    held_out = scores(small, a.work / "heldout")
    scores(full, a.work / "heldout", ("kind",))  # float16 against float32: the same predictions?
    write_card(small, held_out, a.minutes, a.seed, images)
    if a.install:
        new, old = mean_f1(small), mean_f1(INSTALLED) if INSTALLED.is_file() else float("-inf")
        if new > old:
            INSTALLED.parent.mkdir(exist_ok=True)
            shutil.copyfile(small, INSTALLED)
            print(f"Installed {INSTALLED} (mean held-out object F1 {new:.3f}, the previous starter's {old:.3f}).")
        else:
            print(f"Not installed: mean held-out object F1 {new:.3f} does not beat the installed starter's {old:.3f}.")


if __name__ == "__main__":
    main()
