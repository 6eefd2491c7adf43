"""Image classification in the dock: the class table (a class per image or frame) is the training set;
predictions fill its Prediction column and a caption over the canvas."""

from __future__ import annotations

import numpy as np

from ...engine.errors import DataError
from ..classes import ClassTable
from .base import DockApplication


class Classification(DockApplication):
    task = "classification"
    title = "Image classification"
    tooltip = "What the model learns: a class for each image (or each frame of a stack)."
    add_text = "Add image to training set"
    add_tooltip = "Add this image (every frame of a stack) to the table below, then give each a class."
    predict_tooltip = "The image to classify (the classes appear in the table and on the image)."
    add_prediction_tooltip = ("The predicted classes become the classes of the image's frames that have none "
                              "yet (correct the wrong ones with keys 1-9 first).")
    empty_message = "Add images and give at least one frame a class (select it, press 1-9) first."
    shows = ("section_classes", "zoom", "zoom_range")
    lends = ("class_table", "add_class_image")

    def __init__(self, dock):
        super().__init__(dock)
        self.class_table = ClassTable(self.viewer)
        self.class_table.changed.connect(dock._update_classes)
        self.class_table.validation_button.clicked.connect(lambda *_: self.mark_validation())
        self.class_table.test_button.clicked.connect(lambda *_: self.mark_test())
        self.viewer.dims.events.current_step.connect(self._update_overlay)
        self.viewer.layers.selection.events.active.connect(self._update_overlay)
        self._closed = False

    def data_sections(self):
        return [("Classes", self.class_table, True)]

    def chosen(self) -> None:
        if self.dock.controls["metric"].value == "iou":
            self.dock.controls["metric"].value = "accuracy"

    def close(self) -> None:
        self._closed = True
        self.viewer.dims.events.current_step.disconnect(self._update_overlay)
        self.viewer.layers.selection.events.active.disconnect(self._update_overlay)

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"class_names": self.class_table.class_names(), "label_mode": "classes"}

    def prediction_options(self, diameter, tta: bool) -> dict:
        return {"tta": tta}  # the whole image is resized to the network's input: no object diameter

    def write_settings(self, settings) -> None:
        if settings.model.task == self.task:
            self.class_table.set_class_names(settings.model.class_names)

    # -- training set ---------------------------------------------------------------------
    def check_target(self, image, target) -> None:
        raise DataError("Image classification learns from the class table, not from a target layer: add the "
                        "image to the table and give its frames a class.")

    def on_add(self) -> None:
        self.add_class_image(self.dock.image_combo.value)

    def add_class_image(self, name: str | None) -> bool:
        """An image layer's frames join the class table (their classes come next)."""
        dock = self.dock
        if name is None or name not in self.viewer.layers:
            dock._notify("Choose an image layer to add.")
            return False
        # The first image of a new model sets Input; later ones, and any with a model, must fit it.
        first = not self.class_table.truth and not dock.session.has_model
        channels = dock._first_channels(self.viewer.layers[name]) if first else dock.input_channels()
        image = dock.image_for(name, channels)
        try:
            image.check(channels, trained=dock.session.has_model)
        except DataError as e:
            dock._notify(str(e))
            return False
        spatial = len(image.shape) - (1 if image.rgb else 0)
        if spatial not in (2, 3):
            dock._notify(f"'{name}' has {spatial} dimensions: classification takes 2D images or stacks of them.")
            return False
        if first:
            dock._set_input(channels)
        self.class_table.add_image(name, image.shape[0] if spatial == 3 else 1, spatial == 3)
        self.class_table.select(name, 0)
        return True

    def layers_changed(self, names: set[str]) -> None:
        gone = [n for n in self.class_table.truth if n not in names]
        if gone:
            self.class_table.remove_images(gone)

    def has_training_data(self) -> bool:
        return bool(self.class_table.labelled())

    def show_classes(self) -> None:
        truth = self.class_table.truth
        done = sum(v != -1 for c in truth.values() for v in c)
        total = sum(len(c) for c in truth.values())
        self.class_table.setToolTip(f"{done} of {total} frames have a class.")

    def training_items(self) -> list:
        return self._class_items("train")

    def validation_items(self) -> list:
        return self._class_items("validation")

    def test_items(self) -> list:
        return self._class_items("test")

    def validation_count(self) -> int:
        return len(self.class_table.validation)

    def _class_items(self, part: str) -> list:
        out, table = [], self.class_table
        for name, classes in table.labelled().items():
            if part != ("validation" if name in table.validation else "test" if name in table.test else "train"):
                continue
            img = self.dock.image_for(name)  # as the model reads it (its channels joined or moved last)
            out.append((np.array(img.data), classes if self.class_table.stack.get(name) else classes[0],
                        name, None, bool(img.rgb)))
        return out

    def mark_validation(self, names: list[str] | None = None) -> bool:
        """Use for validation: mark the selected images (or `names`) as validation images, or train on them again
        if all of them are marked. Marking every image is refused: nothing would be left to train on."""
        table = self.class_table
        if not self._mark(names, table.validation, table.set_validation, "Use for validation", "for validation"):
            return False
        n = len(table.validation)
        self.dock.status.value = (f"{n} image{'s' if n != 1 else ''} for validation, {len(table.truth) - n} for "
                                  "training (the Validation split is not used)." if n else
                                  "No image is marked for validation: the Validation split holds frames out.")
        return True

    def mark_test(self, names: list[str] | None = None) -> bool:
        """Use for test: keep the selected images (or `names`) aside as test images, or train on them again if
        all of them are marked. Marking every image is refused: nothing would be left to train on."""
        table = self.class_table
        if not self._mark(names, table.test, table.set_test, "Use for test", "a test image"):
            return False
        n = len(table.test)
        self.dock.status.value = (f"{n} test image{'s' if n != 1 else ''}: never trained on; every training is "
                                  "scored on them." if n else "No test image: trainings are not scored on images "
                                  "kept aside.")
        return True

    def _mark(self, names: list[str] | None, marked: set, set_marked, button: str, what: str) -> bool:
        """`set_marked(names, True)` on the selected images (or `names`), or False if all of them are marked;
        True if done."""
        table, dock = self.class_table, self.dock
        names = table.selected_images() if names is None else [n for n in names if n in table.truth]
        if not names:
            dock._notify(f"Select images in the table first, then press {button}.")
            return False
        if all(n in marked for n in names):
            set_marked(names, False)
        elif set(table.truth) <= table.validation | table.test | set(names):
            dock._notify(f"Not every image can be {what}: nothing would be left to train on. Keep at least one "
                         "image for training.")
            return False
        else:
            set_marked(names, True)
        return True

    # -- predictions ----------------------------------------------------------------------
    def show_prediction(self, image_layer, result) -> None:
        self.class_table.set_prediction(image_layer.name, result)
        self._update_overlay()
        self.dock.status.value = f"Classified {image_layer.name}"

    def add_prediction(self, image: str | None) -> bool:
        """The predicted classes of `image` become the classes of its frames that have none yet."""
        if image is None or image not in self.class_table.predicted:
            self.dock._notify(f"Classify '{image}' first, correct the wrong classes, then add it to the training "
                              "set.")
            return False
        n = self.class_table.accept_predictions(image)
        self.dock.status.value = f"{n} predicted class{'es' if n != 1 else ''} of '{image}' added to the " \
                                 "training set. Start Training continues from the current weights."
        return True

    def _update_overlay(self, *_):
        """The predicted class of the frame on screen, over the canvas."""
        if self._closed:
            return
        table = self.class_table
        overlay = self.viewer.canvas.overlays.text  # napari 0.9 deprecates viewer.text_overlay
        active = self.viewer.layers.selection.active
        text = ""
        if active is not None and active.name in table.predicted:
            frame = int(self.viewer.dims.current_step[0]) if table.stack.get(active.name) else 0
            text = table.caption(active.name, frame)
        if text or overlay.text.startswith(tuple(f"{n}: " for n in table.predicted)):
            overlay.text = text
            overlay.visible = bool(text)
