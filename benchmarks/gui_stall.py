"""How long the napari event loop stalls while training runs in the dock.

    .venv/bin/python benchmarks/gui_stall.py [--seconds 40]

A QTimer fires every 10 ms; the lateness of each tick is a stall the user
would feel. Prints p50/p99/max lateness (target p99 < 50 ms) and the device
the dock trained on (its default, auto: a GPU when there is one). Starts a
virtual X display when there is none, unless QT_QPA_PLATFORM names another
platform (e.g. offscreen).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=40)
    a = p.parse_args()
    display = None
    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1400, 900))
        display.start()
    import napari
    from qtpy.QtCore import QTimer

    from napari_mia._sample_data import make_sample_data
    from napari_mia.widgets.training import TrainingWidget

    viewer = napari.Viewer()
    for data, meta, kind in make_sample_data():
        getattr(viewer, f"add_{kind}")(data, **meta)
    t0 = time.perf_counter()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    print(f"time to open the Train Model dock: {time.perf_counter() - t0:.2f} s")
    widget.add_pair("nuclei", "nuclei labels")
    widget.controls["label_mode"].value = "instances"
    widget.controls["epochs"].value = 1000
    widget.controls["val_split"].value = 0.2
    lateness, last = [], [None]
    interval = 0.010

    def tick():
        now = time.perf_counter()
        if last[0] is not None:
            lateness.append(max(0.0, now - last[0] - interval))
        last[0] = now

    timer = QTimer()
    timer.setInterval(int(interval * 1000))
    timer.timeout.connect(tick)
    app = napari.qt.get_qapp()
    widget.start()
    end = time.perf_counter() + a.seconds
    timer.start()
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    widget.session.stop()
    while widget.session.busy:
        app.processEvents()
        time.sleep(0.01)
    ms = np.array(lateness) * 1000
    iters = len(widget.session.record.iterations)
    trainer = widget.session.trainer
    if trainer is not None and trainer.model is not None:
        device = next(trainer.model.parameters()).device
        print(f"the dock trained on {device} (precision setting: {trainer.settings.train.precision})")
    print(f"event loop lateness over {a.seconds:.0f} s of training ({iters} iterations, {len(ms)} ticks): "
          f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms")
    viewer.close()
    if display is not None:
        display.stop()


if __name__ == "__main__":
    main()
