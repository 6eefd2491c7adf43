"""`make demo`: napari with the sample loaded and the Train Model dock open,
or, without a display, the same job headless with the results printed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ._sample_data import load_sample_arrays, make_sample_data
from .engine.events import EpochEnd
from .engine.settings import Settings
from .engine.trainer import Trainer


# The demo's first training (docs/benchmarks.md, benchmarks/demo_defaults.py): on the sample, 20 epochs of
# 4 steps of 8 patches of 128 px at learning rate 0.003 find 18 of the 19 nuclei on the frame napari shows
# (F1 0.86 at IoU 0.5); the dock's defaults (10 epochs of 2 steps of 256 px patches) found 4 merged blobs.
DEMO_SETTINGS = {"label_mode": "instances",  # the sample's labels hold one id per nucleus
                 "patch_width": 128, "patch_height": 128, "batch_size": 8, "epochs": 20, "steps_per_epoch": 4,
                 "learning_rate": 3e-3}


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("darwin", "win32")


def run_demo(headless: bool = False, minutes: float = 1.0, out: Path = Path("demo_output")) -> int:
    if not headless and has_display():
        return _gui()
    if not headless:
        print("No display found: running the demo headless (train on the sample, predict, print the figures).")
    return headless_demo(minutes, out)


def _gui() -> int:
    import napari  # lazy: seconds to import, and napari-mia --help imports this module

    open_demo_viewer()
    napari.run()
    return 0


def open_demo_viewer(show: bool = True):
    """The sample in a viewer, the Train Model dock open with the sample as its training set:
    ready to press Start Training."""
    # lazy: napari and Qt take seconds to import, and napari-mia --help imports this module
    import napari
    from qtpy.QtCore import QTimer

    viewer = napari.Viewer(title="napari-mia demo", show=show)
    for data, meta, kind in make_sample_data():
        getattr(viewer, f"add_{kind}")(data, **meta)
    _, widget = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
    # The dock took the canvas's right part: fit the sample to the canvas that is left, once it is laid out.
    QTimer.singleShot(0, viewer.reset_view)
    # The demo's sample needs the defaults (full labels, segmentation), whatever the last session used.
    widget.application.value = "Semantic segmentation"
    widget.reset_settings(remember=False)
    for name, value in DEMO_SETTINGS.items():
        widget.controls[name].value = value
    widget.add_pair("nuclei", "nuclei labels")
    widget.predict_combo.value = "nuclei"
    # Both first steps fit the status line at napari's default window size; the plan is said once training starts.
    widget.status.value = ("Sample loaded: press Start Training (this line then says how long it takes), then "
                           "Predict. Or Start from: Nuclei (fluorescence) starter, then Predict.")
    return viewer, widget


def _scores(pred: np.ndarray, truth: np.ndarray) -> str:
    iou = ((truth > 0) & (pred > 0)).sum() / max(((truth > 0) | (pred > 0)).sum(), 1)
    n_true, n_pred = len(np.unique(truth)) - 1, len(np.unique(pred)) - 1
    return f"foreground IoU {iou:.3f}, {n_pred} nuclei found ({n_true} drawn by a person)"


def _starter_first(image: np.ndarray, truth: np.ndarray) -> None:
    """What the nuclei starter that ships with napari-mia finds on the held-out frame, before any training (the
    sample's frames were left out of its training)."""
    from .engine.errors import MiaError
    from .engine.trained_model import TrainedModel
    from .workflows.prediction import predictor_for_model

    try:
        starter = TrainedModel.load("nuclei")
    except MiaError as e:
        print(f"No starter: {e}")
        return
    found = predictor_for_model(starter).predict(image)
    print(f"The nuclei starter that ships with napari-mia, before any training here: {_scores(found, truth)}.")


def headless_demo(minutes: float, out: Path) -> int:
    import tifffile  # lazy: slow to import, and napari-mia --help imports this module

    images, labels = load_sample_arrays()
    s = Settings().update(**DEMO_SETTINGS)
    s.train.epochs, s.train.minutes = 0, minutes  # a plan that fits the demo's time
    s.train.val_split = 0
    trainer = Trainer(s)
    train_pairs = [(images[i], labels[i], f"nuclei[{i}]") for i in range(len(images) - 1)]
    test_image, test_labels = images[-1], labels[-1]
    _starter_first(test_image, test_labels)
    print(f"Training a Unet (resnet18) on {len(train_pairs)} sample images for {minutes:g} minute(s)...")
    t0 = time.monotonic()
    for ev in trainer.train(train_pairs, val=[]):
        if isinstance(ev, EpochEnd):
            print(f"  epoch {ev.epoch}: loss {ev.train_loss:.3f}, foreground IoU {ev.train_metric:.3f}")
    print(f"Trained for {time.monotonic() - t0:.0f} s. Predicting the held-out sample image...")
    pred = trainer.predictor().predict(test_image)
    print(f"Held-out image: {_scores(pred, test_labels)}.")
    out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out / "prediction.tif", pred)
    trainer.save(out / "demo_model.pt")
    print(f"Wrote {out / 'prediction.tif'} and {out / 'demo_model.pt'}.")
    return 0
