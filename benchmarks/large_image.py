"""Tiled prediction of a whole H&E slide region in bounded memory, checked against untiled.

    .venv/bin/python benchmarks/large_image.py [IMAGE] [--json]

Trains a small colour model for a few steps (the weights only need to be
fixed, not good), predicts the 2967x2220 slide region tiled, and prints:
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "large_images" / "cmu_small_region_he_noGT.png"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0]) if args else DEFAULT
    import torch

    from napari_mia.engine.data import read_image
    from napari_mia.engine.predictor import Predictor
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
    tiled = Predictor(model, s, device, tile=512, overlap=128)
    tiled.probabilities(slide[:512, :512])  # warm-up: one tile's worth of buffers
    base = _peak_mb()
    t0 = time.perf_counter()
    probs = tiled.probabilities(slide)
    labels = tiled.decode(probs)
    seconds = time.perf_counter() - t0
    added = _peak_mb() - base

    y0, x0, size, margin = 900, 1300, 768, 128
    crop = slide[y0:y0 + size, x0:x0 + size]
    whole = Predictor(model, s, device, tile=None).probabilities(crop)
    inner = (slice(margin, size - margin), slice(margin, size - margin))
    part = probs[:, y0:y0 + size, x0:x0 + size]
    agree = float((part.argmax(0) == whole.argmax(0))[inner].mean())
    diff = float(np.abs(part - whole)[(slice(None), *inner)].mean())
    untiled_mb = _forward_mb(model, slide.shape[:2], device)
    out = {"shape": list(slide.shape), "seconds": round(seconds, 1), "peak_added_mb": round(added),
           "untiled_forward_estimate_mb": round(untiled_mb), "crop_agreement": round(agree, 4),
           "crop_mean_abs_diff": round(diff, 5), "crop_tissue_fraction": round(float(whole.argmax(0).mean()), 3),
           "labels_shape": list(labels.shape)}
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


def _forward_mb(model, shape, device) -> float:
    """Activations of one untiled forward pass, scaled from a 512x512 one (they grow with the area)."""
    import torch

    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() * o.element_size()))
             for m in model.modules() if not list(m.children())]
    with torch.inference_mode():
        model(torch.zeros(1, 3, 512, 512, device=device))
    for h in hooks:
        h.remove()
    return sum(sizes) / 2**20 * (shape[0] * shape[1]) / 512**2


if __name__ == "__main__":
    main()
