"""Screenshots of the real widgets for the docs, after a real short training.

    .venv/bin/python docs/make_screenshots.py [--seconds 60] [--only window]

Runs under a virtual X display when there is none; writes docs/images/*.png. `--only window`: the
whole napari window as `make demo` opens it, training with the plot, and an error message, each at
1600x1000 and at napari's default window size (issue #13). `--only layout`: Train Model, Training Data and
Results open together over layers with 64-character names, at both sizes (issue #25). `--only labelling`: sparse labels painted on a
DSB field, the prediction after a short training, and a corrected prediction added by a reviewed region
(docs/labelling.md, issue #16). `--only server`: a training job exported from the dock, trained by the command
line and imported back, the record in the Training Data dock (docs/server.md, issue #18). `--only starter`: the
nuclei starter chosen in the dock and its prediction of a held-out field (docs/starter.md, issue #30).
`--only rounds`: test pairs kept aside, three rounds (the third with deliberately wrong labels) and the Rounds view
(docs/rounds.md, issue #28). `--only label_next`: three rounds on more and more labelled fields, the Rounds view's
learning curve and forecast, and Label next with a suggestion shown (docs/rounds.md, issue #29).
Uses napari settings of its own (a temporary file): the window sizes it sets are not saved into
the user's napari settings, and a size saved there does not change the pictures.
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

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):  # e.g. a warning shown meanwhile
        toast.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60, help="training time before the screenshots")
    p.add_argument("--only", choices=["window", "layout", "plan", "segmentation", "detection", "classification", "results",
                                      "labelling", "server", "rounds", "starter", "label_next"],
                   help="make one application's screenshots only")
    a = p.parse_args()
    import tempfile

    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp(prefix="napari-mia-shots-")) / "settings.yaml")
    # Nor the Train Model dock's remembered settings: every picture starts from the defaults.
    os.environ["NAPARI_MIA_CONFIG_DIR"] = tempfile.mkdtemp(prefix="napari-mia-shots-config-")
    display = None
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1920, 1200))
        display.start()
    import napari

    OUT.mkdir(parents=True, exist_ok=True)
    app = napari.qt.get_qapp()

    def pump(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    if a.only in (None, "window"):
        _window(a, pump)
    if a.only in (None, "plan"):
        _plan(pump)
    if a.only in (None, "layout"):
        _layout(pump)
    if a.only in (None, "segmentation"):
        _segmentation(a, pump)
    if a.only in (None, "detection"):
        _detection(a, pump)
    if a.only in (None, "classification"):
        _classification(a, pump)
    if a.only in (None, "results"):
        _results(pump)
    if a.only in (None, "labelling"):
        _labelling(a, pump)
    if a.only in (None, "server"):
        _server(a, pump)
    if a.only in (None, "rounds"):
        _rounds(pump)
    if a.only in (None, "starter"):
        _starter(pump)
    if a.only in (None, "label_next"):
        _label_next(pump)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))}")
    if display is not None:
        display.stop()


# napari's window as it opens with no saved geometry (under Xvfb), and a common laptop screen's worth
WINDOW_SIZES = {"default": None, "1600": (1600, 1000)}


def _window(a, pump) -> None:
    """`make demo`'s window as it opens, an error message, and training with the plot, at both sizes."""
    import numpy as np

    from napari_mia.demo import open_demo_viewer

    viewer, widget = open_demo_viewer(show=True)
    window = viewer.window._qt_window
    default = window.size().width(), window.size().height()

    def shots(names: dict, toasts: bool = False) -> None:
        for key, png in names.items():
            window.resize(*(WINDOW_SIZES[key] or default))
            pump(0.6)
            plot = getattr(widget.session, "plot_widget", None)
            if plot is not None:  # drawn now at the new size (the timer's render may lag on a busy machine)
                plot.redraw()
            viewer.reset_view()
            if not toasts:
                _close_toasts(viewer)
            pump(0.3)
            viewer.screenshot(str(OUT / png), canvas_only=False)

    pump(1)
    shots({"default": "window_demo_default.png", "1600": "window_demo_1600.png"})
    # a mistake a new user makes: labels drawn on a cut-out, added with the whole image
    viewer.add_labels(np.zeros((128, 128), np.uint16), name="my labels")
    widget.labels_combo.value = "my labels"
    widget.add_button.changed.emit(True)
    shots({"1600": "window_error_1600.png", "default": "window_error_default.png"}, toasts=True)
    viewer.layers.remove("my labels")
    widget.start()
    end = time.perf_counter() + 4 * a.seconds  # a few epochs on the plot (the first start loads torch)
    while len(widget.session.record.epochs) < 4 and time.perf_counter() < end:
        pump(0.5)
    widget.session.plot_widget.redraw()
    shots({"1600": "window_training_1600.png", "default": "window_training_default.png"})
    widget.session.stop()
    while widget.session.busy:
        pump(0.1)
    viewer.close()


def _plan(pump) -> None:
    """The Train Model dock with its defaults (a Training time, the epochs as time allows) after the first
    steps of a training on the sample: the status line says the plan."""
    import napari

    from napari_mia._sample_data import make_sample_data
    from napari_mia.engine.events import PlanMade
    from napari_mia.widgets._layout import _dock_of

    viewer = napari.Viewer()
    for data, meta, kind in make_sample_data():
        getattr(viewer, f"add_{kind}")(data, **meta)
    _, widget = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
    _dock_of(widget).window().resize(*WINDOW_SIZES["1600"])
    widget.controls["label_mode"].value = "instances"
    widget.controls["minutes"].value = 1.0  # the default is 5: a shorter run for the picture
    widget.add_pair("nuclei", "nuclei labels")
    plans = []
    widget.session.event.connect(lambda ev: plans.append(ev) if isinstance(ev, PlanMade) else None)
    widget.start()
    end = time.perf_counter() + 300
    while not plans and time.perf_counter() < end:
        pump(0.5)
    pump(3)
    widget.session.plot_widget.redraw()
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    viewer.screenshot(str(OUT / "training_time.png"), canvas_only=False)
    print(f"training_time.png: {plans[0].message if plans else 'no plan yet'}")
    widget.session.stop()
    while widget.session.busy:
        pump(0.1)
    viewer.close()


def _layout(pump) -> None:
    """Train Model, Training Data and Results open together over layers named by 64-character file stems (two
    labels layers napari numbered, "<stem> [1]" and "<stem> [2]"), at napari's default size and at 1600x1000: the
    window stays its size and the docks' column its width (issue #25)."""
    import napari
    import numpy as np

    from napari_mia._sample_data import make_sample_data
    from napari_mia.widgets._layout import _dock_of

    stem = "0a7d30b252359a10fd298b638b90cb9ada3acced4e0c0e5a3692013f432ee4e9"  # a DSB file stem
    for key, png in (("default", "layout_default.png"), ("1600", "layout_1600.png")):
        viewer = napari.Viewer()
        for data, meta, kind in make_sample_data():
            getattr(viewer, f"add_{kind}")(data, **meta)
        frame, labels = (np.asarray(viewer.layers[n].data)[0] for n in ("nuclei", "nuclei labels"))
        viewer.add_image(frame, name=stem)
        viewer.add_labels(labels, name=stem)
        viewer.add_labels(labels, name=stem)
        _, widget = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
        window = _dock_of(widget).window()
        if WINDOW_SIZES[key]:
            window.resize(*WINDOW_SIZES[key])
        pump(0.6)
        widget.image_combo.value, widget.labels_combo.value = stem, f"{stem} [1]"
        widget.add_button.changed.emit(True)
        widget.open_plot_dock()
        pump(0.6)
        _, results = viewer.window.add_plugin_dock_widget("napari-mia", "Results")
        pump(0.8)
        results.layer_combo.value = f"{stem} [1]"
        results.image_combo.value = stem
        results.measure()
        pump(0.6)
        print(f"{png}: window {window.width()}x{window.height()}")
        viewer.reset_view()
        _close_toasts(viewer)
        pump(0.3)
        viewer.screenshot(str(OUT / png), canvas_only=False)
        viewer.close()


def _segmentation(a, pump) -> None:
    import napari

    from napari_mia._sample_data import make_sample_data
    from napari_mia.widgets.training import TrainingWidget

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
    viewer.close()


def _starter(pump) -> None:
    """Start from: Nuclei (fluorescence) starter, and its prediction of a field of a kind it never saw, before any
    label (docs/starter.md)."""
    import csv

    import napari
    import tifffile

    from napari_mia.widgets._layout import _dock_of

    dsb = ROOT.parent / "shared" / "data" / "dsb2018_fluo"
    name = next(r["name"] for r in csv.DictReader((dsb / "index.csv").open())
                if (r["height"], r["width"]) == ("520", "696") and 30 <= int(r["n_nuclei"]) <= 80)
    viewer = napari.Viewer()
    viewer.add_image(tifffile.imread(dsb / "images" / f"{name}.tif"), name="field")
    _, widget = viewer.window.add_plugin_dock_widget("napari-mia", "Train Model")
    _dock_of(widget).window().resize(*WINDOW_SIZES["1600"])
    widget.start_from.value = "Nuclei (fluorescence) starter"
    pump(0.5)
    while widget.session.busy:
        pump(0.1)
    _predict(widget, "field", pump)
    print(f"starter.png: {widget.status.value}")
    _final_shots(viewer, widget.model.model_box.native, "starter_section.png", "starter.png", pump)


def _dsb(names):
    import tifffile

    dsb = ROOT.parent / "shared" / "data" / "dsb2018_fluo"
    return [(tifffile.imread(dsb / "images" / f"{n}.tif"), tifffile.imread(dsb / "masks" / f"{n}.tif")) for n in names]


def _dsb_names(rule) -> list[str]:
    import csv

    index = ROOT.parent / "shared" / "data" / "dsb2018_fluo" / "index.csv"
    return [r["name"] for r in csv.DictReader(index.open())
            if (r["height"], r["width"]) == ("256", "256") and rule(int(r["n_nuclei"]))]


def _train(widget, seconds, pump) -> None:
    widget.start()
    pump(seconds)
    widget.session.stop()
    while widget.session.busy:
        pump(0.1)


def _predict(widget, name, pump) -> None:
    widget.predict_combo.value = name
    widget.predict()
    pump(0.5)
    while widget.session.busy or widget.session._predicting:
        pump(0.1)


def _final_shots(viewer, section, section_png: str, viewer_png: str, pump) -> None:
    """A dock section and the whole viewer, without notifications, then the viewer closes."""
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    section.grab().save(str(OUT / section_png))
    viewer.screenshot(str(OUT / viewer_png), canvas_only=False)
    viewer.close()


def _detection(a, pump) -> None:
    """Nuclei centres (from the CC0 DSB masks) as the points of a detection training."""
    import napari
    from skimage.measure import regionprops

    from napari_mia.widgets.training import TrainingWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1500, 950)
    pairs = _dsb(_dsb_names(lambda n: 20 <= n <= 60)[:4])
    for k, (image, mask) in enumerate(pairs):
        viewer.add_image(image, name=f"field {k + 1}")
        if k < 3:
            viewer.add_points([r.centroid for r in regionprops(mask)], name=f"field {k + 1} points", size=6,
                              face_color="cyan")
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    widget.application.value = "Object detection"
    for k in range(3):
        widget.add_pair(f"field {k + 1}", f"field {k + 1} points")
    c = widget.controls
    c["epochs"].value, c["steps_per_epoch"].value, c["val_split"].value = 100, 8, 0.0
    c["patch_width"].value = c["patch_height"].value = 128
    c["object_size"].value = 12
    _train(widget, a.seconds, pump)
    _predict(widget, "field 4", pump)
    for layer in viewer.layers:
        layer.visible = layer.name in ("field 4", "field 4 detections")
    _final_shots(viewer, widget.section_data, "detection_dock.png", "viewer_detections.png", pump)


def _classification(a, pump) -> None:
    """Fields with few nuclei against fields with many (CC0 DSB), a class per frame of a stack."""
    import napari
    import numpy as np

    from napari_mia.widgets.training import TrainingWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1500, 950)
    sparse, dense = _dsb_names(lambda n: n <= 8), _dsb_names(lambda n: n >= 40)
    train = [f for pair in zip(_dsb(sparse[:8]), _dsb(dense[:8])) for f in pair]
    viewer.add_image(np.stack([img for img, _ in train]), name="plate 1")
    viewer.add_image(np.stack([img for img, _ in _dsb([sparse[20], dense[20], dense[21], sparse[21]])]),
                     name="plate 2")
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    widget.application.value = "Image classification"
    table = widget.class_table
    table.set_class_names(["sparse", "dense"])
    widget.add_class_image("plate 1")
    for r in range(16):
        table.assign(r % 2, rows=[r])
    c = widget.controls
    c["epochs"].value, c["val_split"].value = 100, 0.0
    c["patch_width"].value = c["patch_height"].value = 64
    _train(widget, a.seconds, pump)
    _predict(widget, "plate 2", pump)
    viewer.layers.selection.active = viewer.layers["plate 2"]
    viewer.layers["plate 1"].visible = False
    viewer.dims.set_current_step(0, 1)
    table.select("plate 2", 1)
    _final_shots(viewer, widget.section_classes, "classification_dock.png", "viewer_classification.png", pump)


def _server(a, pump) -> None:
    """Export training job, the job trained by the command line (in this process, as a server would), and
    Import model: the Device section's buttons and the imported record in the Training Data dock (issue #18)."""
    import tempfile

    import napari

    from napari_mia._llvm import keep_triton_out_if_llvm_loaded
    from napari_mia.cli import main as cli
    from napari_mia.widgets.training import TrainingWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1600, 1150)  # room for both docks: the Device section and the plot
    for k, (image, mask) in enumerate(_dsb(_dsb_names(lambda n: 20 <= n <= 60)[:4])):
        viewer.add_image(image, name=f"field {k + 1}")
        viewer.add_labels(mask, name=f"field {k + 1} labels")
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    for k in range(4):
        widget.add_pair(f"field {k + 1}", f"field {k + 1} labels")
    widget.mark_validation([widget.pairs[3]])
    c = widget.controls
    c["label_mode"].value = "instances"
    # Short epochs: a minute on a laptop's CPU draws several of them.
    c["epochs"].value, c["steps_per_epoch"].value = 30, 2
    c["patch_width"].value = c["patch_height"].value = 96
    job = Path(tempfile.mkdtemp(prefix="napari-mia-shots-job-")) / "nuclei_job"
    assert widget.export_job(job), widget.status.value
    keep_triton_out_if_llvm_loaded()  # the command line shares napari's process here
    assert cli(["train", "--job", str(job), "--minutes", f"{a.seconds / 60:g}", "--quiet"]) == 0
    widget.import_model(job / "model.pt")
    pump(0.5)
    while widget.session.busy:
        pump(0.1)
    for layer in viewer.layers:
        layer.visible = layer.name in ("field 1", "field 1 labels")
    for section in (widget.section_data, widget.section_deep, widget.section_training, widget.section_prediction):
        section.collapse(animate=False)
    widget.section_device.expand(animate=False)
    pump(0.5)
    widget.scroll.ensureWidgetVisible(widget.elsewhere_row.native)
    viewer.layers["field 1 labels"].opacity = 0.4
    widget.session.plot_widget.redraw()
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    viewer.screenshot(str(OUT / "server_import.png"), canvas_only=False)
    viewer.close()


def _results(pump) -> None:
    """The Results dock on a DSB field and its human labels (pixel size 0.5 um, an example), and a histogram
    of the nuclei's areas made from the saved objects.csv, as a user would make it for a paper."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import napari
    import pandas as pd

    from napari_mia.widgets.results import ResultsWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1500, 950)
    ((image, mask),) = _dsb(_dsb_names(lambda n: 40 <= n <= 80)[:1])
    viewer.add_image(image, name="field", scale=(0.5, 0.5), units="um")
    viewer.add_labels(mask.astype("uint16"), name="field labels", scale=(0.5, 0.5), units="um")
    widget = ResultsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Results", area="right")
    widget.layer_combo.value = "field labels"
    widget.measure()
    viewer.layers.selection.active = viewer.layers["field labels"]
    pump(1.0)  # the dock takes its width first, then the image fits the canvas
    viewer.reset_view()
    largest = widget.objects.sort_values("area_um2").iloc[-1]  # the mouse over it: the status bar shows its row
    viewer.cursor.position = (largest["centroid_y_um"], largest["centroid_x_um"])
    _close_toasts(viewer)
    pump(0.5)
    widget.grab().save(str(OUT / "results_dock.png"))
    viewer.screenshot(str(OUT / "viewer_results.png"), canvas_only=False)
    folder = Path(tempfile.mkdtemp())
    widget.save(folder / "objects.csv")
    table = pd.read_csv(folder / "objects.csv")
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.hist(table["area_um2"], bins=15, color="#4c9be8", edgecolor="white")
    ax.set_xlabel("nucleus area (µm²)")
    ax.set_ylabel("nuclei")
    ax.set_title(f"{len(table)} nuclei, median {table['area_um2'].median():.0f} µm²", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT / "results_area_histogram.png")
    plt.close(fig)
    viewer.close()


def background_grey(layer) -> None:
    """Label 1 (background painted on purpose, with sparse labels) in dim grey, every other label in the
    layer's own colours: the tip of docs/labelling.md, as a user types it in napari's console."""
    from napari.utils.colormaps import DirectLabelColormap

    colours = {None: "white", 0: "transparent", 1: "dimgray"}
    colours.update({v: layer.colormap.map(v) for v in range(2, 500)})
    layer.colormap = DirectLabelColormap(color_dict=colours)


def _sparse_paint(mask):
    """What a person paints with sparse labels: 3 whole nuclei (2, 3, 4), a ring of background (1) around each
    and a few background strokes, between them and along two edges of the field, kept off every nucleus."""
    import numpy as np
    from scipy.ndimage import binary_dilation
    from skimage.draw import line
    from skimage.measure import regionprops

    props = [r for r in regionprops(mask) if 100 <= r.area <= 600 and min(r.bbox[:2]) > 20
             and max(r.bbox[2:]) < min(mask.shape) - 20]
    props.sort(key=lambda r: r.centroid[0] + r.centroid[1])
    chosen = [props[0], props[len(props) // 2], props[-1]]  # spread over the field
    paint = np.zeros(mask.shape, np.uint16)
    for k, r in enumerate(chosen, start=2):
        paint[mask == r.label] = k
    nuclei = np.isin(mask, [r.label for r in chosen])
    free = ~binary_dilation(mask > 0, iterations=2)
    strokes = np.zeros(mask.shape, bool)
    centres = [tuple(int(c) for c in r.centroid) for r in chosen]
    h, w = mask.shape
    edges = [((20, 5), (h - 20, 5)), ((h - 6, 20), (h - 6, w - 20))]  # the left and the bottom edge
    for (y0, x0), (y1, x1) in list(zip(centres, centres[1:])) + edges:
        rr, cc = line(y0, x0, y1, x1)
        strokes[rr, cc] = True
    strokes = binary_dilation(strokes, iterations=3) & free
    ring = binary_dilation(nuclei, iterations=5) & (mask == 0)
    paint[(strokes | ring) & (paint == 0)] = 1
    return paint


def _labelling(a, pump) -> None:
    """Sparse labels on a DSB field (3 nuclei, background painted with 1), the prediction of another field after
    a short training, then that prediction corrected in a box and added with the box as its reviewed region."""
    import napari
    import numpy as np

    from napari_mia.widgets._layout import _dock_of
    from napari_mia.widgets.training import TrainingWidget

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1500, 1000)
    (img1, mask1), (img2, mask2) = _dsb(_dsb_names(lambda n: 15 <= n <= 30)[:2])
    viewer.add_image(img1, name="field 1")
    paint = viewer.add_labels(_sparse_paint(mask1), name="field 1 labels")
    background_grey(paint)
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    from qtpy.QtCore import Qt

    # wider than napari makes it (the user can drag its edge): the training set's names are not shortened
    viewer.window._qt_window.resizeDocks([_dock_of(widget)], [500], Qt.Orientation.Horizontal)
    c = widget.controls
    c["label_mode"].value = "instances"
    c["sparse"].value = True
    c["epochs"].value, c["steps_per_epoch"].value, c["val_split"].value = 100, 8, 0.0
    c["patch_width"].value = c["patch_height"].value = 128
    widget.add_pair("field 1", "field 1 labels")
    paint.mode, paint.selected_label = "paint", 1  # the brush on background, as when painting it
    viewer.layers.selection.active = paint
    widget.section_deep.collapse(animate=False)  # the Data section whole
    widget.section_training.collapse(animate=False)
    pump(0.5)
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.3)
    viewer.screenshot(str(OUT / "labelling_sparse.png"), canvas_only=False)

    widget.start()
    pump(a.seconds)
    end = time.perf_counter() + 4 * a.seconds  # some epochs on a busy CPU too (the first start loads torch)
    while len(widget.session.record.epochs) < 8 and time.perf_counter() < end:
        pump(0.5)
    widget.session.stop()
    while widget.session.busy:
        pump(0.1)
    viewer.add_image(img2, name="field 2")
    _predict(widget, "field 2", pump)
    for layer in viewer.layers:
        layer.visible = layer.name.startswith("field 2")
    widget.session.plot_widget.redraw()
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    widget.scroll.verticalScrollBar().setValue(0)
    pump(0.2)
    viewer.screenshot(str(OUT / "labelling_sparse_prediction.png"), canvas_only=False)

    # The correct-retrain cycle with a box: the top left quarter checked and corrected (here: made equal to the
    # human labels), a rectangle drawn around it, the prediction added with that region only.
    pred = viewer.layers["field 2 prediction"]
    box = (slice(0, 128), slice(0, 128))
    corrected = np.asarray(pred.data).copy()
    truth = mask2[box].astype(corrected.dtype)
    corrected[box] = np.where(truth > 0, truth + corrected.max(), 0)
    pred.data = corrected
    viewer.add_shapes([np.array([[0, 0], [127, 127]])], shape_type="rectangle", name="checked",
                      face_color="transparent", edge_color="yellow", edge_width=2)
    widget.regions_combo.value = "checked"
    widget.predict_combo.value = "field 2"
    viewer.layers.selection.active = pred
    widget.add_prediction()
    viewer.layers.selection.active = viewer.layers["checked"]
    plot = _dock_of(widget.session.plot_widget)
    if plot is not None:  # the Train Model column whole: the Data section in sight
        plot.hide()
    pump(0.5)
    viewer.reset_view()
    _close_toasts(viewer)
    pump(0.5)
    widget.scroll.verticalScrollBar().setValue(0)
    pump(0.2)
    viewer.screenshot(str(OUT / "labelling_regions.png"), canvas_only=False)
    viewer.close()


def _rounds_dock(viewer):
    """The Train Model dock docked, set for short instance trainings of the rounds pictures (2 x 20 steps)."""
    from napari_mia.widgets.training import TrainingWidget

    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train Model")
    c = widget.controls
    c["label_mode"].value = "instances"
    c["epochs"].value, c["steps_per_epoch"].value = 2, 20
    c["patch_width"].value = c["patch_height"].value = 128
    c["val_split"].value = 0.0
    return widget


def _until_idle(widget, pump) -> None:
    """Until the training or task just started has finished."""
    pump(1)
    while widget.session.busy:
        pump(0.2)


def _rounds(pump) -> None:
    """docs/rounds.md: two DSB fields trained, two kept aside for test, a corrected prediction added, then four
    fields with wrong labels (the background painted as small squares): three rounds, the third said worse."""
    import napari
    import numpy as np

    names = _dsb_names(lambda n: n >= 8)[:9]
    pairs = _dsb(names)
    viewer = napari.Viewer()
    viewer.window.resize(1600, 1000)
    stack = lambda idx, k: np.stack([pairs[i][k] for i in idx])  # noqa: E731
    viewer.add_image(stack([0, 1], 0), name="fields")
    viewer.add_labels(stack([0, 1], 1).astype(np.uint16), name="fields labels")
    viewer.add_image(stack([6, 7], 0), name="kept aside")
    viewer.add_labels(stack([6, 7], 1).astype(np.uint16), name="kept aside labels")
    viewer.add_image(pairs[8][0], name="new field")
    yy, xx = np.mgrid[:256, :256]
    squares = (yy // 12) * 32 + xx // 12 + 1
    viewer.add_image(stack([2, 3, 4, 5], 0), name="mixed up")
    viewer.add_labels(np.where(stack([2, 3, 4, 5], 1) == 0, squares[None], 0).astype(np.uint16),
                      name="mixed up labels")
    widget = _rounds_dock(viewer)
    widget.add_pair("fields", "fields labels")
    widget.add_pair("kept aside", "kept aside labels")
    widget.mark_test([("kept aside", "kept aside labels")])
    widget.pair_list.value = []
    pump(0.5)
    widget.section_data.grab().save(str(OUT / "test_pairs.png"))

    def train():
        widget.start()
        _until_idle(widget, pump)

    train()
    _predict(widget, "new field", pump)
    layer = [la for la in viewer.layers if la.metadata.get("napari_mia_image") == "new field"][-1]
    layer.data = np.where(pairs[8][1] > 0, pairs[8][1] + 1, 0).astype(layer.data.dtype)  # the corrections
    widget.add_prediction()
    train()
    widget.add_pair("mixed up", "mixed up labels")
    train()
    pump(1)
    _close_toasts(viewer)
    plot = widget.session.plot_widget
    plot.grab().save(str(OUT / "rounds_view.png"))
    book = widget.session.trainer.rounds
    for r in book.rounds:
        print(f"round {r.number}: {r.images} images, {r.objects} objects, {r.corrected} corrected, test {r.test}")
    viewer.close()


def _label_next(pump) -> None:
    """docs/rounds.md: three rounds on more and more labelled fields, scored on two fields kept aside, the Rounds
    view's learning curve and forecast, then Label next over the fields not labelled yet (one of them noisy)."""
    import napari
    import numpy as np

    names = _dsb_names(lambda n: n >= 8)[:14]
    pairs = _dsb(names)
    viewer = napari.Viewer()
    viewer.window.resize(1600, 1000)
    stack = lambda idx, k: np.stack([pairs[i][k] for i in idx])  # noqa: E731
    groups = {"first fields": [0, 1], "more fields": [2, 3], "even more fields": [4, 5, 6, 7]}
    for name, idx in groups.items():
        viewer.add_image(stack(idx, 0), name=name)
        viewer.add_labels(stack(idx, 1).astype(np.uint16), name=f"{name} labels")
    viewer.add_image(stack([8, 9], 0), name="kept aside")
    viewer.add_labels(stack([8, 9], 1).astype(np.uint16), name="kept aside labels")
    for k in (10, 11, 12):
        viewer.add_image(pairs[k][0], name=f"new field {k - 9}")
    noisy = np.clip(pairs[13][0] + np.random.default_rng(0).normal(0, 40, pairs[13][0].shape), 0, 255)
    viewer.add_image(noisy.astype(np.uint8), name="noisy field")
    widget = _rounds_dock(viewer)
    for i, name in enumerate(groups):  # a round after each new group of labelled fields
        widget.add_pair(name, f"{name} labels")
        if i == 0:  # the test pair, once there is a pair left to train on
            widget.add_pair("kept aside", "kept aside labels")
            widget.mark_test([("kept aside", "kept aside labels")])
        widget.start()
        _until_idle(widget, pump)
    plot = widget.session.plot_widget
    view = plot.label_next
    view.order.value = "uncertainty"
    view.suggest()
    _until_idle(widget, pump)
    view.list.setCurrentRow(0)
    pump(1)
    _close_toasts(viewer)
    plot.rounds.grab().save(str(OUT / "rounds_forecast.png"))
    viewer.screenshot(str(OUT / "label_next.png"), canvas_only=False)
    for r in widget.session.trainer.rounds.rounds:
        print(f"round {r.number}: {r.images} images, {r.objects} objects, test {r.test}")
    print(plot.rounds.forecast.value)
    print([view.list.item(i).text() for i in range(view.list.count())])
    viewer.close()


if __name__ == "__main__":
    main()
