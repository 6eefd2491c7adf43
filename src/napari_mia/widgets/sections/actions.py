"""The Train Model dock's actions, pinned below its sections: Start, Stop, Resume, Reset, Save and Load Model,
Predict, Predict all, Add prediction to training set, and the status line."""

from __future__ import annotations

from typing import Callable

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget

from ...engine.errors import MiaError
from ...engine.starters import starter_named
from .._layers import layer_names
from .._messages import notify
from .._session import LOADING, TRAINING, explain
from .data import DataSection
from .elsewhere import ALL_VALIDATION
from .prediction import PredictionSection
from .progress import TrainingProgress
from .settings import DockSettings


class ActionsSection:
    """`loaded`: what the dock does with a model's settings once loaded; `model_app`: the adapter of the model's
    application; `closed`: whether the dock is gone (a prediction may still arrive)."""

    def __init__(self, parent: QWidget, viewer, session, data: DataSection, prediction: PredictionSection,
                 settings: DockSettings, status: Label, notify: Callable[[str], None], loaded: Callable,
                 model_app: Callable, closed: Callable[[], bool]):
        self.parent, self.viewer, self.session, self.data, self.prediction, self.settings = parent, viewer, \
            session, data, prediction, settings
        self.status, self.notify = status, notify
        self._loaded, self._model_app, self._closed = loaded, model_app, closed
        self.progress: TrainingProgress | None = None  # set by the dock: Start clears its last epoch's text
        self.start_button = PushButton(text="Start Training",
                                       tooltip="Train on the training set, continuing from the current weights.")
        self.stop_button = PushButton(text="Stop", tooltip="Stop after the current step; the weights are kept.")
        self.resume_button = PushButton(text="Resume", tooltip="Continue the stopped training where it stopped.")
        self.reset_button = PushButton(text="Reset Model", tooltip="Forget the trained weights and start over.")
        self.save_button = PushButton(text="Save Model", tooltip="Save weights and settings in one file.")
        self.load_button = PushButton(text="Load Model", tooltip="Load a model file and its settings.")
        self.predict_combo = ComboBox(label="Predict image", choices=layer_names(viewer.layers, "Image"),
                                      tooltip="The image to predict (a new labels layer appears).")
        self.predict_button = PushButton(text="Predict", tooltip="Predict the chosen image with the current model.")
        self.predict_all_button = PushButton(text="Predict all",
                                             tooltip="Predict every image layer (each frame of a stack).")
        self.add_prediction_button = PushButton(
            text="Add prediction to training set",
            tooltip="After correcting '<image> prediction' with napari's label tools, train on it too: it joins "
                    "the training set with its image, and Start Training continues from the current weights.")
        self.box = Container(widgets=[
            Container(widgets=[self.start_button, self.stop_button, self.resume_button], layout="horizontal",
                      labels=False),
            Container(widgets=[self.reset_button, self.save_button, self.load_button], layout="horizontal",
                      labels=False),
            self.predict_combo,
            Container(widgets=[self.predict_button, self.predict_all_button], layout="horizontal", labels=False),
            self.add_prediction_button, status])
        # widgets that must not change while a training runs
        self.locked = [self.reset_button, self.load_button, self.start_button]

    def connect(self, start: Callable, predict: Callable, predict_all: Callable, add_prediction: Callable) -> None:
        """The buttons call the dock's own `start` ... (scripts and tests may replace them on the dock)."""
        self.start_button.changed.connect(start)
        self.stop_button.changed.connect(self.session.stop)
        self.resume_button.changed.connect(self.session.resume)
        self.reset_button.changed.connect(self._on_reset)
        self.save_button.changed.connect(self._on_save)
        self.load_button.changed.connect(self._on_load)
        self.predict_button.changed.connect(predict)
        self.predict_all_button.changed.connect(predict_all)
        self.add_prediction_button.changed.connect(add_prediction)

    # -- training -------------------------------------------------------------------------
    def start(self, *_) -> bool:
        app = self.data.app
        if self.session.busy:
            self.notify("Training is already running.")
            return False
        if not app.has_training_data():
            self.notify(app.empty_message)
            return False
        try:
            settings = self.settings.read()
        except MiaError as e:
            self.notify(explain(e))
            return False
        self.settings.remember(settings)  # the settings of the last training open the next session's dock
        items, val, test = app.training_items(), app.validation_items(), app.test_items()
        if not items:  # e.g. the training pairs were removed after the others were marked
            self.notify(ALL_VALIDATION)
            return False
        preview = None
        if settings.train.preview_every and self.predict_combo.value:
            image = self.data.image_for(self.predict_combo.value, settings.model.channels)
            if image.channels == settings.model.channels:  # one the model cannot read would end the training
                preview = (self.predict_combo.value, np.array(image.data))
        # Marked pairs are the validation set; none marked: the Validation split holds images out at random.
        facts = self.data.round_facts()
        if not self.session.start(settings, items, preview, val=val or None, test=test or None, facts=facts):
            return False
        self.data.new_round()
        self.progress.epoch_text = ""
        self.status.value = "Starting training…"  # the first start loads the libraries: seconds
        loaded = self.session.loaded_from
        if loaded is not None and not self.session.loaded_said:  # once per load, not at every round
            self.session.loaded_said = True
            message = (f"Training {loaded.name} further: its normalisation statistics (BatchNorm) stay as it learned "
                       "them from all its training images, which a few new images would estimate worse. Reset Model "
                       "starts a new model instead.")
            self.status.value = message
            notify(message, "info")
        return True

    # -- the model file -------------------------------------------------------------------
    def save_model(self, path) -> bool:
        if not self.session.has_model:
            self.notify("There is no model to save yet: train or load one first.")
            return False
        try:
            self.settings.apply_kept()  # the weights to use and the Post-processing shown now
            self.session.save(path)
        except MiaError as e:
            self.notify(explain(e))
            return False
        self.status.value = f"Model saved to {path}"
        return True

    def load_model(self, path) -> bool:
        """Load a model file in a worker (the first load imports torch: seconds); True if the load started.
        The settings reach the window when it is done; a bad file becomes a message and nothing changes."""
        starter = starter_named(path)

        def loaded(settings):
            self._loaded(settings)
            self.status.value = (f"{starter.title} loaded: press Predict to see what it finds before labelling "
                                 "anything. Correct them, Add prediction to the training set, and Start Training "
                                 "to fine-tune it.") if starter else f"Model loaded from {path}"

        if not self.session.load(path, loaded):
            return False
        self.status.value = f"Loading the {starter.title}…" if starter else f"Loading model {path}…"
        return True

    # -- prediction -------------------------------------------------------------------------
    def predict(self, *_, names: list[str] | None = None) -> bool:
        """Predict the chosen image (or `names`): '<image> prediction' labels, '<image> detections' points,
        or classes in the class table."""
        names = names if names is not None else [n for n in [self.predict_combo.value] if n is not None]
        if not names:
            self.notify("Choose an image layer to predict.")
            return False
        # copies: the user may paint or delete layers while the worker runs
        jobs = []
        for n in names:
            image = self.data.image_for(n)
            try:
                if self.session.has_model and not image.plain:  # layers read as they are: the engine checks
                    image.check(self.data.input_channels(), trained=True)
            except MiaError as e:
                self.notify(explain(e))
                return False
            jobs.append((n, np.array(image.data), image.rgb, image.label))
        self.settings.apply_kept()
        if not self.session.predict(jobs, self.on_prediction, post=self._model_app().post_process(),
                                    options=self.prediction.prediction_options()):
            return False
        if self.session.state != TRAINING:  # while training, the status line follows the training
            self.status.value = f"Predicting {names[0]}…"
        return True

    def predict_all(self, *_) -> bool:
        """Every image layer, but those that are the other channels of an image (they come with it)."""
        members = self.data.channel_members()
        return self.predict(names=[n for n in layer_names(self.viewer.layers, "Image") if n not in members])

    def on_predict_progress(self, name: str, k: int, n: int, done: int, total: int) -> None:
        if self.session.state == TRAINING:
            return
        which = f" ({k + 1} of {n})" if n > 1 else ""
        self.status.value = f"Predicting {name}{which}: tile {done} of {total}" if total else \
            f"Predicting {name}{which}…"

    def on_prediction(self, name: str, result) -> None:
        if self._closed():  # the viewer was closed meanwhile
            return
        if name not in self.viewer.layers:
            self.notify(f"Image '{name}' was removed before its prediction finished; the prediction is dropped.")
            return
        # The image as the model read it: its prediction has its shape (no channel axis), scale and offset.
        self._model_app().show_prediction(self.data.image_for(name), result)
        if self.session.state != TRAINING:
            self.status.value += self.prediction.scale_text(name)

    def add_prediction(self, *_) -> bool:
        """Add the chosen image's (corrected) prediction to the training set, in one click."""
        return self.data.app.add_prediction(self.predict_combo.value)

    # -- state ------------------------------------------------------------------------------
    def update_buttons(self) -> None:
        running = self.session.state == TRAINING
        loading = self.session.state == LOADING
        self.stop_button.enabled = running
        self.resume_button.enabled = self.session.can_resume
        self.save_button.enabled = self.session.has_model and not running and not loading
        for w in (self.predict_button, self.predict_all_button):
            w.enabled = self.session.has_model and not loading
        # A prediction to add needs a model; the training set stays as it is while a training reads it.
        self.add_prediction_button.enabled = self.session.has_model and not running and not loading

    # -- dialogs ----------------------------------------------------------------------------
    def _on_reset(self, *_):
        if self.session.has_model:
            answer = QMessageBox.question(self.parent, "Reset model",
                                          "Forget the trained weights and start a new model?")
            if answer != QMessageBox.Yes:
                return
        self.session.reset()

    def _on_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save model", "model.pt", "napari-mia model (*.pt)")
        if path:
            self.save_model(path)

    def _on_load(self, *_):
        path, _ = QFileDialog.getOpenFileName(self.parent, "Load model", "",
                                              "napari-mia model (*.pt *.zip);;All files (*)")
        if path:
            self.load_model(path)
