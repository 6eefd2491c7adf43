"""The Train Model dock's actions on the session (start, save, load, predict) and what the session
reports back (events, progress, state), mixed into ``TrainingWidget`` (training.py builds the dock and
holds its training set and settings)."""

from __future__ import annotations

import time

import numpy as np

from ..engine.scale import SAME_SCALE

from ..engine.errors import MiaError
from ._session import IDLE, LOADING, TRAINING, explain


# The status line says how long the rest of a run takes once this many steps after the first were timed (the
# first carries the start-up: the libraries, the data, the first batches).
TIMED_STEPS = 3
_clock = time.monotonic


def duration_text(seconds: float) -> str:
    """'about 40 seconds', 'about 1 minute', 'about 12 minutes', 'about 2 hours' (rounded as a person says it)."""
    if seconds < 55:
        return f"about {max(10, round(seconds / 10) * 10)} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"about {seconds / 3600:.1f} hours".replace(".0 ", " ")


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
        self.remember_settings(settings)  # the settings of the last training open the next session's dock
        items, val = self.training_items(), self.validation_items()
        if not items:  # e.g. the training pairs were removed after the others were marked
            self._notify("Every image in the training set is marked for validation: nothing is left to train on. "
                         "Press Use for validation on some of them to train on them again.")
            return False
        preview = None
        if settings.train.preview_every and self.predict_combo.value:
            image = self.image_for(self.predict_combo.value, settings.model.channels)
            if image.channels == settings.model.channels:  # one the model cannot read would end the training
                preview = (self.predict_combo.value, np.array(image.data))
        # Marked pairs are the validation set; none marked: the Validation split holds images out at random.
        if not self.session.start(settings, items, preview, val=val or None):
            return False
        self._epoch_text = ""
        self.status.value = "Starting training…"  # the first start loads the libraries: seconds
        return True

    def save_model(self, path) -> bool:
        if not self.session.has_model:
            self._notify("There is no model to save yet: train or load one first.")
            return False
        try:
            self.apply_kept_settings()  # the weights to use and the Post-processing shown now
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

    # -- another machine (issue #18) -------------------------------------------------
    def export_job(self, folder) -> bool:
        """Export training job: what Start would train on (the training set, the images marked for validation,
        reviewed regions) and the settings, into `folder` (new or empty), for ``napari-mia train --job``.
        The layers are copied, never changed."""
        from pathlib import Path

        from ..engine.job import commands, read_job, write_job

        if not self.app.has_training_data():
            self._notify(self.app.empty_message)
            return False
        try:
            settings = self.read_settings()
            items, val = self.training_items(), self.validation_items()
            if not items:
                self._notify("Every image in the training set is marked for validation: nothing is left to train "
                             "on. Press Use for validation on some of them to train on them again.")
                return False
            folder = write_job(folder, items, settings, val or None)
        except MiaError as e:
            self._notify(explain(e))
            return False
        folder = Path(folder)
        job, _, _ = commands(folder, read_job(folder))
        weights = " It trains a new model: the weights trained here are not in it." if self.session.has_model else ""
        self.status.value = f"Training job written to {folder}. Copy the folder to the other machine and run, " \
                            f"from the folder that holds it: {job} (its README.md says more).{weights}"
        return True

    def import_model(self, path) -> bool:
        """Import model: load a model trained elsewhere (e.g. ``napari-mia train --job``) and show its training
        record in the Training Data dock: the CSV the command line wrote beside it, else the epochs the model
        file keeps. True if the load started (in a worker, as Load Model)."""
        from pathlib import Path

        path = Path(path)

        def loaded(settings):
            self.write_settings(settings)
            self._update_buttons()
            record, where = self._imported_record(path)
            self.session.record.iterations[:] = record.iterations
            self.session.record.epochs[:] = record.epochs
            self.open_plot_dock().show_record()
            self.status.value = f"Model imported from {path}; {where}."

        if not self.session.load(path, loaded):
            return False
        self.status.value = f"Importing model {path}…"
        return True

    def _imported_record(self, path):
        """(record, where it came from, in words) of an imported model."""
        from ..engine.record import TrainingRecord, record_path

        csv = record_path(path)
        note = ""
        if csv.is_file():
            try:
                record = TrainingRecord.read_csv(csv)
                its, eps = len(record.iterations), len(record.epochs)
                return record, f"its training record ({its} iteration{'s' * (its != 1)}, {eps} " \
                               f"epoch{'s' * (eps != 1)}) is from {csv.name}"
            except MiaError as e:
                note = f" ({explain(e)})"
        record = TrainingRecord.from_history(self.session.trainer.history)
        eps = len(record.epochs)
        return record, f"no readable {csv.name} beside it{note}: the plot shows the {eps} epoch{'s' * (eps != 1)} " \
                       "kept in the model file"

    def predict(self, *_, names: list[str] | None = None) -> bool:
        """Predict the chosen image (or `names`): '<image> prediction' labels, '<image> detections' points,
        or classes in the class table."""
        names = names if names is not None else [n for n in [self.predict_combo.value] if n is not None]
        if not names:
            self._notify("Choose an image layer to predict.")
            return False
        # copies: the user may paint or delete layers while the worker runs
        jobs = []
        for n in names:
            image = self.image_for(n)
            try:
                if self.session.has_model and not image.plain:  # layers read as they are: the engine checks
                    image.check(self.input_channels(), trained=True)
            except MiaError as e:
                self._notify(explain(e))
                return False
            jobs.append((n, np.array(image.data), image.rgb, image.label))
        self.apply_kept_settings()
        if not self.session.predict(jobs, self._on_prediction, post=self._model_app().post_process(),
                                    options=self.prediction_options()):
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
        """Every image layer, but those that are the other channels of an image (they come with it)."""
        members = self.channel_members()
        return self.predict(names=[n for n in self._layer_names("Image") if n not in members])

    def _on_prediction(self, name: str, result) -> None:
        if self._closed:  # the viewer was closed meanwhile
            return
        if name not in self.viewer.layers:
            self._notify(f"Image '{name}' was removed before its prediction finished; the prediction is dropped.")
            return
        # The image as the model read it: its prediction has its shape (no channel axis), scale and offset.
        self._model_app().show_prediction(self.image_for(name), result)
        if self.session.state != TRAINING:
            self.status.value += self._scale_text(name)

    # -- object scale and evaluation (the Prediction section) ------------------------
    def apply_kept_settings(self) -> None:
        """The controls that apply after training (Weights to use, Post-processing) reach the model between
        runs (while one runs they are locked as it started)."""
        if self.session.has_model and self.session.state != TRAINING:
            self.session.trainer.settings.update(**self._kept_settings())

    def prediction_options(self) -> dict:
        """The predictor's `diameter` and `tta` from the Prediction section, as the model's application takes
        them (classification: no diameter)."""
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
        from ..engine import applications

        app = applications.for_settings(trainer.settings)
        d = None if app.whole_image else app.model_diameter(trainer.settings)
        return d / trainer.settings.data.downscale if d else None

    def _scale_text(self, name: str) -> str:
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
        name = self.predict_combo.value
        if name is None or name not in self.viewer.layers:
            self._notify("Choose the image under Predict image first: Estimate measures its objects.")
            return None
        frame = self._current_frame(self.image_for(name))
        if frame is None:
            self._notify(f"'{name}' has more than 3 dimensions: Estimate measures 2D images and stacks of them.")
            return None
        from ..engine.scale import estimate_diameter

        d = estimate_diameter(frame)
        if d is None:
            self._notify(f"No objects found in '{name}' (the frame on screen): type their diameter in pixels, or "
                         "leave 0 to predict at the model's own scale.")
            return None
        self.diameter_auto.value = False
        self.diameter.value = round(d, 1)
        m = self.model_diameter()
        self.status.value = f"Objects in '{name}' are about {d:.0f} px across" + (
            f"; the model's were {m:.0f} px: Predict rescales the image by {m / d:.2f}." if m else
            ". Predict rescales the image to the objects' size the model was trained on.")
        return d

    def evaluate(self, *_) -> bool:
        """Evaluate: predict the chosen image and score it against the chosen labels (or points), which must
        not be in the training set; the scores go into the table."""
        image_name, truth_name = self.predict_combo.value, self.evaluate_combo.value
        app = self._model_app()
        if not self.session.has_model:
            self._notify("There is no model to evaluate yet: train or load one first.")
            return False
        kind = (app.target_kind or "labels").lower()
        if image_name is None or truth_name is None:
            self._notify(f"Choose an image under Predict image and its {kind} layer under Evaluate with.")
            return False
        image, truth = self.image_for(image_name), self.viewer.layers[truth_name]
        try:
            if not image.plain:  # layers read as they are: the engine checks
                image.check(self.input_channels(), trained=True)
            app.check_target(image, truth)
            target = app.target_of(image, truth)
        except MiaError as e:
            self._notify(explain(e))
            return False
        if app.in_training_set(image_name, truth_name):
            self._notify(f"'{image_name}' is in the training set: the model has learnt it, so its scores would "
                         f"look better than the model is. Evaluate on an image with {kind} that is not in the "
                         "training set.")
            return False
        self.apply_kept_settings()

        def scored(name, result):
            if not self._closed:
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

        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QTableWidgetItem

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
            + self._scale_text(name)

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
        from ..engine.events import EpochEnd, IterationEnd, PlanMade, Preview, TrainingFinished, TrainingStarted

        if isinstance(ev, TrainingStarted):
            self.open_plot_dock()
            self._run_size = (ev.epochs, ev.steps_per_epoch)
            self._first_step = None  # (time, iteration) of the run's first step: the estimate starts after it
            # A time plan ends at its deadline, whatever the pace.
            self._deadline = _clock() + ev.minutes * 60 if ev.minutes else None
            start = f"epoch {ev.start_epoch + 1} of {ev.epochs} starting…" if ev.epochs else \
                f"{ev.minutes:g} minutes, timing the first steps to plan them…"
            self.status.value = f"Training: {start}" + (f" {ev.note}" if ev.note else "")
            if ev.warning:
                self._notify_plan(ev.warning)
            self._update_buttons()  # the model exists from now on: Predict works during the first run too
            self.device_label.value = f"Training on {ev.device}" + \
                (f" in mixed precision ({ev.precision})" if ev.precision else "")
        elif isinstance(ev, PlanMade):
            self._plan_text = f"Plan: {ev.message}"
            self.status.value = self._plan_text
            if ev.warning:
                self._notify_plan(ev.warning)
        elif isinstance(ev, IterationEnd):
            epochs, steps = getattr(self, "_run_size", (0, 0))
            of = f" of {steps}" if steps else ""
            where = f"epoch {ev.epoch} of {epochs}" if epochs else f"period {ev.epoch}"
            self.status.value = f"Training: step {ev.step}{of}, {where}, loss {ev.loss:.4f}" \
                                + self._time_left(ev) + (f". {self._epoch_text}" if self._epoch_text else "")
        elif isinstance(ev, EpochEnd):
            val = "" if ev.val_metric is None else f", validation {ev.val_metric:.3f}"
            self._epoch_text = f"Epoch {ev.epoch}: loss {ev.train_loss:.4f}{val}"
            self.status.value = self._epoch_text
        elif isinstance(ev, Preview):
            self._on_prediction(ev.name, ev.prediction)
        elif isinstance(ev, TrainingFinished):
            self.status.value = {"completed": "Training finished.", "stopped": "Training stopped: Resume continues.",
                                 "time_limit": "Time limit reached."}[ev.reason] + f" ({ev.iteration} steps)"

    def _time_left(self, ev) -> str:
        """', about N minutes left': the rest of the run at the pace measured since its first step, on this
        computer with what else runs on it ('' until TIMED_STEPS steps were timed)."""
        now, first = _clock(), getattr(self, "_first_step", None)
        if first is None:
            self._first_step = (now, ev.iteration)
            return ""
        epochs, steps = getattr(self, "_run_size", (0, 0))
        timed = ev.iteration - first[1]
        deadline = getattr(self, "_deadline", None)
        if timed < TIMED_STEPS or not (steps or deadline):
            return ""
        left = (epochs * steps - ev.iteration) * (now - first[0]) / timed if steps else float("inf")
        if deadline is not None:
            left = min(left, deadline - now)
        return f", {duration_text(left)} left" if left > 0 else ""

    def _update_buttons(self, *_):
        """Called on every state change and when the first run has built its model (TrainingStarted)."""
        running = self.session.state == TRAINING
        loading = self.session.state == LOADING
        for w in self._locked:
            w.enabled = not running and self.session.state == IDLE
        self._update_validation()  # the Validation split stays off while pairs are marked
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

    def _notify_plan(self, message: str):
        """A plan too short to learn, or cut before its first validation: said once, without stopping anything."""
        from ._messages import notify

        notify(message)

    def _show_failure(self, message: str):
        self.status.value = message

    def _notify(self, message: str):
        from ._messages import notify

        notify(message)
        self.status.value = message

