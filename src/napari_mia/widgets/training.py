"""The "Train Model" dock: MIA's Training Window over the engine.

Thin on purpose: it turns layers into copied arrays, controls into a
``Settings``, and hands both to the viewer's ``TrainingSession``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, Select, SpinBox
from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..engine.data import check_pair_shape
from ..engine import settings as S
from ..engine.errors import DataError, MiaError
from ..engine.models import valid_encoders
from ..engine.settings import Settings
from . import _forms as F
from ._session import IDLE, LOADING, TRAINING, explain, session_for
from .export import export_dialog

if TYPE_CHECKING:
    import napari

# shown name -> the engine's task
APPLICATIONS = {"Semantic segmentation": "segmentation", "Object detection": "detection",
                "Image classification": "classification"}
TASK_NAMES = {v: k for k, v in APPLICATIONS.items()}
# What the user draws for each application, and the layer type that holds it.
TARGET_KINDS = {"segmentation": "Labels", "detection": "Points"}
_APP_TIPS = {
    "segmentation": "What the model learns: a class for every pixel, from a Labels layer.",
    "detection": "What the model learns: where the objects are, from a Points layer with one point per object.",
    "classification": "What the model learns: a class for each image (or each frame of a stack).",
}


class TrainingWidget(QWidget):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.pairs: list[tuple[str, str]] = []  # (image layer name, labels layer name)
        self._guessed: dict[str, str | None] = {}  # labels layer name -> label mode its data suggests
        self._epoch_text = ""  # the last epoch's result, kept in the status line during the next epoch
        self.controls = {f: F.make_control(f) for f in F.SPECS}
        c = self.controls

        # -- data -------------------------------------------------------------
        self.application = ComboBox(label="Application", choices=list(APPLICATIONS),
                                    tooltip=_APP_TIPS["segmentation"])
        self.image_combo = ComboBox(label="Image", choices=self._layer_names("Image"),
                                    tooltip="An image layer to train on.")
        self.labels_combo = ComboBox(label="Labels", choices=self._layer_names("Labels"),
                                     tooltip="The labels layer drawn on that image (0 = background).")
        self.add_button = PushButton(text="Add to training set",
                                     tooltip="Add this image with its labels to the training set.")
        self.pair_list = Select(label="Training set", choices=[], tooltip="Image / labels pairs used for training.")
        self.remove_button = PushButton(text="Remove selected", tooltip="Take the selected pairs out.")
        self.classes_label = Label(label="Classes", value="(add labels)")
        data = Container(widgets=[self.application, self.image_combo, self.labels_combo, self.add_button,
                                  self.pair_list, self.remove_button, c["label_mode"], c["object_size"],
                                  c["object_intensity"], self.classes_label])
        from .classes import ClassTable

        self.class_table = ClassTable(self.viewer)
        # -- model and parameters --------------------------------------------------
        # Exported once per model, so it sits with the model's section rather than in the pinned actions,
        # which must fit napari's default window height beside the Training Data dock.
        self.export_button = PushButton(text="Export (bioimage.io)", tooltip="Save the model as a bioimage.io "
                                        "package for Fiji, QuPath, ilastik and BiaPy (tested before it is saved).")
        model = Container(widgets=[*(c[f] for f in F.MODEL_FIELDS), self.export_button])
        params = Container(widgets=[c[f] for f in F.PARAM_FIELDS])
        self.find_devices_button = PushButton(text="Find GPUs", tooltip="Look for CUDA and Apple GPUs.")
        self.device_label = Label(value="GPU search not run yet")
        device = Container(widgets=[c["device"], self.find_devices_button, self.device_label])
        settings = Container(widgets=[c[f] for f in F.SETTINGS_FIELDS])
        augment = Container(widgets=[c[f] for f in F.AUGMENT_FIELDS])
        # -- actions ----------------------------------------------------------------
        self.start_button = PushButton(text="Start Training",
                                       tooltip="Train on the training set, continuing from the current weights.")
        self.stop_button = PushButton(text="Stop", tooltip="Stop after the current step; the weights are kept.")
        self.resume_button = PushButton(text="Resume", tooltip="Continue the stopped training where it stopped.")
        self.reset_button = PushButton(text="Reset Model", tooltip="Forget the trained weights and start over.")
        self.save_button = PushButton(text="Save Model", tooltip="Save weights and settings in one file.")
        self.load_button = PushButton(text="Load Model", tooltip="Load a model file and its settings.")
        self.predict_combo = ComboBox(label="Predict image", choices=self._layer_names("Image"),
                                      tooltip="The image to predict (a new labels layer appears).")
        self.predict_button = PushButton(text="Predict", tooltip="Predict the chosen image with the current model.")
        self.predict_all_button = PushButton(text="Predict all",
                                             tooltip="Predict every image layer (each frame of a stack).")
        self.add_prediction_button = PushButton(
            text="Add prediction to training set",
            tooltip="After correcting '<image> prediction' with napari's label tools, train on it too: it joins "
                    "the training set with its image, and Start Training continues from the current weights.")
        self.min_size = SpinBox(label="Min object size", min=0, max=1_000_000, value=0,
                                tooltip="Objects smaller than this many pixels are removed from predictions.")
        self.fill_holes = CheckBox(text="Fill holes", value=False,
                                   tooltip="Fill holes inside predicted objects.")
        self.split_touching = CheckBox(
            text="Split touching objects", value=True,
            tooltip="Instances: cut touching objects apart along the predicted boundaries. Off: each connected "
                    "blob is one object.")
        post = Container(widgets=[self.min_size, self.fill_holes, self.split_touching])
        self.status = Label(value="No model yet.")
        actions = Container(widgets=[
            Container(widgets=[self.start_button, self.stop_button, self.resume_button], layout="horizontal",
                      labels=False),
            Container(widgets=[self.reset_button, self.save_button, self.load_button], layout="horizontal",
                      labels=False),
            self.predict_combo,
            Container(widgets=[self.predict_button, self.predict_all_button], layout="horizontal", labels=False),
            self.add_prediction_button, self.status])

        # Layout (widgets/_layout.py, issue #13): the sections scroll, the actions stay pinned below them
        # (in reach also when the Training Data dock halves the column), long texts are elided or wrapped.
        from ._layout import build_dock, caption_out_of_the_toasts

        self.scroll = build_dock(self, [("Data", data, True), ("Classes", self.class_table, True),
                                        ("Deep learning model", model, True), ("Training parameters", params, True),
                                        ("Device", device, False), ("Settings", settings, False),
                                        ("Augmentations", augment, False), ("Post-processing", post, False)],
                                 actions, wrapped=[self.status, self.classes_label, self.device_label])
        caption_out_of_the_toasts(self.viewer)
        # widgets that must not change while a training runs
        self._locked = [self.application, self.add_button, self.remove_button, self.pair_list, self.reset_button,
                        self.load_button, self.start_button, *c.values(), self.find_devices_button]

        # -- wiring -----------------------------------------------------------------
        self.add_button.changed.connect(self._on_add)
        self.remove_button.changed.connect(self._on_remove)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.session.stop)
        self.resume_button.changed.connect(self.session.resume)
        self.reset_button.changed.connect(self._on_reset)
        self.save_button.changed.connect(self._on_save)
        self.load_button.changed.connect(self._on_load)
        self.export_button.changed.connect(lambda *_: export_dialog(self))
        self.predict_button.changed.connect(self.predict)
        self.predict_all_button.changed.connect(self.predict_all)
        self.add_prediction_button.changed.connect(self.add_prediction)
        self.find_devices_button.changed.connect(self.find_devices)
        c["architecture"].changed.connect(self._on_architecture)
        c["label_mode"].changed.connect(lambda *_: self._update_classes())
        self.application.changed.connect(self._on_application)
        self.class_table.changed.connect(self._update_classes)
        self.viewer.dims.events.current_step.connect(self._update_overlay)
        self.viewer.layers.selection.events.active.connect(self._update_overlay)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                   self.viewer.layers.events.moved):
            ev.connect(self._refresh_layers)
        self.session.connect_widget(self, [(self.session.state_changed, self._update_buttons),
                                           (self.session.event, self._on_event),
                                           (self.session.failed, self._show_failure),
                                           (self.session.predict_progress, self._on_predict_progress)])
        # Closing the viewer (or this dock) stops the training: nothing would show its progress.
        session = self.session

        viewer = self.viewer
        update_overlay = self._update_overlay

        def closed(*_):
            self._closed = True
            session.stop()
            viewer.dims.events.current_step.disconnect(update_overlay)
            viewer.layers.selection.events.active.disconnect(update_overlay)

        self._closed = False
        self.destroyed.connect(closed)
        self._on_architecture()
        self._on_application()
        self._update_buttons()

    # -- application --------------------------------------------------------------
    @property
    def task(self) -> str:
        return APPLICATIONS[self.application.value]

    def _on_application(self, *_):
        """Show the controls of the chosen application; pairs of another kind leave the training set."""
        task, c = self.task, self.controls
        self.application.tooltip = _APP_TIPS[task]
        kind = TARGET_KINDS.get(task)
        for w in (self.labels_combo, self.pair_list, self.remove_button):
            w.visible = kind is not None
        self.labels_combo.label = kind or "Labels"
        self.labels_combo.tooltip = ("The points put on that image, one per object (a 'class' feature, if "
                                     "any, gives each point's class)." if task == "detection" else
                                     "The labels layer drawn on that image (0 = background).")
        self.add_button.text = "Add image to training set" if task == "classification" else "Add to training set"
        self.add_button.tooltip = ("Add this image (every frame of a stack) to the table below, then give each "
                                   "a class." if task == "classification" else
                                   f"Add this image with its {kind.lower()} to the training set." if kind else "")
        c["label_mode"].visible = task == "segmentation"
        self.classes_label.visible = task != "classification"
        for f in ("object_size", "object_intensity"):
            c[f].visible = task == "detection"
        c["architecture"].visible = task != "classification"  # a classifier is a backbone and one layer
        self.section_classes.setVisible(task == "classification")
        self.section_post_processing.setVisible(task == "segmentation")
        self.predict_combo.tooltip = {"segmentation": "The image to predict (a new labels layer appears).",
                                      "detection": "The image to predict (a new points layer appears).",
                                      "classification": "The image to classify (the classes appear in the "
                                                        "table and on the image)."}[task]
        self.add_prediction_button.tooltip = {
            "segmentation": "After correcting '<image> prediction' with napari's label tools, train on it too.",
            "detection": "After correcting '<image> detections' (add, move or delete points), train on it too.",
            "classification": "The predicted classes become the classes of the image's frames that have none "
                              "yet (correct the wrong ones with keys 1-9 first).",
        }[task]
        # Losses and metrics that fit the task; a choice that does not fit falls back to the task's default.
        losses = S.task_losses(task)
        current = c["loss"].value
        c["loss"].choices = losses
        c["loss"].value = current if current in losses else S.default_loss(task)
        if task == "classification" and c["metric"].value == "iou":
            c["metric"].value = "accuracy"
        if self.pairs and task != getattr(self, "_pairs_task", task):
            self.pairs = []
            self._update_pairs()
        self._pairs_task = task
        self._refresh_layers()
        self._update_classes()

    # -- layers ---------------------------------------------------------------------
    def _layer_names(self, kind: str) -> list[str]:
        return [layer.name for layer in self.viewer.layers if _is_kind(layer, kind)]

    def _target_choices(self, kind: str) -> list[tuple[str, str]]:
        """(shown text, layer name) for the Labels/Points combo: the model's own predictions last and marked,
        so that a prediction is not taken for the user's labels without notice."""
        layers = [layer for layer in self.viewer.layers if _is_kind(layer, kind)]
        drawn = [(layer.name, layer.name) for layer in layers if not _is_prediction(layer)]
        return drawn + [(f"{layer.name} (prediction)", layer.name) for layer in layers if _is_prediction(layer)]

    def _refresh_layers(self, *_):
        for combo, kind in [(self.image_combo, "Image"), (self.labels_combo, TARGET_KINDS.get(self.task, "Labels")),
                            (self.predict_combo, "Image")]:
            current = combo.value
            combo.choices = self._target_choices(kind) if combo is self.labels_combo else self._layer_names(kind)
            if current in combo.choices:
                combo.value = current
        # pairs whose layers were deleted leave the training set
        names = {layer.name for layer in self.viewer.layers}
        kept = [p for p in self.pairs if p[0] in names and p[1] in names]
        if kept != self.pairs:
            self.pairs = kept
            self._update_pairs()
        gone = [n for n in self.class_table.truth if n not in names]
        if gone:
            self.class_table.remove_images(gone)

    def add_pair(self, image_name: str, labels_name: str) -> bool:
        """Add an image with its labels (or points); refuse layers that do not fit, saying why."""
        try:
            image, target = self.viewer.layers[image_name], self.viewer.layers[labels_name]
            if self.task == "detection":
                self._check_points(image, target)
            else:
                if not _is_kind(target, "Labels"):
                    raise DataError(f"'{labels_name}' is not a Labels layer: segmentation learns from labels "
                                    "painted on the image (0 = background).")
                check_pair_shape(image.data.shape, target.data.shape, image_name, labels_name, rgb=image.rgb)
        except (MiaError, KeyError) as e:
            self._notify(explain(e) if isinstance(e, MiaError) else f"Layer {e} not found.")
            return False
        if (image_name, labels_name) not in self.pairs:
            self.pairs.append((image_name, labels_name))
        if len(self.pairs) == 1:
            self._take_channels(image)
        self._update_pairs()
        n = len(self.pairs)
        # A successful add replaces an older error in the status line.
        self.status.value = f"'{image_name}' with '{labels_name}' is in the training set ({n} pair" \
                            f"{'s' if n != 1 else ''})."
        if self.task == "segmentation":
            self._label_mode_from_data(labels_name, np.asarray(target.data))
        return True

    def _label_mode_from_data(self, labels_name: str, labels: np.ndarray) -> None:
        """Set the label mode from the labels where they are unambiguous, or say plainly that they disagree.

        Instance masks (many ids, each one compact blob) trained in 'classes' mode would make a model with one
        class per object; a few values spread over many blobs are classes.
        """
        guessed = _guess_label_mode(labels)
        self._guessed[labels_name] = guessed
        control = self.controls["label_mode"]
        if guessed is None or guessed == control.value:
            return
        what = {"instances": "each object has its own number (instances)",
                "classes": "each number is a kind of object (classes)"}[guessed]
        if self.session.has_model:
            self._notify(f"'{labels_name}' looks like labels where {what}, but the model was made for the label "
                         f"mode '{control.value}'. Press Reset Model to train a new model in the mode "
                         f"'{guessed}', or keep the mode if you are sure.")
            return
        others = {m for name, m in self._guessed.items() if m is not None and name != labels_name
                  and any(p[1] == name for p in self.pairs)}
        if others - {guessed}:
            self._notify(f"'{labels_name}' looks like labels where {what}, but the other labels in the training "
                         f"set do not. All labels of one model must use the same label mode ('{control.value}' "
                         "now): check the Label mode, or remove the pair that does not fit.")
            return
        control.value = guessed
        self.status.value += f" Label mode set to '{guessed}': in '{labels_name}' {what}. Change it under " \
                             "Label mode if that is wrong."

    def _take_channels(self, image) -> None:
        channels = image.data.shape[-1] if image.rgb else 1
        F.write_settings({"channels": self.controls["channels"]}, Settings().update(channels=channels))

    def _check_points(self, image, points) -> None:
        if not _is_kind(points, "Points"):
            raise DataError(f"'{points.name}' is not a Points layer: detection learns from points, one per object.")
        spatial = image.data.ndim - (1 if image.rgb else 0)
        if spatial != 2:
            raise DataError(f"'{image.name}' is a stack: detection trains on 2D images. Split the stack into "
                            "single images (napari: right-click the layer, Split Stack).")
        if points.data.shape[1] != 2:
            raise DataError(f"'{points.name}' holds {points.data.shape[1]}D points, but '{image.name}' is 2D. "
                            "Put the points on a 2D image.")

    def points_of(self, image, points) -> np.ndarray:
        """(N, 3) y, x, class in the image's pixels: layers may be scaled or moved in the viewer."""
        yx = (np.asarray(points.data, float) * points.scale + points.translate - image.translate[-2:]) \
            / image.scale[-2:]
        cls = np.ones(len(yx))
        if "class" in points.features:
            try:
                cls = np.asarray(points.features["class"], float)
            except (TypeError, ValueError):
                raise DataError(f"'{points.name}': the 'class' feature must be numbers (1 = first kind of "
                                "object).") from None
            # Points given no class (napari fills 0 or nothing when points are set as data) are objects.
            cls[~np.isfinite(cls) | (cls == 0)] = 1
        return np.c_[yx, cls]

    def _on_add(self, *_):
        if self.task == "classification":
            self.add_class_image(self.image_combo.value)
            return
        kind = TARGET_KINDS[self.task].lower()
        if self.image_combo.value is None or self.labels_combo.value is None:
            self._notify(f"Choose an image layer and the {kind} layer drawn on it.")
            return
        name = self.labels_combo.value
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        prediction = layer is not None and _is_prediction(layer)
        if not self.add_pair(self.image_combo.value, name):
            return
        if prediction:
            # From now on these are training labels: no prediction writes over them.
            layer.metadata["napari_mia"] = "training labels"
            self._refresh_layers()
            message = (f"'{name}' is the model's prediction, now used as training labels. Correct its mistakes "
                       "first: the model learns from it as it is.")
            from napari.utils.notifications import show_info

            show_info(f"napari-mia: {message}")
            self.status.value = message

    def add_class_image(self, name: str | None) -> bool:
        """Classification: an image layer's frames join the class table (their classes come next)."""
        if name is None or name not in self.viewer.layers:
            self._notify("Choose an image layer to add.")
            return False
        layer = self.viewer.layers[name]
        spatial = layer.data.ndim - (1 if layer.rgb else 0)
        if spatial not in (2, 3):
            self._notify(f"'{name}' has {spatial} dimensions: classification takes 2D images or stacks of them.")
            return False
        if not self.class_table.truth:
            self._take_channels(layer)
        self.class_table.add_image(name, layer.data.shape[0] if spatial == 3 else 1, spatial == 3)
        self.class_table.select(name, 0)
        return True

    def _on_remove(self, *_):
        chosen = set(self.pair_list.value)
        self.pairs = [p for p in self.pairs if self._pair_text(p) not in chosen]
        self._update_pairs()
        self.status.value = f"{len(self.pairs)} pair{'s' if len(self.pairs) != 1 else ''} in the training set."

    @staticmethod
    def _pair_text(p) -> str:
        return f"{p[0]}  ←  {p[1]}"

    def _update_pairs(self):
        self.pair_list.choices = [self._pair_text(p) for p in self.pairs]
        self._update_classes()

    def _update_classes(self, *_):
        if self.task == "classification":
            done = sum(v != -1 for c in self.class_table.truth.values() for v in c)
            total = sum(len(c) for c in self.class_table.truth.values())
            self.class_table.setToolTip(f"{done} of {total} frames have a class.")
            return
        if self.task == "detection":
            counts: dict[int, int] = {}
            for img, pts in self.pairs:
                if img in self.viewer.layers and pts in self.viewer.layers:
                    for c in self.points_of(self.viewer.layers[img], self.viewer.layers[pts])[:, 2].astype(int):
                        counts[c] = counts.get(c, 0) + 1
            self.classes_label.value = ", ".join(f"class {c}: {n} points" if len(counts) > 1 else f"{n} objects"
                                                 for c, n in sorted(counts.items())) or "(add points)"
            return
        if self.controls["label_mode"].value == "instances":
            self.classes_label.value = "objects (instances): background / object"
            return
        colours: dict[int, str] = {}
        for _, lab in self.pairs:
            layer = self.viewer.layers[lab]
            data = np.asarray(layer.data)
            for v in np.unique(data[data > 0]).tolist()[:64]:
                if v not in colours:  # the colour the user sees for this class, from its labels layer
                    rgba = np.asarray(layer.get_color(v), dtype=float).ravel()[:3]
                    colours[v] = "#%02x%02x%02x" % tuple(int(round(255 * c)) for c in rgba)
        self.classes_label.value = "background, " + ", ".join(
            f'<span style="color:{colours[v]}">&#9632;</span> {v}' for v in sorted(colours)) if colours \
            else "(add labels)"

    # -- settings -------------------------------------------------------------------
    def _on_architecture(self, *_):
        enc = self.controls["encoder"]
        current = enc.value
        enc.choices = valid_encoders(self.controls["architecture"].value)
        if current in enc.choices:
            enc.value = current

    def read_settings(self) -> Settings:
        extra = {"task": self.task}
        if self.task == "classification":
            extra["class_names"] = self.class_table.class_names()
            extra["label_mode"] = "classes"
        elif self.task == "detection":
            extra["label_mode"] = "classes"
        return F.read_settings(self.controls, **extra, **self._post_settings())

    def _post_settings(self) -> dict:
        """The Post-processing section as settings, so that a saved model predicts the same after loading."""
        return {"min_object_size": int(self.min_size.value), "fill_holes": bool(self.fill_holes.value),
                "split_touching": bool(self.split_touching.value)}

    def write_settings(self, settings: Settings) -> None:
        self.application.value = TASK_NAMES[settings.model.task]
        F.write_settings(self.controls, settings)
        if settings.model.task == "classification":
            self.class_table.set_class_names(settings.model.class_names)
        d = settings.data  # a model file older than these settings holds their defaults
        self.min_size.value, self.fill_holes.value = d.min_object_size, d.fill_holes
        self.split_touching.value = d.split_touching

    def find_devices(self, *_) -> bool:
        """Look for GPUs in a worker: the first look imports torch (seconds), the viewer stays live."""
        def work():
            from ..engine.models import available_devices
            from ._session import import_engine_libraries

            import_engine_libraries()
            return available_devices()

        def found(devices):
            dev = self.controls["device"]
            current = dev.value
            dev.choices = devices
            if current in devices:
                dev.value = current
            gpus = [d for d in devices if d not in ("auto", "cpu")]
            self.device_label.value = f"Found: {', '.join(gpus)}" if gpus else \
                "No GPU found: training runs on the CPU."
            self.status.value = self.device_label.value

        if not self.session.run_task(work, found):
            return False
        self.device_label.value = "Looking for GPUs…"
        self.status.value = "Looking for GPUs (the first time takes a few seconds)…"
        return True

    # -- actions --------------------------------------------------------------------
    def training_items(self) -> list:
        """Copies of the layers' data: training never sees (or touches) the live layers.

        (image, target, name, target name, rgb): the target is labels, (N, 3) points or a class per frame.
        """
        out = []
        if self.task == "classification":
            for name, classes in self.class_table.labelled().items():
                img = self.viewer.layers[name]
                out.append((np.array(img.data), classes if self.class_table.stack.get(name) else classes[0],
                            name, None, bool(img.rgb)))
            return out
        for img_name, lab_name in self.pairs:
            img, lab = self.viewer.layers[img_name], self.viewer.layers[lab_name]
            target = self.points_of(img, lab) if self.task == "detection" else np.array(lab.data)
            out.append((np.array(img.data), target, img_name, lab_name, bool(img.rgb)))
        return out

    def start(self, *_) -> bool:
        if self.session.busy:
            self._notify("Training is already running.")
            return False
        empty = {"segmentation": "Add at least one image with its labels to the training set first.",
                 "detection": "Add at least one image with its points to the training set first.",
                 "classification": "Add images and give at least one frame a class (select it, press 1-9) first."}
        if not (self.class_table.labelled() if self.task == "classification" else self.pairs):
            self._notify(empty[self.task])
            return False
        try:
            settings = self.read_settings()
        except MiaError as e:
            self._notify(explain(e))
            return False
        preview = None
        if settings.train.preview_every and self.predict_combo.value:
            preview = (self.predict_combo.value, np.array(self.viewer.layers[self.predict_combo.value].data))
        if not self.session.start(settings, self.training_items(), preview):
            return False
        self._epoch_text = ""
        self.status.value = "Starting training…"  # the first start loads the libraries: seconds
        return True

    def _on_reset(self, *_):
        if self.session.has_model:
            answer = QMessageBox.question(self, "Reset model",
                                          "Forget the trained weights and start a new model?")
            if answer != QMessageBox.Yes:
                return
        self.session.reset()

    def _on_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", "napari-mia model (*.pt)")
        if path:
            self.save_model(path)

    def _on_load(self, *_):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "napari-mia model (*.pt *.zip);;All files (*)")
        if path:
            self.load_model(path)

    def save_model(self, path) -> bool:
        if not self.session.has_model:
            self._notify("There is no model to save yet: train or load one first.")
            return False
        try:
            # the Post-processing shown now, even if changed after training
            self.session.trainer.settings.update(**self._post_settings())
            self.session.save(path)
        except MiaError as e:
            self._notify(explain(e))
            return False
        self.status.value = f"Model saved to {path}"
        return True

    def load_model(self, path) -> bool:
        """Load a model file in a worker (the first load imports torch: seconds); True if the load started.
        The settings reach the window when it is done; a bad file becomes a message and nothing changes."""
        def loaded(settings):
            self.write_settings(settings)
            self._update_buttons()
            self.status.value = f"Model loaded from {path}"

        if not self.session.load(path, loaded):
            return False
        self.status.value = f"Loading model {path}…"
        return True

    def post_process(self):
        from ..engine.predictor import PostProcess

        return PostProcess(min_size=int(self.min_size.value), fill_holes=bool(self.fill_holes.value),
                           split_touching=bool(self.split_touching.value))

    def predict(self, *_, names: list[str] | None = None) -> bool:
        """Predict the chosen image (or `names`): '<image> prediction' labels, '<image> detections' points,
        or classes in the class table."""
        names = names if names is not None else [n for n in [self.predict_combo.value] if n is not None]
        if not names:
            self._notify("Choose an image layer to predict.")
            return False
        # copies: the user may paint or delete layers while the worker runs
        jobs = [(n, np.array(self.viewer.layers[n].data), self.viewer.layers[n].rgb) for n in names]
        if not self.session.predict(jobs, self._on_prediction, post=self.post_process()):
            return False
        if self.session.state != TRAINING:  # while training, the status line follows the training
            self.status.value = f"Predicting {names[0]}…"
        return True

    def _on_predict_progress(self, name: str, k: int, n: int, done: int, total: int) -> None:
        if self.session.state == TRAINING:
            return
        which = f" ({k + 1} of {n})" if n > 1 else ""
        self.status.value = f"Predicting {name}{which}: tile {done} of {total}" if total else \
            f"Predicting {name}{which}…"

    def predict_all(self, *_) -> bool:
        return self.predict(names=self._layer_names("Image"))

    def _on_prediction(self, name: str, result) -> None:
        if self._closed:  # the viewer was closed meanwhile
            return
        if name not in self.viewer.layers:
            self._notify(f"Image '{name}' was removed before its prediction finished; the prediction is dropped.")
            return
        task = self.session.trainer.settings.model.task if self.session.trainer is not None else self.task
        if task == "classification":
            self.class_table.set_prediction(name, result)
            self._update_overlay()
            self.status.value = f"Classified {name}"
        elif task == "detection":
            self._add_detections(self.viewer.layers[name], result)
        else:
            self._add_prediction(self.viewer.layers[name], result)

    def _reusable(self, image_name):
        """Our latest prediction layer of this image if the user has not edited it, else None: a later
        prediction updates it in place; an edited one, or a user's layer of that name, is never touched."""
        ours = self._prediction_layers(image_name)
        if ours and ours[-1].metadata.get("napari_mia_digest") == _digest(ours[-1].data):
            return ours[-1]
        return None

    def _add_prediction(self, image_layer, labels):
        """'<image> prediction' labels over the image."""
        layer = self._reusable(image_layer.name)
        if layer is not None:
            layer.data = labels
        else:  # napari numbers a repeated name: "<image> prediction [1]"
            layer = self.viewer.add_labels(labels, name=f"{image_layer.name} prediction", scale=image_layer.scale,
                                           translate=image_layer.translate)
            source = [p[1] for p in self.pairs if p[1] in self.viewer.layers]
            if source and self.controls["label_mode"].value == "classes":  # the classes' colours, as drawn
                layer.colormap = self.viewer.layers[source[0]].colormap
        self._mark(layer, image_layer, labels)
        self._refresh_layers()  # the new layer is a prediction: marked in the Labels list

    def _add_detections(self, image_layer, found):
        """'<image> detections' points (y, x, or frame, y, x for a stack) with their class and score."""
        found = np.asarray(found, float)
        coords, cls, score = found[:, :-2], found[:, -2].astype(int), found[:, -1]
        ndim = coords.shape[1]
        # Points live in the image's pixels: the same scale and offset put them on it.
        scale, translate = image_layer.scale[-ndim:], image_layer.translate[-ndim:]
        features = {"class": cls, "score": np.round(score, 3)}
        size = max(2.0, float(self.session.trainer.settings.data.object_size))
        layer = self._reusable(image_layer.name)
        if layer is not None:
            layer.data = coords
            layer.features = features
        else:
            layer = self.viewer.add_points(coords, name=f"{image_layer.name} detections", features=features,
                                           size=size, face_color="transparent", border_color="yellow",
                                           border_width=0.15, scale=scale, translate=translate, ndim=ndim)
            layer.feature_defaults = {"class": 1, "score": 1.0}  # points the user adds are objects of class 1
        self._mark(layer, image_layer, coords)
        self._refresh_layers()
        self.status.value = f"Found {len(coords)} objects in {image_layer.name}"

    def _mark(self, layer, image_layer, data):
        layer.metadata.update(napari_mia="prediction", napari_mia_image=image_layer.name,
                              napari_mia_digest=_digest(data))
        self.status.value = f"Predicted {image_layer.name}"

    def _prediction_layers(self, image_name) -> list:
        """Our prediction layers of this image, oldest first (found by metadata: the user may rename them)."""
        return [layer for layer in self.viewer.layers if layer.metadata.get("napari_mia") == "prediction"
                and layer.metadata.get("napari_mia_image") == image_name]

    def add_prediction(self, *_) -> bool:
        """Add the chosen image's (corrected) prediction to the training set, in one click."""
        image = self.predict_combo.value
        if self.task == "classification":
            if image is None or image not in self.class_table.predicted:
                self._notify(f"Classify '{image}' first, correct the wrong classes, then add it to the training set.")
                return False
            n = self.class_table.accept_predictions(image)
            self.status.value = f"{n} predicted class{'es' if n != 1 else ''} of '{image}' added to the training " \
                                "set. Start Training continues from the current weights."
            return True
        ours = self._prediction_layers(image)
        if image is None or not ours:
            self._notify(f"Predict '{image}' first, correct the prediction, then add it to the training set.")
            return False
        active = self.viewer.layers.selection.active
        layer = active if active in ours else ours[-1]
        if not self.add_pair(image, layer.name):
            return False
        # From now on these are the user's training labels: no prediction writes over them.
        layer.metadata["napari_mia"] = "training labels"
        self._refresh_layers()
        self.status.value = f"'{layer.name}' added to the training set. Start Training continues from the " \
                            "current weights."
        return True

    def _update_overlay(self, *_):
        """Classification: the predicted class of the frame on screen, over the canvas."""
        if self._closed:
            return
        overlay = self.viewer.canvas.overlays.text  # napari 0.9 deprecates viewer.text_overlay
        active = self.viewer.layers.selection.active
        text = ""
        if active is not None and active.name in self.class_table.predicted:
            frame = int(self.viewer.dims.current_step[0]) if self.class_table.stack.get(active.name) else 0
            text = self.class_table.caption(active.name, frame)
        if text or overlay.text.startswith(tuple(f"{n}: " for n in self.class_table.predicted)):
            overlay.text = text
            overlay.visible = bool(text)

    # -- state ----------------------------------------------------------------------
    def open_plot_dock(self):
        """Show the Training Data dock (once per viewer)."""
        from .plot import TrainingPlotWidget

        plot = getattr(self.session, "plot_widget", None)
        if plot is not None:  # reset to None when the user closes the dock
            return plot
        from ._layout import dock_beside

        plot = TrainingPlotWidget(self.viewer)
        dock_beside(self.viewer, self, plot)  # below Train Model, which keeps its actions in sight
        self.session.plot_widget = plot
        return plot

    def _on_event(self, ev):
        from ..engine.events import EpochEnd, IterationEnd, Preview, TrainingFinished, TrainingStarted

        if isinstance(ev, TrainingStarted):
            self.open_plot_dock()
            self._run_size = (ev.epochs, ev.steps_per_epoch)
            self.status.value = f"Training: epoch {ev.start_epoch + 1} of {ev.epochs} starting…" + \
                (f" {ev.note}" if ev.note else "")
            self._update_buttons()  # the model exists from now on: Predict works during the first run too
        elif isinstance(ev, IterationEnd):
            epochs, steps = getattr(self, "_run_size", (0, 0))
            of = f" of {steps}" if steps else ""
            self.status.value = f"Training: step {ev.step}{of}, epoch {ev.epoch} of {epochs}, loss {ev.loss:.4f}" \
                                + (f". {self._epoch_text}" if self._epoch_text else "")
        elif isinstance(ev, EpochEnd):
            val = "" if ev.val_metric is None else f", validation {ev.val_metric:.3f}"
            self._epoch_text = f"Epoch {ev.epoch}: loss {ev.train_loss:.4f}{val}"
            self.status.value = self._epoch_text
        elif isinstance(ev, Preview):
            self._on_prediction(ev.name, ev.prediction)
        elif isinstance(ev, TrainingFinished):
            self.status.value = {"completed": "Training finished.", "stopped": "Training stopped: Resume continues.",
                                 "time_limit": "Time limit reached."}[ev.reason] + f" ({ev.iteration} steps)"

    def _update_buttons(self, *_):
        """Called on every state change and when the first run has built its model (TrainingStarted)."""
        running = self.session.state == TRAINING
        loading = self.session.state == LOADING
        for w in self._locked:
            w.enabled = not running and self.session.state == IDLE
        self.class_table.setEnabled(not running and self.session.state == IDLE)
        self.stop_button.enabled = running
        self.resume_button.enabled = self.session.can_resume
        self.save_button.enabled = self.export_button.enabled = self.session.has_model and not running \
            and not loading
        for w in (self.predict_button, self.predict_all_button):
            w.enabled = self.session.has_model and not loading
        # A prediction to add needs a model; the training set stays as it is while a training reads it.
        self.add_prediction_button.enabled = self.session.has_model and not running and not loading
        # the network's shape can only change through Reset Model
        for f in ("architecture", "encoder", "channels", "label_mode", "pretrained"):
            self.controls[f].enabled = not running and not self.session.has_model
        self.application.enabled = not running and not self.session.has_model

    def _show_failure(self, message: str):
        self.status.value = message

    def _notify(self, message: str):
        from napari.utils.notifications import show_warning

        show_warning(f"napari-mia: {message}")
        self.status.value = message


def _is_kind(layer, kind: str) -> bool:
    """Whether a layer is an Image / Labels / Points layer. isinstance, not the type's name: a dock opened by
    `add_plugin_dock_widget` gets napari's PublicOnlyProxy layers, whose type is the proxy."""
    import napari.layers

    return isinstance(layer, getattr(napari.layers, kind))


def _is_prediction(layer) -> bool:
    """One of our prediction layers the user has not turned into training labels."""
    return layer.metadata.get("napari_mia") == "prediction"


def _guess_label_mode(labels: np.ndarray) -> str | None:
    """'instances', 'classes' or None (ambiguous): the engine's rule (`data.guess_label_mode`).

    It runs on the main thread when a pair is added, so a long stack is judged on 16 of its frames.
    """
    from ..engine.data import guess_label_mode

    labels = np.asarray(labels)
    if labels.ndim == 3 and len(labels) > 16:
        labels = labels[np.linspace(0, len(labels) - 1, 16).astype(int)]
    return guess_label_mode(labels)


def _digest(data) -> str:
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()
