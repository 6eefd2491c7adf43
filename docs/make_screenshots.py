"""Screenshots of the real widgets for the docs, after a real short training.

    .venv/bin/python docs/make_screenshots.py [--seconds 60]

Runs under a virtual X display when there is none; writes docs/images/*.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images"


def _close_toasts(viewer) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):  # e.g. PyQt5's deprecation
        toast.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60, help="training time before the screenshots")
    a = p.parse_args()
    display = None
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1600, 1000))
        display.start()
    import napari

    from napari_mia._sample_data import make_sample_data
    from napari_mia.widgets.training import TrainingWidget

    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1500, 950)
    for data, meta, kind in make_sample_data():
        getattr(viewer, f"add_{kind}")(data, **meta)
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    widget.add_pair("nuclei", "nuclei labels")
    c = widget.controls
    c["label_mode"].value = "instances"
    c["epochs"].value = 100
    c["steps_per_epoch"].value = 8
    c["patch_width"].value = c["patch_height"].value = 128
    c["val_split"].value = 0.34
    app = napari.qt.get_qapp()

    def pump(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    pump(0.5)
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.3)
    viewer.screenshot(str(OUT / "viewer_start.png"), canvas_only=False)
    widget.grab().save(str(OUT / "train_model_dock.png"))
    for name, png in [("settings", "settings_section.png"), ("augmentations", "augmentations_section.png"),
                      ("post_processing", "postprocessing_section.png")]:
        section = getattr(widget, f"section_{name}")
        section.expand(animate=False)
        pump(0.3)
        section.grab().save(str(OUT / png))
        section.collapse(animate=False)
    widget.start()
    pump(a.seconds)
    widget.session.stop()
    while widget.session.busy:
        pump(0.1)
    plot = widget.session.plot_widget
    plot.redraw()
    pump(0.5)
    plot.grab().save(str(OUT / "training_plot_dock.png"))
    widget.predict_combo.value = "nuclei"
    widget.predict()
    while "nuclei prediction" not in viewer.layers or widget.session.busy:
        pump(0.1)
    viewer.layers["nuclei labels"].visible = False
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    viewer.screenshot(str(OUT / "viewer_prediction.png"), canvas_only=False)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))}")
    viewer.close()
    if display is not None:
        display.stop()


if __name__ == "__main__":
    main()
