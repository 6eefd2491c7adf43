"""The "Train Model" dock: MIA's Training Window over the engine.

Thin on purpose: it turns layers into copied arrays, controls into a ``Settings``, and hands both to the
viewer's ``TrainingSession``. The dock is composed of sections (widgets/sections), each owning its widgets and
what they do; the dock builds them, tells each what it needs of the others, lays them out and lends their names
to the adapters (widgets/applications), which hold what differs between applications, and to scripts and tests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from magicgui.widgets import Label
from qtpy.QtWidgets import QWidget

from ..engine.tasks import default_loss, task_losses
from . import _forms as F
from ._layers import layer_names, refill, region_choices, target_choices
from ._layout import build_dock, caption_out_of_the_toasts, dock_beside
from ._messages import notify
from ._session import IDLE, TRAINING, session_for
from .applications import ADAPTERS
from .export import export_dialog
from .plot import TrainingPlotWidget
from .sections.actions import ActionsSection
from .sections.data import DataSection
from .sections.elsewhere import OtherMachine
from .sections.model import ModelSection
from .sections.prediction import PredictionSection
from .sections.progress import TrainingProgress
from .sections.settings import DockSettings

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

# What the dock lends of each section, by the names the adapters, scripts and tests use (section attribute ->
# dock attribute where they differ). The training set's state is lent by properties below: it is reassigned.
LENT = {
    "data": ("application", "image_combo", "channel_axis", "channel_layers", "labels_combo", "add_button",
             "pair_list", "remove_button", "validation_button", "test_button", "pair_buttons", "classes_label", "regions_combo",
             "labelled_label", "add_pair", "region_of", "mark_validation", "mark_test", "image_for", "input_channels",
             "channel_members", ("update_classes", "_update_classes"), ("set_input", "_set_input"),
             ("first_channels", "_first_channels"), ("pair_text", "_pair_text")),
    "model": ("export_button", "find_devices_button", "device_label", "defaults_button", "find_devices",
              "start_from"),
    "elsewhere": ("export_job_button", "import_model_button", "elsewhere_row", "export_job", "import_model"),
    "prediction": ("diameter", "estimate_button", "diameter_row", "diameter_auto", "tta", "evaluate_combo",
                   "evaluate_button", "evaluate_row", "scores_table", "prediction_options", "model_diameter",
                   "estimate_diameter", "evaluate", ("section_options", "prediction_section_options")),
    "settings": (("read", "read_settings"), ("write", "write_settings"), ("reset", "reset_settings"),
                 ("remember", "remember_settings"), ("apply_kept", "apply_kept_settings")),
    "pinned": ("start_button", "stop_button", "resume_button", "reset_button", "save_button", "load_button",
               "predict_combo", "predict_button", "predict_all_button", "add_prediction_button", "start",
               "save_model", "load_model", "predict", "predict_all", "add_prediction"),
}


class TrainingWidget(QWidget):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer = napari_viewer
        self.session = session = session_for(napari_viewer)
        self.controls = {f: F.make_control(f) for f in F.SPECS}
        self._closed = False
        # The status line, pinned with the actions: every section says there what it did, or why it did not.
        self.status = Label(value="No model yet.")
        self._build(viewer, session)
        self._lay_out()
        self._wire()
        self.model.on_architecture()
        self._on_application()
        self.data.on_channels()
        self.settings.restore()  # the last session's, if any
        self._update_buttons()

    def _build(self, viewer, session) -> None:
        """The sections, each given the others it needs; the adapters between the Data section and the rest,
        as they read its widgets when they are made."""
        self.data = DataSection(viewer, session, self.controls, self.status, self._notify)
        self._lend("data")
        # Every application's adapter lives as long as the dock: a loaded model or a prediction still
        # arriving may belong to another application than the one chosen now.
        self.apps = self.data.apps = {task: adapter(self) for task, adapter in ADAPTERS.items()}
        self._data_sections = [s for a in self.apps.values() for s in a.data_sections()]
        self.elsewhere = OtherMachine(self, session, self.data, self.status, self._notify,
                                      read_settings=lambda: self.read_settings(), loaded=self._model_loaded,
                                      open_plot=lambda: self.open_plot_dock())
        self.model = ModelSection(session, self.controls, self.status, self.elsewhere.elsewhere_row)
        self.prediction = PredictionSection(viewer, session, self.data, self.status, self._notify,
                                            chosen_image=lambda: self.pinned.predict_combo.value,
                                            model_app=self._model_app,
                                            apply_kept=lambda: self.apply_kept_settings(),
                                            closed=lambda: self._closed)
        self.settings = DockSettings(session, self.controls, self.data, self.prediction, self.status)
        # The actions, pinned below the sections (not `actions`: QWidget.actions() is Qt's).
        self.pinned = ActionsSection(self, viewer, session, self.data, self.prediction, self.settings,
                                     self.status, self._notify, loaded=self._model_loaded,
                                     model_app=self._model_app, closed=lambda: self._closed)
        self.progress = self.pinned.progress = TrainingProgress(
            self.status, self.model.device_label, open_plot=lambda: self.open_plot_dock(),
            model_made=lambda: self._update_buttons(), preview=self.pinned.on_prediction)
        for name in LENT:
            if name != "data":
                self._lend(name)

    def _lend(self, section: str) -> None:
        for name in LENT[section]:
            own, lent = name if isinstance(name, tuple) else (name, name)
            setattr(self, lent, getattr(getattr(self, section), own))

    def _lay_out(self) -> None:
        """The sections scroll, the actions stay pinned below them (in reach also when the Training Data dock
        halves the column), long texts are elided or wrapped (widgets/_layout.py)."""
        self.scroll = build_dock(self, [("Data", self.data.box, True), *self._data_sections, *self.model.sections(),
                                        ("Prediction", self.prediction.box, True),
                                        *(s for a in self.apps.values() for s in a.prediction_sections())],
                                 self.pinned.box, wrapped=[self.status, self.classes_label, self.device_label,
                                                            self.labelled_label])
        caption_out_of_the_toasts(self.viewer)
        # widgets that must not change while a training runs
        self._locked = [*self.data.locked, *self.pinned.locked, *self.model.locked, *self.elsewhere.locked]

    def _wire(self) -> None:
        self.data.connect()
        self.pinned.connect(start=self.start, predict=self.predict, predict_all=self.predict_all,
                             add_prediction=self.add_prediction)
        self.defaults_button.changed.connect(self.reset_settings)
        self.export_button.changed.connect(lambda *_: export_dialog(self))
        self.model.connect(load=self.load_model)
        self.elsewhere.connect()
        self.prediction.connect()
        self.application.changed.connect(self._on_application)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                   self.viewer.layers.events.moved):
            ev.connect(self._refresh_layers)
        self.session.connect_widget(self, [(self.session.state_changed, self._update_buttons),
                                           (self.session.event, self._on_event),
                                           (self.session.failed, self._show_failure),
                                           (self.session.predict_progress, self.pinned.on_predict_progress)])
        # Closing the viewer (or this dock) stops the training: nothing would show its progress.
        session, apps, clock = self.session, list(self.apps.values()), self.data.annotation

        def closed(*_):
            self._closed = True
            session.stop()
            clock.close()
            for app in apps:
                app.close()

        self.destroyed.connect(closed)

    # -- the training set, lent from the Data section -----------------------------------
    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(image layer name, labels layer name) of the training set."""
        return self.data.pairs

    @pairs.setter
    def pairs(self, pairs: list[tuple[str, str]]) -> None:
        self.data.pairs = pairs

    @property
    def validation(self) -> set[tuple[str, str]]:
        return self.data.validation

    @property
    def test(self) -> set[tuple[str, str]]:
        return self.data.test

    @property
    def pair_regions(self) -> dict[tuple[str, str], str]:
        return self.data.pair_regions

    @property
    def prediction_pairs(self) -> set[tuple[str, str]]:
        return self.data.prediction_pairs

    @property
    def channel_groups(self) -> dict[str, tuple[str, ...]]:
        return self.data.channel_groups

    @property
    def scores(self) -> dict[str, dict]:
        return self.prediction.scores

    # -- application ------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.data.task

    @property
    def app(self):
        """The adapter of the chosen application (widgets/applications)."""
        return self.data.app

    def _model_app(self):
        """The adapter of the model's application: its predictions take that application's form."""
        trainer = self.session.trainer
        return self.apps[trainer.settings.model.task] if trainer is not None else self.app

    def __getattr__(self, name: str):
        # What the adapters lend the dock (class_table, points_of, ...), for scripts and tests.
        for app in self.__dict__.get("apps", {}).values():
            if name in app.lends:
                return getattr(app, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _on_application(self, *_):
        """Show the controls of the chosen application; pairs of another kind leave the training set."""
        app, task, c = self.app, self.task, self.controls
        self.application.tooltip = app.tooltip
        # a widget that some application shows is shown only for the applications that list it
        for name in dict.fromkeys(n for a in self.apps.values() for n in a.shows):
            w = c[name] if name in c else getattr(self, name)
            if isinstance(w, QWidget):
                w.setVisible(name in app.shows)
            else:
                w.visible = name in app.shows
        if "evaluate_row" not in app.shows:
            self.scores_table.visible = False
        self.data.show_application(app)
        self.predict_combo.tooltip = app.predict_tooltip
        self.add_prediction_button.tooltip = app.add_prediction_tooltip
        # Losses and metrics that fit the task; a choice that does not fit falls back to the task's default.
        losses = task_losses(task)
        current = c["loss"].value
        c["loss"].choices = losses
        c["loss"].value = current if current in losses else default_loss(task)
        app.chosen()
        if self.pairs and task != getattr(self, "_pairs_task", task):
            self.pairs = []
            self.data.update_pairs()
        self._pairs_task = task
        self._refresh_layers()
        self._update_classes()

    # -- layers -----------------------------------------------------------------------
    def _refresh_layers(self, *_):
        """The layer combos of every section follow the viewer's layers; what was removed leaves the training
        set, and every adapter is told."""
        layers = self.viewer.layers
        target = self.app.target_kind or "Labels"
        for combo, kind in [(self.image_combo, "Image"), (self.labels_combo, target), (self.predict_combo, "Image"),
                            (self.evaluate_combo, target)]:
            refill(combo, target_choices(layers, kind) if combo in (self.labels_combo, self.evaluate_combo)
                   else layer_names(layers, kind))
        refill(self.regions_combo, region_choices(layers))
        names = {layer.name for layer in layers}
        self.data.forget_removed(names)
        for app in self.apps.values():
            app.layers_changed(names)

    def training_items(self) -> list:
        """Copies of the layers' data: training never sees (or touches) the live layers.

        (image, target, name, target name, rgb): the target is labels, (N, 3) points or a class per frame.
        The pairs marked for validation are not among them (``validation_items``).
        """
        return self.app.training_items()

    def validation_items(self) -> list:
        """Copies of the pairs marked for validation, as ``training_items``; [] when none is marked."""
        return self.app.validation_items()

    # -- state ------------------------------------------------------------------------
    def _model_loaded(self, settings) -> None:
        """A model file was loaded (Load Model, Import model): its settings reach the controls."""
        self.write_settings(settings)
        self._update_buttons()

    def _update_buttons(self, *_):
        """Called on every state change and when the first run has built its model (TrainingStarted)."""
        running = self.session.state == TRAINING
        for w in self._locked:
            w.enabled = not running and self.session.state == IDLE
        self.data.update_validation()  # the Validation split stays off while pairs are marked
        for section in self._data_sections:  # the adapters' training data, e.g. the class table
            section[1].setEnabled(not running and self.session.state == IDLE)
        self.pinned.update_buttons()
        self.model.lock(running)
        self.application.enabled = not running and not self.session.has_model

    def _on_event(self, ev) -> None:
        self.progress.on_event(ev)

    def open_plot_dock(self):
        """Show the Training Data dock (once per viewer)."""
        plot = getattr(self.session, "plot_widget", None)
        if plot is not None:  # reset to None when the user closes the dock
            return plot
        plot = TrainingPlotWidget(self.viewer)
        dock_beside(self.viewer, self, plot)  # below Train Model, which keeps its actions in sight
        self.session.plot_widget = plot
        return plot

    def _show_failure(self, message: str):
        self.status.value = message

    def _notify(self, message: str):
        notify(message)
        self.status.value = message

    def hideEvent(self, event):  # noqa: N802 - Qt's name
        # Closing the dock or the viewer hides the dock first, while its controls still exist.
        try:
            self.remember_settings()
        except Exception:  # noqa: BLE001 - e.g. Qt deleted the controls already: remembering is a convenience
            log.warning("napari-mia: the Train Model settings were not remembered", exc_info=True)
        super().hideEvent(event)
