"""Tiled prediction of a whole H&E slide region in bounded memory, checked against untiled.

    .venv/bin/python benchmarks/large_image.py [IMAGE] [--tile=auto|N[,auto|N...]] [--untiled] [--json]

Trains a small colour model for a few steps (the weights only need to be
fixed, not good), predicts the 2967x2220 slide region tiled (--tile=auto, the
default: as few tiles as the memory budget allows; --tile=512: 512-pixel tiles
overlapping by 128, the tiling before tile="auto"; several, comma-separated, in one
run), and prints for each: the tiling,
the peak memory the prediction added to the process, what an untiled
forward pass of the slide would need (estimated from a 512x512 one), and how
well the tiled result agrees with an untiled prediction of a 768x768 crop
away from the crop's border.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from peak_memory import PeakMemory  # beside this script

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "large_images" / "cmu_small_region_he_noGT.png"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0]) if args else DEFAULT
    tiles = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--tile=")), "auto").split(",")
    import torch

    from napari_mia.engine.images import read_image
    from napari_mia.engine.predictor import Predictor
    from napari_mia.engine.tiling import activation_bytes_per_pixel
    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    torch.manual_seed(0)
    slide = read_image(path)[..., :3]
    s = Settings().update(channels=3, label_mode="classes", epochs=1, steps_per_epoch=30, patch_width=128,
                          patch_height=128, val_split=0, seed=0)
    # A few steps on two crops of the slide itself, the bright background as class 0.
    crops = [slide[:512, :512], slide[1024:1536, 1024:1536]]
    pairs = [(c, (c.mean(-1) < 200).astype(np.uint8)) for c in crops]
    trainer = Trainer(s)
    for _ in trainer.train(pairs):
        pass
    model, device = trainer.model.eval(), trainer.device
    rows, kept = [], {}
    for tile in tiles:
        tiled = Predictor(model, s, device, tile=tile if tile == "auto" else int(tile), overlap=128)
        tiled.probabilities(slide[:512, :512])  # warm-up: one tile's worth of buffers
        base = _peak_mb()
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            probs = tiled.probabilities(slide)
            labels = tiled.decode(probs)
            seconds = time.perf_counter() - t0
        y0, x0, size, margin = 900, 1300, 768, 128
        crop = slide[y0:y0 + size, x0:x0 + size]
        whole = Predictor(model, s, device, tile=None).probabilities(crop)
        inner = (slice(margin, size - margin), slice(margin, size - margin))
        part = probs[:, y0:y0 + size, x0:x0 + size]
        kept[tile] = probs.argmax(0)
        rows.append({"tile": tile, "shape": list(slide.shape), "tiles": str(tiled.last_plan),
                     "seconds": round(seconds, 1), "peak_added_mb": round(mem.added_mb),
                     "peak_rss_growth_mb": round(_peak_mb() - base),
                     "untiled_forward_estimate_mb": round(activation_bytes_per_pixel(model, 3, device) * slide.shape[0] * slide.shape[1] / 2**20),
                     "crop_agreement": round(float((part.argmax(0) == whole.argmax(0))[inner].mean()), 4),
                     "crop_mean_abs_diff": round(float(np.abs(part - whole)[(slice(None), *inner)].mean()), 5),
                     "crop_tissue_fraction": round(float(whole.argmax(0).mean()), 3),
                     "labels_shape": list(labels.shape)})
        del probs, labels
    if "--untiled" in sys.argv:  # the whole slide in one pass (~3 GB on CPU): the reference tiles should meet
        untiled = Predictor(model, s, device, tile=None).probabilities(slide).argmax(0)
        for row in rows:
            row["untiled_agreement"] = round(float((kept[row["tile"]] == untiled).mean()), 5)
    for out in rows:
        if "--json" in sys.argv:
            print(json.dumps(out))
        else:
            for k, v in out.items():
                print(f"{k}: {v}")
            print()


if __name__ == "__main__":
    main()
