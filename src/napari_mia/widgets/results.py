"""The "Results" dock: MIA's Results window. Measure objects, count them, export the tables.

Thin, as the other docks: it copies a layer's data into arrays, asks ``engine.measure`` for the
tables, shows them, puts the objects' measurements into the layer's features (napari's hover and
features table show them) and writes CSV files. The layer's data is never changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import napari.layers as L
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..engine.errors import MiaError
from ..engine.measure import count_objects, count_points, measure_objects, unit_suffix, write_table
from ._layout import build_scrolling, place_in_column
from ._messages import notify
from ._session import session_for
from .classes import ClassTable

if TYPE_CHECKING:
    import napari

NONE = "(none)"
CLASSIFICATION = "Image classes (Train Model table)"
OBJECTS, CLASSES = "objects (one number each)", "classes (number = class)"
UNITS = ["px", "nm", "um", "mm"]
SHOWN_ROWS = 2000  # the table shows this many rows; the files hold them all
TABLE_MIN_HEIGHT = 120  # a few rows; the table takes whatever height the dock has beyond its controls


class ResultsWidget(QWidget):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.objects = None  # the last measured tables (pandas DataFrames)
        self.counts = None
        self.measured = None  # the name of the layer (or CLASSIFICATION) they come from
        self._filled_from = None  # the layer the controls were last filled from
        self.layer_combo = ComboBox(label="Measure", choices=[],
                                    tooltip="A Labels layer (objects are measured), a Points layer (points are "
                                            "counted per class) or the class table of image classification.")
        self.image_combo = ComboBox(label="Image", choices=[NONE],
                                    tooltip="The image under the labels: min, mean and max intensity of each "
                                            "object (for a stack of points: its number of frames).")
        self.mode = ComboBox(label="Labels are", choices=[OBJECTS, CLASSES],
                             tooltip="objects: each number is one object (as in instance mode). classes: each "
                                     "number is a class; each connected region of a class is one object.")
        self.class_layer = ComboBox(label="Classes from", choices=[NONE],
                                    tooltip="Objects mode: a Labels layer whose numbers are classes; each object "
                                            "gets the class that covers most of it. (none): class 1 'object'.")
        self.pixel_size = FloatSpinBox(label="Pixel size", min=1e-6, max=1e6, step=0.01, value=1.0,
                                       tooltip="The size of one pixel in the unit below (taken from the layer's "
                                               "scale). Lengths and areas are given in this unit.")
        self.pixel_size.native.setDecimals(5)  # microscopes' pixel sizes, e.g. 0.10833 um
        self._filled_size = None  # Pixel size as filled from the layer's scale (the box rounds it)
        self.unit = ComboBox(label="Unit", choices=list(UNITS),
                             tooltip="px: lengths in pixels. um: micrometres (area in um2), and so on. Taken "
                                     "from the layer's units.")
        self.measure_button = PushButton(text="Measure", tooltip="Measure the chosen layer and show the table.")
        self.save_button = PushButton(text="Save", tooltip="Save the table shown as a CSV file.")
        self.save_all_button = PushButton(
            text="Save all", tooltip="Measure every prediction layer napari-mia made (and the classification table) "
                                     "and save objects.csv, counts.csv and classes.csv in a folder.")
        self.summary = Label(value="Choose a layer and press Measure.")
        form = Container(widgets=[self.layer_combo, self.image_combo, self.mode, self.class_layer, self.pixel_size,
                                  self.unit])
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setMinimumHeight(TABLE_MIN_HEIGHT)
        # As the Train Model dock (widgets/_layout.py): the choices and the table scroll, the buttons and the
        # summary stay pinned below them, long layer names are elided, so that the dock shares napari's default
        # window with Train Model and Training Data without growing the window or widening the docks' column.
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(form.native)
        lay.addWidget(self.table, stretch=1)
        actions = Container(widgets=[Container(widgets=[self.measure_button, self.save_button, self.save_all_button],
                                               layout="horizontal", labels=False), self.summary])
        self.scroll = build_scrolling(self, inner, actions, wrapped=[self.summary])
        # Docked by napari below the docks already in the column: asking for its height there could grow the
        # window past the screen. It asks for none until it is placed (``showEvent``), as a tab where the column
        # has no room for it.
        self.setMinimumHeight(1)
        self._placed = False

        self.layer_combo.changed.connect(self._on_layer)
        self.mode.changed.connect(lambda *_: self._update_visibility())
        self.measure_button.changed.connect(self.measure)
        self.save_button.changed.connect(self._on_save)
        self.save_all_button.changed.connect(self._on_save_all)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                   self.viewer.layers.events.moved):
            ev.connect(self._refresh)
        layers_events = self.viewer.layers.events
        refresh, on_inserted = self._refresh, self._on_inserted

        def closed(*_):
            for ev in (layers_events.inserted, layers_events.removed, layers_events.moved):
                ev.disconnect(refresh)
            layers_events.inserted.disconnect(on_inserted)

        self.destroyed.connect(closed)
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        # The class table appears when the Train Model dock opens, which no layer event tells: look again
        # whenever the list is opened.
        self.layer_combo.native.installEventFilter(self)
        self._refresh()

    def showEvent(self, event):  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            self._place()

    def _place(self) -> None:
        """Once docked: a tab beside the column's lowest dock if its own place is too low for its controls; from
        then on it asks for the height they need."""
        try:
            # its controls, with room for the summary's longer texts (a measured layer's counts)
            wanted = self.layout().totalMinimumSize().height() + 2 * self.fontMetrics().lineSpacing()
            self.setMinimumHeight(wanted)
            place_in_column(self, wanted)
        except RuntimeError:  # closed meanwhile
            pass

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if obj is self.layer_combo.native and event.type() == QEvent.MouseButtonPress:
            self._refresh()
        return super().eventFilter(obj, event)

    # -- layers -----------------------------------------------------------------------
    def _names(self, *kinds) -> list[str]:
        classes = tuple(getattr(L, k) for k in kinds)
        # isinstance, not type(...).__name__: a plugin dock is handed proxies of the layers
        return [layer.name for layer in self.viewer.layers if isinstance(layer, classes)]

    def _refresh(self, *_):
        for combo, names in [(self.image_combo, [NONE, *self._names("Image")]),
                             (self.class_layer, [NONE, *self._names("Labels")])]:
            keep = combo.value
            combo.choices = names
            combo.value = keep if keep in names else NONE
        table = self.class_table()
        choices = self._names("Labels", "Points") + ([CLASSIFICATION] if table is not None and table.rows() else [])
        current = self.layer_combo.value
        self.layer_combo.choices = choices
        if current in choices:
            self.layer_combo.value = current
        if self.layer_combo.value != self._filled_from:  # a typed pixel size stays while the layer does
            self._on_layer()

    def _on_inserted(self, event):
        """The Train Model dock marks its prediction layers just after adding them: fill the controls from
        a new layer once more, when the metadata is there."""
        name = event.value.name

        def refill():
            try:
                if self.layer_combo.value == name:
                    self._on_layer()
            except RuntimeError:  # the dock was closed meanwhile
                pass

        QTimer.singleShot(0, refill)

    def _on_layer(self, *_):
        """Fill the controls from the chosen layer: its image, its kind of labels, its scale and units."""
        name = self.layer_combo.value
        self._filled_from = name
        if name is None or name == CLASSIFICATION or name not in self.viewer.layers:
            self._update_visibility()
            return
        layer = self.viewer.layers[name]
        image = layer.metadata.get("napari_mia_image")
        images = self._names("Image")
        if image not in images:  # an image of the same height and width, else none
            same = [n for n in images if _plane_shape(self.viewer.layers[n]) == tuple(layer.data.shape[-2:])]
            image = same[0] if same else NONE
        self.image_combo.value = image
        self.mode.value = CLASSES if self._model_value(layer, "label_mode") == "classes" else OBJECTS
        self.pixel_size.value = float(layer.scale[-1])
        self._filled_size = self.pixel_size.value
        unit = unit_suffix(layer.units[-1]) if hasattr(layer, "units") else "px"
        if unit not in self.unit.choices:
            self.unit.choices = [*self.unit.choices, unit]
        self.unit.value = unit
        self._update_visibility()

    def _update_visibility(self):
        name = self.layer_combo.value
        labels = name in self._names("Labels")
        points = name in self._names("Points")
        self.image_combo.visible = labels or points
        self.mode.visible = labels
        self.class_layer.visible = labels and self.mode.value == OBJECTS
        self.pixel_size.visible = self.unit.visible = labels

    def _model_value(self, layer, what: str):
        """The trained model's label_mode / class_names, for the prediction layers napari-mia made."""
        if layer.metadata.get("napari_mia") not in ("prediction", "training labels"):
            return None
        trainer = session_for(self.viewer).trainer
        if trainer is None:
            return None
        return getattr(trainer.settings.model, what)

    def class_table(self):
        """The Train Model dock's class table, if one is docked in this viewer (found among the docks)."""
        try:
            docks = list(self.viewer.window.dock_widgets.values())
        except (AttributeError, RuntimeError):
            return None
        for w in docks:
            qt = getattr(w, "native", w)
            if isinstance(qt, ClassTable):
                return qt
            found = qt.findChildren(ClassTable) if hasattr(qt, "findChildren") else []
            if found:
                return found[0]
        return None

    # -- measuring --------------------------------------------------------------------
    def _spacing(self, layer) -> tuple[float, float]:
        """The layer's own (y, x) scale while Pixel size shows it (rounded), else the number typed, for y and x."""
        if self._filled_from == layer.name and self.pixel_size.value == self._filled_size:
            return tuple(float(s) for s in layer.scale[-2:])
        return (self.pixel_size.value,) * 2

    def measure_layer(self, name: str, image: str | None = None, mode: str | None = None,
                      class_layer: str | None = None, spacing=None, unit: str | None = None):
        """(objects table or None, counts table) of one layer, the layer untouched."""
        layer = self.viewer.layers[name]
        img = self.viewer.layers[image] if image not in (None, NONE) and image in self.viewer.layers else None
        shown = img.name if img is not None else name
        if isinstance(layer, L.Points):
            frames = None
            if layer.data.shape[1] > 2:
                frames = int(img.data.shape[0]) if img is not None and img.ndim > 2 else None
            # a point without a class (NaN, 0) counts as class 1, as napari-mia trains it
            cls = np.nan_to_num(np.asarray(layer.features["class"], float)).astype(int) \
                if "class" in layer.features else None
            names = self._model_value(layer, "class_names")
            return None, count_points(np.asarray(layer.data), cls, name=shown, frames=frames, class_names=names,
                                      classes=list(range(1, len(names))) if names else None)
        labels = np.asarray(layer.data[0] if layer.multiscale else layer.data)  # full resolution
        mode = mode or "instances"
        classes = None
        if mode == "instances" and class_layer not in (None, NONE):
            classes = np.asarray(self.viewer.layers[class_layer].data)
        names = self._model_value(layer, "class_names") if mode == "classes" else None
        pixels = None if img is None else np.asarray(img.data[0] if img.multiscale else img.data)
        objects = measure_objects(labels, pixels, mode=mode, classes=classes,
                                  class_names=names, spacing=spacing or tuple(layer.scale[-2:]),
                                  unit=unit or (layer.units[-1] if hasattr(layer, "units") else None), name=shown,
                                  rgb=None if img is None else bool(img.rgb))
        frames = {shown: int(labels.shape[0]) if labels.ndim == 3 else None}
        every = list(range(1, len(names))) if names else None  # the model's classes, found or not
        return objects, count_objects(objects, images=frames, class_names=names, classes=every)

    def measure(self, *_) -> bool:
        """Measure the chosen layer: show its table; a Labels layer's objects become its features."""
        name = self.layer_combo.value
        if name is None:
            self._notify("Choose a Labels or Points layer to measure.")
            return False
        if name == CLASSIFICATION:
            return self._measure_classes()
        if name not in self.viewer.layers:
            self._notify(f"The layer '{name}' is gone.")
            return False
        layer = self.viewer.layers[name]
        mode = "classes" if self.mode.value == CLASSES else "instances"
        try:
            objects, counts = self.measure_layer(name, self.image_combo.value, mode, self.class_layer.value,
                                                 self._spacing(layer), self.unit.value)
        except MiaError as e:
            self._notify(str(e))
            return False
        self.objects, self.counts, self.measured = objects, counts, name
        total = ", ".join(f"{n}: {c}" for n, c in counts.groupby("class_name", sort=False)["count"].sum().items())
        if isinstance(layer, L.Points):
            self.summary.value = f"{int(counts['count'].sum())} points in '{name}' ({total})."
            self._show(counts)
            return True
        note = self._set_features(layer, objects, mode)
        self.summary.value = f"{len(objects)} objects in '{name}' ({total}). {note}"
        self._show(objects)
        return True

    def _set_features(self, layer, objects, mode: str) -> str:
        """The measurements as the layer's features, where a number names one object (so hovering shows
        that object's row); else the layer's features are left as they were."""
        repeated = "frame" in objects and objects["label"].duplicated().any()
        if mode == "classes" or repeated or len(objects) == 0:
            why = "a number is a class" if mode == "classes" else "frames reuse the same numbers"
            return f"Not shown on hover ({why}): the table holds each object."
        layer.features = objects.assign(index=objects["label"].to_numpy())
        return "Hover over an object to see its measurements."

    def _measure_classes(self) -> bool:
        table = self.class_table()
        if table is None:
            self._notify("There is no class table: open the Train Model dock on Image classification.")
            return False
        self.objects, self.counts, self.measured = classes_table(table), None, CLASSIFICATION
        predicted = self.objects["prediction"].astype(bool).sum()
        self.summary.value = f"{len(self.objects)} frames, {predicted} classified by the model."
        self._show(self.objects)
        return True

    def _show(self, table) -> None:
        shown = table.head(SHOWN_ROWS)
        if len(table) > SHOWN_ROWS:
            self.summary.value += f" The first {SHOWN_ROWS} rows are shown; Save writes all {len(table)}."
        self.table.clear()
        self.table.setColumnCount(len(shown.columns))
        self.table.setRowCount(len(shown))
        self.table.setHorizontalHeaderLabels([str(c) for c in shown.columns])
        for c, col in enumerate(shown.columns):
            for r, v in enumerate(shown[col].tolist()):
                text = "" if v is None or (isinstance(v, float) and np.isnan(v)) else \
                    f"{v:.4g}" if isinstance(v, float) else str(v)
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    # -- saving -----------------------------------------------------------------------
    def save(self, path) -> list[Path]:
        """The table shown, as CSV at `path`; for Labels also the counts, as '<name>_counts.csv' beside it."""
        if self.objects is None and self.counts is None:
            self._notify("Press Measure first: there is no table to save yet.")
            return []
        path = Path(path)
        try:
            if self.objects is None:  # points: the counts are the table
                return [write_table(self.counts, path)]
            written = [write_table(self.objects, path)]
            if self.counts is not None:
                written.append(write_table(self.counts, path.with_name(f"{path.stem}_counts.csv")))
        except MiaError as e:
            self._notify(str(e))
            return []
        self.summary.value = f"Saved {', '.join(p.name for p in written)} in {path.parent}"
        return written

    def save_all(self, folder) -> list[Path]:
        """Every prediction layer napari-mia made: objects.csv and counts.csv; classification: classes.csv.
        Each layer is measured with its image and the model's kind of labels, in the pixel size shown."""
        import pandas as pd  # pandas: imported when a table is saved, not when the dock opens

        folder = Path(folder)
        objects, counts = [], []
        for layer in list(self.viewer.layers):
            if layer.metadata.get("napari_mia") != "prediction" or not isinstance(layer, (L.Labels, L.Points)):
                continue
            mode = "classes" if self._model_value(layer, "label_mode") == "classes" else "instances"
            spacing = (self.pixel_size.value,) * 2 if self.unit.value != "px" else None
            try:
                o, c = self.measure_layer(layer.name, layer.metadata.get("napari_mia_image"), mode,
                                          spacing=spacing, unit=self.unit.value if spacing else None)
            except MiaError as e:
                self._notify(f"{layer.name}: {e}")
                return []
            if o is not None:
                objects.append(o)
            counts.append(c)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if objects:
                written.append(write_table(pd.concat(objects, ignore_index=True), folder / "objects.csv"))
            if counts:
                written.append(write_table(pd.concat(counts, ignore_index=True), folder / "counts.csv"))
            table = self.class_table()
            if table is not None and table.predicted:
                written.append(write_table(classes_table(table), folder / "classes.csv"))
        except (MiaError, OSError) as e:
            self._notify(str(e))
            return []
        if not written:
            self._notify("There is no prediction to save: predict images with the Train Model dock first.")
            return []
        self.summary.value = f"Saved {', '.join(p.name for p in written)} in {folder}"
        return written

    def _on_save(self, *_):
        default = f"{self.measured or 'results'}.csv".replace(" ", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Save table", default, "CSV table (*.csv)")
        if path:
            self.save(path)

    def _on_save_all(self, *_):
        folder = QFileDialog.getExistingDirectory(self, "Save all results in folder")
        if folder:
            self.save_all(folder)

    def _notify(self, message: str):
        notify(message)
        self.summary.value = message


def classes_table(table):
    """The class table's frames: image, frame, class (given by a person), prediction, probability."""
    import pandas as pd  # pandas: imported when a table is made, not when the dock opens

    names = table.class_names()
    rows = []
    for name, frame in table.rows():
        given = table.truth[name][frame]
        pred = table.predicted.get(name, [])
        p = pred[frame] if frame < len(pred) else None
        rows.append({"image": name, "frame": frame, "class": _class_name(names, given) if given >= 0 else "",
                     "prediction": _class_name(names, p[0]) if p else "",
                     "probability": round(p[1], 4) if p else np.nan})
    return pd.DataFrame(rows, columns=["image", "frame", "class", "prediction", "probability"])


def _class_name(names, c: int) -> str:
    return names[c] if 0 <= c < len(names) else f"class {c + 1}"


def _plane_shape(layer) -> tuple:
    shape = tuple(layer.data.shape)
    return shape[-3:-1] if getattr(layer, "rgb", False) else shape[-2:]
