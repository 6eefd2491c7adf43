"""The Train Model dock's actions on the session (start, save, load, predict) and what the session
reports back (events, progress, state), mixed into ``TrainingWidget`` (training.py builds the dock and
holds its training set and settings)."""

from __future__ import annotations

import numpy as np

from ..engine.errors import MiaError
from ._session import IDLE, LOADING, TRAINING, explain


class DockActions:
    """Mixed into ``TrainingWidget``; uses its controls, session, adapters (``app``) and ``_notify``."""

    def start(self, *_) -> bool:
        if self.session.busy:
            self._notify("Training is already running.")
            return False
        if not self.app.has_training_data():
            self._notify(self.app.empty_message)
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

    def save_model(self, path) -> bool:
        if not self.session.has_model:
            self._notify("There is no model to save yet: train or load one first.")
            return False
        try:
            # the Post-processing shown now, even if changed after training
            self.session.trainer.settings.update(**self._kept_settings())
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

    def predict(self, *_, names: list[str] | None = None) -> bool:
        """Predict the chosen image (or `names`): '<image> prediction' labels, '<image> detections' points,
        or classes in the class table."""
        names = names if names is not None else [n for n in [self.predict_combo.value] if n is not None]
        if not names:
            self._notify("Choose an image layer to predict.")
            return False
        # copies: the user may paint or delete layers while the worker runs
        jobs = [(n, np.array(self.viewer.layers[n].data), self.viewer.layers[n].rgb) for n in names]
        if not self.session.predict(jobs, self._on_prediction, post=self._model_app().post_process()):
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
        self._model_app().show_prediction(self.viewer.layers[name], result)

    def add_prediction(self, *_) -> bool:
        """Add the chosen image's (corrected) prediction to the training set, in one click."""
        return self.app.add_prediction(self.predict_combo.value)

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
        for section in self._data_sections:  # the adapters' training data, e.g. the class table
            section[1].setEnabled(not running and self.session.state == IDLE)
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

