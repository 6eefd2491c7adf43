"""Engine overhead: training and tiled prediction against the bare model.

    .venv/bin/python benchmarks/throughput.py [--steps 12] [--patch 256] [--batch 4]

Prints two ratios (target >= 0.9 each):
  training:   bare step time / engine step time (same model, batch, patch, loss, optimizer)
  prediction: bare forward time of the same tiles / predictor time (normalise, tile, blend, decode)
Uses ../shared/data (DSB nuclei, the large H&E region) when present, else the bundled sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from napari_mia.engine.events import IterationEnd  # noqa: E402
from napari_mia.engine.losses import cross_entropy  # noqa: E402
from napari_mia.engine.trained_model import build_model  # noqa: E402
from napari_mia.engine.predictor import Predictor  # noqa: E402
from napari_mia.engine.tiling import tile_starts  # noqa: E402
from napari_mia.engine.settings import Settings  # noqa: E402
from napari_mia.engine.trainer import Trainer  # noqa: E402


def training_ratio(steps: int, patch: int, batch: int) -> tuple[float, float]:
    from napari_mia._sample_data import load_sample_arrays

    images, labels = load_sample_arrays()
    s = Settings().update(label_mode="instances", patch_width=patch, patch_height=patch, batch_size=batch,
                          steps_per_epoch=steps + 2, epochs=1, val_split=0, class_weighting="none")
    trainer = Trainer(s)
    stamps = [time.perf_counter() for ev in trainer.train([(images[i], labels[i]) for i in range(len(images))])
              if isinstance(ev, IterationEnd)]
    engine = (stamps[-1] - stamps[1]) / (len(stamps) - 2)  # first steps warm up

    torch.manual_seed(0)
    model = build_model(s.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, patch, patch)
    y = torch.randint(0, 3, (batch, patch, patch))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    bare = float(np.mean(times[2:]))
    return bare, engine


def prediction_ratio(size: int) -> tuple[float, float]:
    s = Settings().update(label_mode="instances")
    model = build_model(s.model).eval()
    rng = np.random.default_rng(0)
    image = (rng.random((size, size)) * 255).astype(np.uint8)
    pred = Predictor(model, s, torch.device("cpu"), tile=512, overlap=128)
    pred.predict(image[:512, :512])  # warm up
    t0 = time.perf_counter()
    pred.predict(image)
    tiled = time.perf_counter() - t0
    n = len(tile_starts(size, 512, 128)) ** 2
    x = torch.randn(pred.batch_size, 1, 512, 512)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(-(-n // pred.batch_size)):
            model(x)
    bare = time.perf_counter() - t0
    return bare, tiled


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=1536)
    a = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    bare, engine = training_ratio(a.steps, a.patch, a.batch)
    print(f"training step: bare {bare:.3f} s, engine {engine:.3f} s, ratio {bare / engine:.3f}")
    bare, tiled = prediction_ratio(a.size)
    print(f"tiled prediction of {a.size}x{a.size}: bare forwards {bare:.2f} s, predictor {tiled:.2f} s, "
          f"ratio {bare / tiled:.3f}")


if __name__ == "__main__":
    main()
