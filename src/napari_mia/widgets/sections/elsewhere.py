"""The Device section's Other machine row: Export training job hands a training to another machine (e.g. a GPU
server, ``napari-mia train --job``), Import model brings the model it trained back with its record."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from magicgui.widgets import Container, Label, PushButton
from qtpy.QtWidgets import QFileDialog, QWidget

from ...engine.errors import MiaError
from ...engine.job import commands, read_job, write_job
from ...engine.record import TrainingRecord, record_path
from .._session import explain
from .data import DataSection

ALL_VALIDATION = ("Every image in the training set is marked for validation: nothing is left to train on. Press "
                  "Use for validation on some of them to train on them again.")


class OtherMachine:
    """`read_settings`: the controls as settings; `loaded`: what the dock does with a model's settings once
    loaded (as Load Model); `open_plot`: shows the Training Data dock."""

    def __init__(self, parent: QWidget, session, data: DataSection, status: Label, notify: Callable[[str], None],
                 read_settings: Callable, loaded: Callable, open_plot: Callable):
        self.parent, self.session, self.data, self.status, self.notify = parent, session, data, status, notify
        self._read_settings, self._loaded, self._open_plot = read_settings, loaded, open_plot
        # The other machine's devices, so with this machine's.
        self.export_job_button = PushButton(
            text="Export training job…",
            tooltip="Write the training set (with the images marked for validation and the reviewed regions) and "
                    "these settings into a new folder, to train on another machine, e.g. a GPU server: "
                    "napari-mia train --job FOLDER (the folder's README.md gives the command). Layers are not "
                    "changed.")
        self.import_model_button = PushButton(
            text="Import model…",
            tooltip="Load a model trained on another machine (napari-mia train) with its settings, and show its "
                    "training record (the _record.csv beside it) in the Training Data dock.")
        self.elsewhere_row = Container(widgets=[self.export_job_button, self.import_model_button],
                                       layout="horizontal", labels=False, label="Other machine")
        self.elsewhere_row.margins = (0, 0, 0, 0)
        self.locked = [self.import_model_button]  # a training running

    def connect(self) -> None:
        self.export_job_button.changed.connect(self._on_export_job)
        self.import_model_button.changed.connect(self._on_import_model)

    def export_job(self, folder) -> bool:
        """Export training job: what Start would train on (the training set, the images marked for validation,
        reviewed regions) and the settings, into `folder` (new or empty), for ``napari-mia train --job``.
        The layers are copied, never changed."""
        app = self.data.app
        if not app.has_training_data():
            self.notify(app.empty_message)
            return False
        try:
            settings = self._read_settings()
            items, val = app.training_items(), app.validation_items()
            if not items:
                self.notify(ALL_VALIDATION)
                return False
            folder = write_job(folder, items, settings, val or None)
        except MiaError as e:
            self.notify(explain(e))
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
        path = Path(path)

        def loaded(settings):
            self._loaded(settings)
            record, where = self._imported_record(path)
            self.session.record.iterations[:] = record.iterations
            self.session.record.epochs[:] = record.epochs
            self._open_plot().show_record()
            self.status.value = f"Model imported from {path}; {where}."

        if not self.session.load(path, loaded):
            return False
        self.status.value = f"Importing model {path}…"
        return True

    def _imported_record(self, path):
        """(record, where it came from, in words) of an imported model."""
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

    def _on_export_job(self, *_):
        folder = QFileDialog.getExistingDirectory(self.parent, "Export training job: choose or create an empty folder")
        if folder:
            self.export_job(folder)

    def _on_import_model(self, *_):
        path, _ = QFileDialog.getOpenFileName(self.parent, "Import model trained elsewhere", "",
                                              "napari-mia model (*.pt);;All files (*)")
        if path:
            self.import_model(path)
