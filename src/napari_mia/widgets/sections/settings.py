"""The Train Model dock's settings: its controls read into a ``Settings`` and written back from one, reset to
their defaults, and remembered for the next napari session (widgets/_remembered.py)."""

from __future__ import annotations

import logging

from magicgui.widgets import Label

from ...engine import applications
from ...engine.errors import MiaError
from ...engine.settings import Settings
from .. import _forms as F, _remembered
from .._session import TRAINING
from .data import DataSection
from .prediction import PREDICTION_DEFAULTS, PredictionSection

log = logging.getLogger(__name__)


class DockSettings:
    """The controls (every section's, and the adapters' own) as settings: the Data section says which
    application they are for, the Prediction section adds its options to what is remembered."""

    def __init__(self, session, controls: dict, data: DataSection, prediction: PredictionSection, status: Label):
        self.session, self.controls, self.data, self.prediction, self.status = session, controls, data, \
            prediction, status

    def read(self) -> Settings:
        return F.read_settings(self.controls, task=self.data.task, **self.data.app.settings(), **self.kept())

    def kept(self) -> dict:
        """What the model takes of the controls also after training: the weights to use, and the adapters' own
        controls that every model keeps (segmentation's Post-processing)."""
        return {"keep": self.controls["keep"].value,
                **{k: v for app in self.data.apps.values() for k, v in app.kept_settings().items()}}

    def apply_kept(self) -> None:
        """The controls that apply after training (Weights to use, Post-processing) reach the model between
        runs (while one runs they are locked as it started)."""
        if self.session.has_model and self.session.state != TRAINING:
            self.session.trainer.settings.update(**self.kept())

    def write(self, settings: Settings) -> None:
        apps = self.data.apps
        self.data.application.value = apps[settings.model.task].title
        F.write_settings(self.controls, settings)
        for app in apps.values():
            app.write_settings(settings)

    def remember(self, settings: Settings | None = None) -> bool:
        """Remember `settings` (default: the controls') for the dock of the next napari session."""
        if settings is None:
            try:
                settings = self.read()
            except MiaError as e:  # a value being typed (e.g. class weights): the last good ones stay remembered
                log.info("napari-mia: settings not remembered: %s", e)
                return False
        return _remembered.save(settings, self.prediction.section_options())

    def restore(self) -> None:
        """The settings remembered by the last session reach the controls; if they do not fit, the defaults."""
        settings, prediction = _remembered.load()
        try:
            if settings is not None:
                self.write(settings)
            self.prediction.write_options({**PREDICTION_DEFAULTS, **prediction})
        except Exception as e:  # noqa: BLE001 - a convenience: never a reason for the dock not to open
            log.warning("napari-mia: the remembered settings do not fit the Train Model dock (%s); it opens with "
                        "its defaults.", e)
            self.reset(remember=False)
            self.status.value = "The settings of the last session did not fit this version: the defaults are used."

    def reset(self, *_, remember: bool = True) -> None:
        """Reset to defaults: every control back to its default for the chosen application. The training set and
        the model stay, with the settings they fix (channels and label mode of the training set; the network
        of a trained model, whose controls are locked)."""
        task, chosen = self.data.task, self.data.app
        app = applications.get(task)
        defaults = F.dock_settings()
        defaults.model.task, defaults.train.loss = task, app.default_loss
        defaults.train.metric = app.default_metric or defaults.train.metric
        fixed = ["architecture", "encoder", "pretrained", "channels", "label_mode"] if self.session.has_model \
            else ["channels", "label_mode"] if chosen.has_training_data() else []
        for f in fixed:
            defaults.update(**{f: F.to_value(f, self.controls[f])})
        # Classification's class names belong to its table (the training set), not to the settings.
        defaults.model.class_names = chosen.settings().get("class_names", defaults.model.class_names)
        self.write(defaults)
        self.prediction.write_options(PREDICTION_DEFAULTS)
        chosen = self.data.app
        chosen.chosen()
        shown = [F.SPECS[f][0] for f in fixed
                 if f in chosen.shows or all(f not in a.shows for a in self.data.apps.values())]
        self.status.value = "Settings back to their defaults" + (
            f" (kept: {', '.join(shown)}, which the {'model' if self.session.has_model else 'training set'} "
            "needs)." if shown else ".")
        if remember:
            self.remember()
