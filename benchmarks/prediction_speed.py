"""Prediction speed: the engine's whole prediction against one bare forward pass of the whole image.

    .venv/bin/python benchmarks/prediction_speed.py [--repeats 3] [--tile auto|N|none] [--overlap N]
                                                    [--memory MIB] [--retrain] [--json]

The default model (Settings() with label mode instances: Unet/resnet18, 1 channel), trained for
40 steps on 16 real 256x256 DSB 2018 fluorescence images so that decoding sees real nuclei, not
noise (cached in the temporary folder; --retrain trains it again). The image: the four 520x696 DSB
fluorescence fields of ../shared/data/dsb2018_fluo with the most nuclei (~1000 together), side by
side 2 x 2 and cropped to 1024x1344 (the size of issue #18; a multiple of 32, so the bare pass needs
no padding). A real field, densely packed: decoding has many objects to cut apart.

In one run, `--repeats` times after a warm-up of each:
  bare:   torch.inference_mode(), model(x) on the normalised whole image (nothing else timed)
  engine: Predictor.predict(image), everything: normalise, tile, forward, blend, scale back, decode
and prints the times, megapixels per second, the ratio bare / engine (median over the repeats),
the engine's breakdown (forward passes, tiling + blending, decoding, the rest) and the peak resident
memory each added to the process (sampled every 5 ms by a thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from peak_memory import PeakMemory  # beside this script

ROOT = Path(__file__).resolve().parents[1]
DSB = ROOT.parent / "shared" / "data" / "dsb2018_fluo"
CACHE = Path(tempfile.gettempdir()) / "napari-mia-bench-prediction-speed.pt"




def trained_model(retrain: bool):
    """The default instance model after 40 steps on real nuclei (weights fixed by the seed, cached)."""
    import csv

    import tifffile

    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    if CACHE.is_file() and not retrain:
        return Trainer.load(CACHE)
    rows = [r for r in csv.DictReader((DSB / "index.csv").open())
            if (r["height"], r["width"]) == ("256", "256") and int(r["n_nuclei"]) >= 8][:16]
    pairs = [(tifffile.imread(DSB / "images" / f"{r['name']}.tif"), tifffile.imread(DSB / "masks" / f"{r['name']}.tif"))
             for r in rows]
    s = Settings().update(label_mode="instances", epochs=1, steps_per_epoch=40, val_split=0, seed=0)
    t = Trainer(s)
    for _ in t.train(pairs):
        pass
    t.save(CACHE)
    return t


def mosaic() -> np.ndarray:
    """The four 520x696 fields with the most nuclei, 2 x 2, cropped to 1024x1344 (uint8 grey)."""
    import csv

    import tifffile

    rows = [r for r in csv.DictReader((DSB / "index.csv").open()) if (r["height"], r["width"]) == ("520", "696")]
    rows = sorted(rows, key=lambda r: -int(r["n_nuclei"]))[:4]
    fields = []
    for r in rows:
        f = tifffile.imread(DSB / "images" / f"{r['name']}.tif")
        fields.append(f if f.ndim == 2 else f[..., :3].mean(-1).astype(f.dtype))
    return np.block([[fields[0], fields[1]], [fields[2], fields[3]]])[:1024, :1344]


class Timed:
    """Wraps a Predictor's methods to add up the seconds spent in each (forward passes, maps, decoding)."""

    def __init__(self, predictor, names=("_forward", "maps", "decode")):
        self.seconds = dict.fromkeys(names, 0.0)
        for name in names:
            setattr(predictor, name, self._wrap(name, getattr(predictor, name)))

    def _wrap(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
        return timed

    def reset(self):
        for k in self.seconds:
            self.seconds[k] = 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tile", default="auto", help="the Predictor's tile: auto, a size, or none (whole image)")
    p.add_argument("--overlap", type=int, default=None, help="the Predictor's overlap (default: its own)")
    p.add_argument("--memory", type=float, default=None,
                   help="tile auto: the memory budget in MiB (default: the Predictor's, from the free memory)")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    import torch

    from napari_mia.engine.images import normalize
    from napari_mia.engine.predictor import Predictor

    trainer = trained_model(a.retrain)
    model, settings = trainer.model.eval(), trainer.settings
    device = torch.device("cpu")
    model.to(device)
    image = mosaic()
    h, w = image.shape
    mpx = h * w / 1e6

    tile = None if a.tile == "none" else a.tile if a.tile == "auto" else int(a.tile)
    options = {} if a.overlap is None else {"overlap": a.overlap}
    if a.memory is not None:
        options["memory"] = int(a.memory * 2**20)
    pred = Predictor(model, settings, device, tile=tile, **options)
    timed = Timed(pred)
    x = torch.from_numpy(np.ascontiguousarray(normalize(image[..., None], settings.data.normalization)
                                              .transpose(2, 0, 1)[None]))

    def bare():
        with torch.inference_mode():
            model(x)

    bare()  # warm-up of each: first passes allocate
    labels = pred.predict(image)
    rows = []
    for _ in range(a.repeats):
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            bare()
            tb = time.perf_counter() - t0
        bare_mb = mem.added_mb
        timed.reset()
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            labels = pred.predict(image)
            te = time.perf_counter() - t0
        s = dict(timed.seconds)
        rows.append({"bare_s": tb, "engine_s": te, "ratio": tb / te, "forward_s": s["_forward"],
                     "tiling_blend_s": s["maps"] - s["_forward"], "decode_s": s["decode"],
                     "other_s": te - s["maps"] - s["decode"], "bare_peak_mb": bare_mb, "engine_peak_mb": mem.added_mb})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    plan = getattr(pred, "last_plan", None)
    out = {"image": f"{h}x{w}", "objects": int(labels.max()), "tile": a.tile, "plan": str(plan) if plan else None,
           "repeats": a.repeats, "threads": torch.get_num_threads(),
           "bare_mpx_s": round(mpx / med["bare_s"], 3), "engine_mpx_s": round(mpx / med["engine_s"], 3),
           **{k: round(v, 3) for k, v in med.items()}, "ratios": [round(r["ratio"], 3) for r in rows]}
    if a.json:
        print(json.dumps(out))
        return
    print(f"image {out['image']} ({mpx:.2f} Mpx), {out['objects']} objects predicted, tile {a.tile}"
          + (f", plan {plan}" if plan else "") + f", {out['threads']} threads, median of {a.repeats}")
    print(f"bare forward of the whole image: {med['bare_s']:.2f} s, {out['bare_mpx_s']:.3f} Mpx/s, "
          f"peak added {med['bare_peak_mb']:.0f} MB")
    print(f"engine Predictor.predict:        {med['engine_s']:.2f} s, {out['engine_mpx_s']:.3f} Mpx/s, "
          f"peak added {med['engine_peak_mb']:.0f} MB")
    print(f"  forward passes {med['forward_s']:.2f} s, tiling + blending {med['tiling_blend_s']:.2f} s, "
          f"decoding {med['decode_s']:.2f} s, the rest (normalise, scale) {med['other_s']:.2f} s")
    print(f"ratio bare / engine: {med['ratio']:.3f} (each repeat: {', '.join(map(str, out['ratios']))})")


if __name__ == "__main__":
    main()
