"""The real training step in float32 and in bfloat16, in one run: the Trainer on real DSB nuclei.

    PYTHONPATH=src .venv/bin/python benchmarks/real_step.py [--images 16] [--steps 6] [--warm 1] [--patch 256]
                                                            [--batch 4] [--device cpu] [--profile] [--json]

What a user's ``napari-mia train --precision on`` runs: the default settings (Unet, resnet18, dice, augmentation,
BatchNorm, Adam) on --images real DSB images and their instance masks, --steps timed steps of the Trainer
(after --warm untimed ones), no validation; once in float32 and once with bfloat16 autocast, which is forced
here even where ``precision: on`` keeps the CPU in float32 (``accel.fast_bf16``). Prints the seconds per step
of each and the ratio (float32 seconds / bfloat16 seconds: above 1, bfloat16 is faster). --profile also prints
the operations that take the most time in each (torch.profiler, over the timed steps).
Uses ../shared/data/dsb2018_fluo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from napari_mia.engine import accel  # noqa: E402
from napari_mia.engine.events import IterationEnd, TrainingStarted  # noqa: E402
from napari_mia.engine.settings import Settings  # noqa: E402
from napari_mia.engine.trainer import Trainer  # noqa: E402

DSB = ROOT.parent / "shared" / "data" / "dsb2018_fluo"


def _pairs(n: int):
    import csv

    import tifffile

    rows = [r for r in csv.DictReader((DSB / "index.csv").open()) if int(r["n_nuclei"]) >= 8][:n]
    return [(tifffile.imread(DSB / "images" / f"{r['name']}.tif"), tifffile.imread(DSB / "masks" / f"{r['name']}.tif"))
            for r in rows]


def run(pairs, a, bf16: bool) -> dict:
    s = Settings().update(label_mode="instances", patch_width=a.patch, patch_height=a.patch, batch_size=a.batch,
                          steps_per_epoch=a.warm + a.steps, epochs=1, val_split=0, device=a.device,
                          precision="on" if bf16 else "off")
    forced = accel.fast_bf16
    accel.fast_bf16 = lambda device: True  # bfloat16 wherever "on" asks for it: that is what is measured
    try:
        trainer = Trainer(s)
        times, precision, prof = [], "", None
        events = trainer.train(pairs)
        for ev in events:
            if isinstance(ev, TrainingStarted):
                precision = ev.precision or "fp32"
            if isinstance(ev, IterationEnd):
                times.append(time.perf_counter())
                if a.profile and ev.iteration == a.warm:
                    from torch.profiler import ProfilerActivity, profile

                    prof = profile(activities=[ProfilerActivity.CPU])
                    prof.__enter__()
        if prof is not None:
            prof.__exit__(None, None, None)
    finally:
        accel.fast_bf16 = forced
    step = (times[-1] - times[a.warm - 1]) / a.steps if a.warm else (times[-1] - times[0]) / (a.steps - 1)
    out = {"precision": precision, "seconds_per_step": round(step, 3)}
    if prof is not None:
        out["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warm", type=int, default=1, help="untimed steps first")
    p.add_argument("--patch", type=int, default=Settings().data.patch_width)
    p.add_argument("--batch", type=int, default=Settings().train.batch_size)
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", action="store_true", help="print the slowest operations of each")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    pairs = _pairs(a.images)
    res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "native_bf16": accel.cpu_bf16_native(), "images": len(pairs), "steps": a.steps, "patch": a.patch,
           "batch": a.batch}
    res["fp32"] = run(pairs, a, bf16=False)
    res["bf16"] = run(pairs, a, bf16=True)
    res["ratio"] = round(res["fp32"]["seconds_per_step"] / res["bf16"]["seconds_per_step"], 3)
    if a.json:
        print(json.dumps({k: v for k, v in res.items()}, default=str))
        return
    for name in ("fp32", "bf16"):
        r = res[name]
        if "profile" in r:
            print(f"--- {name}: slowest operations over {a.steps} steps ---\n{r['profile']}")
    print(f"torch {res['torch']}, {res['threads']} threads, CPU capability {res['cpu_capability']}, native "
          f"bfloat16: {res['native_bf16']}; {len(pairs)} DSB images, patch {a.patch}, batch {a.batch}, "
          f"{a.steps} timed steps after {a.warm}")
    print(f"float32:  {res['fp32']['seconds_per_step']:.2f} s/step")
    print(f"bfloat16: {res['bf16']['seconds_per_step']:.2f} s/step")
    print(f"ratio (float32 / bfloat16 seconds): {res['ratio']:.2f}" + ("  (bfloat16 is slower)" if res["ratio"] < 1
                                                                      else ""))


if __name__ == "__main__":
    main()
