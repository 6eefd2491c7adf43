"""What the GUI demo's first training gives, for candidate settings (docs/benchmarks.md).

    PYTHONPATH=src .venv/bin/python benchmarks/demo_defaults.py [NAME ...]

The demo trains on the bundled sample (6 frames, 256 x 256, one id per nucleus) as the Train
Model dock does: the whole stack as one training item, the dock's validation split, then
predicts the frame napari shows first (frame 2, 19 nuclei) with the dock's post-processing.
Prints per candidate: training time, objects found, and the object F1 at IoU > 0.5 against
the sample's labels of that frame.
"""

from __future__ import annotations

import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from instance_scores import match_counts  # noqa: E402

SHOWN = 2  # napari opens a 6-frame stack on its middle frame, index 2
# name -> settings changed from Settings() (besides label_mode="instances")
CANDIDATES = {
    "old": {},  # the demo before: the dock's defaults (10 epochs of 2 steps, 256 px patches)
    "p128-e40": dict(patch_width=128, patch_height=128, epochs=40, steps_per_epoch=4, batch_size=8),
    "p256-e20-lr3": dict(epochs=20, steps_per_epoch=4, learning_rate=3e-3),
    "p128-e40-lr3": dict(patch_width=128, patch_height=128, epochs=40, steps_per_epoch=4, batch_size=8,
                         learning_rate=3e-3),
    "p128-e20-lr3": dict(patch_width=128, patch_height=128, epochs=20, steps_per_epoch=4, batch_size=8,
                         learning_rate=3e-3),
    "p128-e30-b4-lr3": dict(patch_width=128, patch_height=128, epochs=30, steps_per_epoch=4, batch_size=4,
                            learning_rate=3e-3),
}


def run(name: str, changes: dict) -> tuple[float, int, float]:
    from napari_mia._sample_data import load_sample_arrays
    from napari_mia.engine.task_data import sources_for_task
    from napari_mia.engine.targets import PostProcess
    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    images, labels = load_sample_arrays()
    s = Settings().update(label_mode="instances", **changes)
    trainer = Trainer(s)
    sources = sources_for_task([(images, labels, "nuclei", "nuclei labels", False)], s, rgb=[False])
    t0 = time.monotonic()
    for _ in trainer.train(sources):
        pass
    seconds = time.monotonic() - t0
    pred = trainer.predictor().predict(images[SHOWN], post=PostProcess())
    tp, fp, fn = match_counts(pred, labels[SHOWN])
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    n = len(np.unique(pred)) - 1
    print(f"{name:14s} {seconds:6.0f} s  {n:3d} objects found ({len(np.unique(labels[SHOWN])) - 1} drawn)  "
          f"TP {tp} FP {fp} FN {fn}  F1 @ IoU 0.5 {f1:.2f}   {changes}", flush=True)
    return seconds, n, f1


if __name__ == "__main__":
    for name in sys.argv[1:] or list(CANDIDATES):
        run(name, CANDIDATES[name])
