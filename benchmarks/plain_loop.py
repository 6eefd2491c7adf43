"""The baseline napari-mia has to beat: a plain segmentation-models-pytorch loop, trained for a given time.

    PYTHONPATH=src .venv/bin/python benchmarks/plain_loop.py --images DIR --masks DIR --minutes 5 --out plain.pt

What a person writes in about 40 lines without napari-mia:

- ``smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=3)``, from scratch;
- every image read into memory once, normalised per image from its 1st to its 99.8th percentile
  to 0-1 (the same function napari-mia predicts with, so that the model sees the same values);
- targets: napari-mia's own instance-mode encoding (background / interior / boundary,
  ``targets.encode_instances``), so that ``napari-mia evaluate`` decodes the output as it was taught;
- each step: 4 random 256 px crops (an image drawn uniformly, then a place in it; images smaller
  than a crop are padded by reflection), each flipped left-right and up-down with probability 0.5;
- smp's ``DiceLoss("multiclass")``, Adam at 1e-3, constant; no validation, no BatchNorm settling,
  no schedule, no zoom or intensity augmentation;
- stops at the first step that ends after ``--minutes`` of wall time (counted from the first step,
  after the images are read) and keeps the last weights.

The weights are saved as a napari-mia model file (instance mode, the settings it was trained with,
``keep: last``) that ``napari-mia evaluate`` and ``predict`` read; the model knows no object
diameter, as such a loop would not. ``<out stem>_record.csv`` beside it holds one row per step
(napari-mia's record columns), which ``time_budget.py`` counts.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np


def read_pairs(images: Path, masks: Path, limit: int | None = None):
    from napari_mia.engine.images import normalize, pair_files, read_image
    from napari_mia.engine.targets import encode_instances

    pairs = pair_files(images, masks)[:limit]
    xs = [normalize(np.asarray(read_image(i), np.float32)[..., None], "percentile")[..., 0] for i, _ in pairs]
    ys = [encode_instances(np.asarray(read_image(m))).astype(np.int64) for _, m in pairs]
    return xs, ys


def crop(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator):
    pad = [(0, max(0, size - s)) for s in x.shape]
    x, y = np.pad(x, pad, mode="reflect"), np.pad(y, pad, mode="reflect")
    r, c = rng.integers(0, x.shape[0] - size + 1), rng.integers(0, x.shape[1] - size + 1)
    x, y = x[r:r + size, c:c + size], y[r:r + size, c:c + size]
    for axis in (0, 1):
        if rng.random() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    return x, y


def train(xs, ys, minutes: float, device: str, seed: int = 0, batch: int = 4, size: int = 256):
    """The loop itself: returns the model and the loss of every step."""
    import segmentation_models_pytorch as smp
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=3).to(device)
    loss_fn = smp.losses.DiceLoss("multiclass")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < minutes * 60:
        picks = [crop(xs[i], ys[i], size, rng) for i in rng.integers(0, len(xs), batch)]
        x = torch.from_numpy(np.stack([p[0] for p in picks])[:, None].copy()).to(device)
        y = torch.from_numpy(np.stack([p[1] for p in picks]).copy()).to(device)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


def save(model, losses, out: Path, minutes: float, seed: int) -> Path:
    """As a napari-mia model file, with the settings that describe the run above."""
    from napari_mia.engine import modelfile
    from napari_mia.engine.record import COLUMNS, record_path
    from napari_mia.engine.settings import Settings

    s = Settings()
    s.model.label_mode = "instances"
    s.update(loss="dice", lr_schedule="constant", keep="last", val_split=0.0, epochs=0, minutes=minutes,
             seed=seed, zoom=0.0, brightness_contrast=0.0, gamma=0.0, noise=0.0)
    history = [{"epoch": 1, "iteration": i + 1, "loss": v} for i, v in enumerate(losses)]
    path = modelfile.save(out, model.state_dict(), s, history=[], plain_loop_steps=len(losses))
    with record_path(out).open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, restval="")
        w.writeheader()
        w.writerows({"kind": "iteration", **h, "lr": 1e-3} for h in history)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--masks", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=5.0, help="wall time of the loop (default: 5)")
    p.add_argument("--out", type=Path, required=True, help="napari-mia model file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda where there is one)")
    p.add_argument("--limit", type=int, help="only the first N image pairs (quick checks)")
    a = p.parse_args()
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    xs, ys = read_pairs(a.images, a.masks, a.limit)
    model, losses = train(xs, ys, a.minutes, device, a.seed)
    save(model, losses, a.out, a.minutes, a.seed)
    print(f"Plain loop: {len(losses)} steps in {a.minutes:g} minutes on {device}, {len(xs)} images, "
          f"last loss {losses[-1]:.4f}; saved to {a.out}")


if __name__ == "__main__":
    main()
