"""Training and prediction speed against bare loops, on one device (a CUDA GPU when there is one).

    .venv/bin/python benchmarks/scale_up.py [--device auto] [--precision auto] [--steps 30] [--batch 8]
                                            [--patch 256] [--size 2048] [--workers -1] [--json]

Prints, all measured in this one run:
  loader:     augmented training patches per second that the engine's DataLoader makes on its own (DSB
              nuclei, its automatic workers), against what the training step consumes: the CPU's
              augmentation must keep up with the GPU
  training:   images (patches) per second of the engine's training step (Trainer, real patches through the
              DataLoader, events, metrics) against a bare loop with the same model, batch, loss, optimizer,
              autocast dtype and memory layout on random tensors already on the device: ratio, target >= 0.9
  prediction: megapixels per second of Predictor.predict (normalise, tile, blend, decode) on a
              size x size field of DSB nuclei against one bare forward pass of the whole padded image
Uses ../shared/data/dsb2018_fluo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from napari_mia.engine import accel  # noqa: E402
from napari_mia.engine.events import IterationEnd, TrainingStarted  # noqa: E402
from napari_mia.engine.losses import LOSSES  # noqa: E402
from napari_mia.engine.models import pick_device  # noqa: E402
from napari_mia.engine.trained_model import build_model  # noqa: E402
from napari_mia.engine.settings import Settings  # noqa: E402
from napari_mia.engine.trainer import Trainer  # noqa: E402

# NAPARI_MIA_SHARED: the folder holding data/ when it is not ../shared (as for the tests).
DSB = Path(os.environ.get("NAPARI_MIA_SHARED", ROOT.parent / "shared")) / "data" / "dsb2018_fluo"
WARM = 3  # steps left out of the timings: cuDNN autotuning, allocator growth, the first batches' workers


def _pairs(n: int = 40):
    import csv

    import tifffile

    rows = [r for r in csv.DictReader((DSB / "index.csv").open()) if int(r["n_nuclei"]) >= 8][:n]
    return [(tifffile.imread(DSB / "images" / f"{r['name']}.tif"), tifffile.imread(DSB / "masks" / f"{r['name']}.tif"))
            for r in rows]


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def settings_for(a) -> Settings:
    return Settings().update(label_mode="instances", patch_width=a.patch, patch_height=a.patch, batch_size=a.batch,
                             steps_per_epoch=a.steps + WARM, epochs=1, val_split=0, device=a.device,
                             precision=a.precision, num_workers=a.workers)


def loader_rate(trainer: Trainer) -> tuple[float, int]:
    """Patches per second from the run's own DataLoader, nothing else running; and its worker count."""
    loader = trainer._loader()
    trainer._run.sampler.set_epoch(1)
    it = iter(loader)
    next(it)  # workers started
    t0 = time.perf_counter()
    n = 0
    for x, _, _ in it:  # the rest of an epoch
        n += len(x)
    return n / (time.perf_counter() - t0), loader.num_workers


def engine_training(a, pairs):
    trainer = Trainer(settings_for(a))
    stamps, started = [], None
    for ev in trainer.train(pairs):
        if isinstance(ev, TrainingStarted):
            started = ev
        if isinstance(ev, IterationEnd):
            _sync(trainer.device)
            stamps.append(time.perf_counter())
    step = (stamps[-1] - stamps[WARM - 1]) / (len(stamps) - WARM)
    return trainer, started, a.batch / step


def bare_training(a, s: Settings, device) -> float:
    """The textbook AMP loop: no data loading, no metrics, no events, one sync at the end."""
    dtype = accel.autocast_dtype(device, s.train.precision)
    fmt = accel.memory_format(device, dtype)
    torch.manual_seed(0)
    model = build_model(s.model).to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = accel.grad_scaler(device, dtype)
    loss_fn = LOSSES[s.train.loss]
    x = torch.randn(a.batch, s.model.channels, a.patch, a.patch, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 3, (a.batch, a.patch, a.patch), device=device)
    for i in range(a.steps + WARM):
        if i == WARM:
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with accel.autocast(device, dtype):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    _sync(device)
    return a.batch * a.steps / (time.perf_counter() - t0)


def field_of_nuclei(pairs, size: int) -> np.ndarray:
    """A size x size image tiled from real DSB fields (prediction sees real nuclei, decoding real objects)."""
    tiles = [p[0] if p[0].ndim == 2 else p[0][..., 0] for p in pairs]
    y = 0
    out = np.zeros((size, size), np.uint8)
    k = 0
    while y < size:
        x, h = 0, 0
        while x < size:
            t = tiles[k % len(tiles)]
            k += 1
            hh, ww = min(t.shape[0], size - y), min(t.shape[1], size - x)
            out[y:y + hh, x:x + ww] = t[:hh, :ww]
            x, h = x + ww, max(h, hh)
        y += h
    return out


def prediction(trainer: Trainer, image: np.ndarray, repeats: int = 3) -> tuple[float, float]:
    device, s = trainer.device, trainer.settings
    predictor = trainer.predictor()
    predictor.predict(image[:512, :512])  # warm-up
    engine = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.predict(image)
        _sync(device)
        engine.append(time.perf_counter() - t0)

    from napari_mia.engine.images import normalize

    dtype = accel.autocast_dtype(device, s.train.precision)
    fmt = accel.memory_format(device, dtype)
    model = trainer.kept_model().eval()
    h, w = image.shape
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    x = np.pad(normalize(image[..., None], s.data.normalization), ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect")
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None])).to(device).contiguous(memory_format=fmt)
    bare = []
    with torch.inference_mode(), accel.autocast(device, dtype):
        model(t)  # warm-up (cuDNN autotuning for this shape)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            model(t)
            _sync(device)
            bare.append(time.perf_counter() - t0)
    mp = h * w / 1e6
    return mp / float(np.median(engine)), mp / float(np.median(bare))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--workers", type=int, default=-1, help="data-loading workers (-1: the engine's automatic choice)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    device = pick_device(a.device)
    pairs = _pairs()
    trainer, started, engine = engine_training(a, pairs)
    loader, workers = loader_rate(trainer)
    bare = bare_training(a, trainer.settings, device)
    image = field_of_nuclei(pairs, a.size)
    pred_mps, bare_mps = prediction(trainer, image)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    out = {
        "device": f"{device} ({name})", "precision": started.precision or "fp32", "batch": a.batch, "patch": a.patch,
        "loader_patches_per_s": round(loader, 1), "loader_workers": workers,
        "training_images_per_s": round(engine, 2), "bare_images_per_s": round(bare, 2),
        "training_ratio": round(engine / bare, 3),
        "prediction_size": a.size, "prediction_mp_per_s": round(pred_mps, 3), "bare_forward_mp_per_s": round(bare_mps, 3),
        "prediction_ratio": round(pred_mps / bare_mps, 3),
    }
    if a.json:
        print(json.dumps(out))
        return
    print(f"device: {out['device']}, precision {out['precision']}, batch {a.batch} x {a.patch}px")
    print(f"loader: {loader:.1f} patches/s with {workers} worker(s); training consumes {engine:.1f}/s "
          f"({'keeps up' if loader >= engine else 'TOO SLOW: the GPU waits for patches'})")
    print(f"training: engine {engine:.2f} images/s, bare AMP loop {bare:.2f} images/s, ratio {engine / bare:.3f}")
    print(f"prediction of {a.size}x{a.size}: engine {pred_mps:.3f} MP/s, bare whole-image forward "
          f"{bare_mps:.3f} MP/s, ratio {pred_mps / bare_mps:.3f}")


if __name__ == "__main__":
    main()
