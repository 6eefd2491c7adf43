"""How an application's training targets and predictions are kept in files, for the folder workflows.

One ``TargetFiles`` per application (``formats.get``): it reads the targets (a masks folder, a points CSV, a
classes CSV), turns them into training sources, writes predictions, and says what training found out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...engine import applications


class PredictionWriter:
    """Writes a folder's predictions: ``add(file, image)`` for each image, ``finish()`` says what was written."""

    def add(self, f: Path, image) -> None:
        raise NotImplementedError

    def finish(self) -> str:
        raise NotImplementedError


class TargetFiles:
    """One application's files. Instances hold no state: one per application, shared."""

    #: The application's name (``model.task``).
    name: str = ""
    #: What holds the targets: "masks" (a folder of label images), "points" or "classes" (a CSV); the train and
    #: evaluate options are named after it.
    targets: str = ""
    #: What to say when the targets are missing.
    missing_targets: str = ""
    #: What predictions are measured from: "labels" (label images), "points" (points.csv) or None (nothing).
    measured: str | None = None
    #: Said when there is nothing to measure.
    nothing_to_measure: str = ""

    @property
    def app(self):
        return applications.get(self.name)

    def read_targets(self, images: Path, path: Path) -> list[tuple]:
        """The folder of images and the targets' file or folder -> [(image file, targets)]."""
        raise NotImplementedError

    def prepare_settings(self, settings, pairs: list[tuple], given_config: bool) -> None:
        """Settings a new model takes from the training files (not when a run is resumed)."""

    def guess_label_mode(self, pairs: list[tuple], sparse: bool) -> tuple[str, str] | None:
        """(the label mode the training targets show, why, in a sentence); None where the application has no
        label mode to choose. Raises MiaError where they disagree."""
        return None

    def sources(self, pairs: list[tuple], settings, read: Callable[[Path], Any], notes: list[str],
                channel_axis: int | None = None) -> list:
        """[(image file, targets[, region file])] -> training sources. `read` reads an image as the model takes
        it (channels last, from `channel_axis`, the axis of the files that holds them, or guessed when None);
        what file readers change in passing is added to `notes`."""
        raise NotImplementedError

    def after_training(self, trainer) -> list[str]:
        """Work on the trained model before it is saved; returns what was done, in lines."""
        return []

    def validation_report(self, trainer, pairs: list[tuple], read: Callable[[Path], Any]) -> list[str]:
        """The scores on the validation images at the end of a training, in lines."""
        ev = trainer.evaluate()
        metric = trainer.settings.train.metric
        return [f"Validation {metric}{self._validation_what(trainer.settings)}: {ev['metric']:.4f}  "
                f"loss: {ev['loss']:.4f}"]

    def _validation_what(self, settings) -> str:
        return ""

    def prediction_writer(self, predictor, out: Path, post) -> PredictionWriter:
        """The writer of a folder's predictions into `out` (`post`: a ``prediction.PostOptions``). It raises
        ``errors.OutputError`` when the output cannot be written."""
        raise NotImplementedError

    def written_labels(self, settings, out: Path, images: list[Path]) -> tuple[list[tuple], str, list | None]:
        """measured == "labels": ([(label file, image file)], label mode, class names or None) of the
        predictions written into `out`."""
        raise NotImplementedError
