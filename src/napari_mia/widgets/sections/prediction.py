"""The Train Model dock's Prediction section: how Predict reads the images (the objects' size, test-time
augmentation), Estimate, and Evaluate with its table of scores."""

from __future__ import annotations

from typing import Callable

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, Table
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QStyledItemDelegate, QTableWidgetItem

from ...engine import applications
from ...engine.errors import MiaError
from ...engine.scale import SAME_SCALE, estimate_diameter
from .._session import explain
from .data import DataSection

# The section's options when the dock opens for the first time, and after Reset to defaults.
# Auto: each image's objects are measured and brought to the model's size (where the model knows it).
PREDICTION_DEFAULTS = {"diameter": 0.0, "diameter_auto": True, "tta": False}


class PredictionSection:
    """`chosen_image`: the image chosen under Predict image (among the actions); `model_app`: the adapter of the
    model's application; `apply_kept`: the controls that apply after training reach the model; `closed`: whether
    the dock is gone (a prediction may still arrive)."""

    def __init__(self, viewer, session, data: DataSection, status: Label, notify: Callable[[str], None],
                 chosen_image: Callable[[], str | None], model_app: Callable, apply_kept: Callable[[], None],
                 closed: Callable[[], bool]):
        self.viewer, self.session, self.data, self.status, self.notify = viewer, session, data, status, notify
        self._chosen_image, self._model_app, self._apply_kept, self._closed = chosen_image, model_app, \
            apply_kept, closed
        self.diameter = FloatSpinBox(
            value=0.0, min=0.0, max=5000.0, step=1.0,
            tooltip="The typical diameter of the objects, in pixels, in the image you predict. The model rescales "
                    "the image so that its objects have the size it was trained on, and gives the result at the "
                    "image's own size. 0 = predict at the model's own scale (images like its training images).")
        self.estimate_button = PushButton(
            text="Estimate", tooltip="Measure the objects' typical diameter in the image chosen under Predict image "
                                     "(the frame on screen) and put it in the field.")
        self.diameter.native.setDecimals(1)
        self.diameter_row = Container(widgets=[self.diameter, self.estimate_button], layout="horizontal",
                                      labels=False, label="Object diameter (px)")
        self.diameter_row.margins = (0, 0, 0, 0)
        self.diameter_auto = CheckBox(
            text="Estimate it for each image", value=PREDICTION_DEFAULTS["diameter_auto"],
            tooltip="Measure the objects' diameter in every image (every frame of a stack) before predicting it, "
                    "and bring it to the size the model learned: images of another magnification work as they "
                    "are. Images where nothing is found, or whose objects are close to the model's size, are "
                    "predicted at the model's own scale. Untick to type a diameter, or 0 for the model's scale.")
        self.tta = CheckBox(
            text="Test-time augmentation", value=False,
            tooltip="Predict each image 8 times, flipped and rotated, and average: often a little more accurate "
                    "and smoother, but 8 times slower.")
        self.evaluate_combo = ComboBox(
            choices=[], tooltip="Your own labels of the image chosen under Predict image. Evaluate on images that "
                                "are not in the training set: the model has learnt those.")
        self.evaluate_button = PushButton(
            text="Evaluate", tooltip="Predict the image chosen under Predict image and score the prediction "
                                     "against the labels chosen here (the table below).")
        self.evaluate_row = Container(widgets=[self.evaluate_combo, self.evaluate_button], layout="horizontal",
                                      labels=False, label="Evaluate with")
        self.evaluate_row.margins = (0, 0, 0, 0)
        self.scores_table = Table(value=[], tooltip="Scores of the model's prediction against your labels, per "
                                                    "image (a stack: the mean over its frames).")
        self.scores_table.read_only = True
        # Qt's own display of the texts: magicgui's delegate would show 0.009 as 9.000e-03
        self.scores_table.native.setItemDelegate(QStyledItemDelegate(self.scores_table.native))
        self.scores_table.visible = False
        self.scores: dict[str, dict] = {}  # image name -> scores of its last evaluation
        self.box = Container(widgets=[self.diameter_row, self.diameter_auto, self.tta, self.evaluate_row,
                                      self.scores_table])

    def connect(self) -> None:
        self.estimate_button.changed.connect(self.estimate_diameter)
        self.diameter_auto.changed.connect(self._on_diameter_auto)
        self._on_diameter_auto()
        self.evaluate_button.changed.connect(self.evaluate)

    def _on_diameter_auto(self, *_):
        self.diameter.enabled = self.estimate_button.enabled = not self.diameter_auto.value

    # -- options, as remembered between sessions ------------------------------------------
    def section_options(self) -> dict:
        """The section's options (not model settings), as remembered."""
        return {"diameter": float(self.diameter.value), "diameter_auto": bool(self.diameter_auto.value),
                "tta": bool(self.tta.value)}

    def write_options(self, options: dict) -> None:
        self.diameter.value = min(max(options["diameter"], self.diameter.min), self.diameter.max)
        self.diameter_auto.value, self.tta.value = options["diameter_auto"], options["tta"]

    # -- object scale -----------------------------------------------------------------------
    def prediction_options(self) -> dict:
        """The predictor's `diameter` and `tta` from this section, as the model's application takes them
        (classification: no diameter)."""
        diameter = "auto" if self.diameter_auto.value else (float(self.diameter.value) or None)
        if diameter == "auto" and self.model_diameter() is None:
            diameter = None  # a model that does not know its objects' size predicts at its own scale
        return self._model_app().prediction_options(diameter, bool(self.tta.value))

    def model_diameter(self) -> float | None:
        """The objects' diameter the model was trained on, in its training images' pixels (None: not recorded,
        or classification)."""
        trainer = self.session.trainer
        if trainer is None:
            return None
        app = applications.for_settings(trainer.settings)
        d = None if app.whole_image else app.model_diameter(trainer.settings)
        return d / trainer.settings.data.downscale if d else None

    def scale_text(self, name: str) -> str:
        """The objects' size that the last prediction of `name` used, for the status line."""
        if name not in self.session.diameters or self.prediction_options().get("diameter") is None:
            return ""
        d, m = self.session.diameters[name], self.model_diameter()
        if d is None:
            return ": no objects measured, predicted at the model's own scale."
        if m and self.prediction_options().get("diameter") == "auto" and abs(np.log(d / m)) < np.log(SAME_SCALE):
            return f": objects' diameter {d:.0f} px, close to the model's {m:.0f} px: predicted at its own scale."
        return f": objects' diameter {d:.0f} px (model: {m:.0f} px)." if m else f": objects' diameter {d:.0f} px."

    def _current_frame(self, image) -> np.ndarray | None:
        """The 2D image (or (H, W, C) image of several channels, averaged past 4) on screen of `image` (as
        ``image_for`` reads a layer); None for more dimensions."""
        data = image.data
        spatial = np.ndim(data) - (1 if image.rgb else 0)
        if spatial == 2:
            frame = np.asarray(data)
        elif spatial == 3:
            i = int(round(float(image.layer.world_to_data(self.viewer.dims.point)[0])))
            frame = np.asarray(data[min(max(i, 0), len(data) - 1)])
        else:
            return None
        return frame.mean(-1) if image.rgb and frame.shape[-1] > 4 else frame

    def estimate_diameter(self, *_) -> float | None:
        """Estimate: the objects' diameter in the chosen image's frame on screen goes into the field."""
        name = self._chosen_image()
        if name is None or name not in self.viewer.layers:
            self.notify("Choose the image under Predict image first: Estimate measures its objects.")
            return None
        frame = self._current_frame(self.data.image_for(name))
        if frame is None:
            self.notify(f"'{name}' has more than 3 dimensions: Estimate measures 2D images and stacks of them.")
            return None
        d = estimate_diameter(frame)
        if d is None:
            self.notify(f"No objects found in '{name}' (the frame on screen): type their diameter in pixels, or "
                        "leave 0 to predict at the model's own scale.")
            return None
        self.diameter_auto.value = False
        self.diameter.value = round(d, 1)
        m = self.model_diameter()
        self.status.value = f"Objects in '{name}' are about {d:.0f} px across" + (
            f"; the model's were {m:.0f} px: Predict rescales the image by {m / d:.2f}." if m else
            ". Predict rescales the image to the objects' size the model was trained on.")
        return d

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, *_) -> bool:
        """Evaluate: predict the chosen image and score it against the chosen labels (or points), which must
        not be in the training set; the scores go into the table."""
        image_name, truth_name = self._chosen_image(), self.evaluate_combo.value
        app = self._model_app()
        if not self.session.has_model:
            self.notify("There is no model to evaluate yet: train or load one first.")
            return False
        kind = (app.target_kind or "labels").lower()
        if image_name is None or truth_name is None:
            self.notify(f"Choose an image under Predict image and its {kind} layer under Evaluate with.")
            return False
        image, truth = self.data.image_for(image_name), self.viewer.layers[truth_name]
        try:
            if not image.plain:  # layers read as they are: the engine checks
                image.check(self.data.input_channels(), trained=True)
            app.check_target(image, truth)
            target = app.target_of(image, truth)
        except MiaError as e:
            self.notify(explain(e))
            return False
        if app.in_training_set(image_name, truth_name):
            self.notify(f"'{image_name}' is in the training set: the model has learnt it, so its scores would "
                        f"look better than the model is. Evaluate on an image with {kind} that is not in the "
                        "training set.")
            return False
        self._apply_kept()

        def scored(name, result):
            if not self._closed():
                self._show_scores(name, truth_name, app.scores(result, target, self.session.diameters.get(name)))

        if not self.session.predict([(image_name, np.array(image.data), bool(image.rgb), image.label)], scored,
                                    post=app.post_process(), options=self.prediction_options()):
            return False
        self.status.value = f"Evaluating {image_name} against {truth_name}…"
        return True

    def _show_scores(self, name: str, truth_name: str, scores: dict) -> None:
        """The table: a row per score, a column per evaluated image (its latest evaluation)."""
        self.scores.pop(name, None)
        self.scores[name] = scores
        rows = list(dict.fromkeys(k for s in self.scores.values() for k in s))

        def text(v):
            return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

        native = self.scores_table.native  # filled with texts, one decimal format for every score
        native.clear()
        native.setRowCount(len(rows))
        native.setColumnCount(len(self.scores))
        native.setVerticalHeaderLabels(rows)
        native.setHorizontalHeaderLabels(list(self.scores))
        for j, s in enumerate(self.scores.values()):
            for i, r in enumerate(rows):
                item = QTableWidgetItem(text(s.get(r)))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                native.setItem(i, j, item)
        self.scores_table.visible = True
        native.resizeColumnsToContents()
        native.setFixedHeight(native.horizontalHeader().height() + sum(native.rowHeight(i) for i in
                                                                       range(len(rows))) + 2 * native.frameWidth() + 2)
        first = list(scores.items())[:2]
        self.status.value = f"'{name}' against '{truth_name}': " + ", ".join(f"{k} {text(v)}" for k, v in first) \
            + self.scale_text(name)
