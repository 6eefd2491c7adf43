"""The model a Trainer trained, as a handle (``TrainedModel``), a Predictor or a file.

A base class of ``trainer.Trainer``, kept in a file of its own for size.
"""

from __future__ import annotations

import copy
from pathlib import Path

from . import checkpoint
from .errors import SettingsError
from .models import model_key, pick_device
from .predictor import Predictor
from .trained_model import TrainedModel, damaged


class TrainerModel:
    """The kept weights of a ``Trainer``: as a handle, a predictor, a file; and a trainer from a file."""

    def kept_model(self):
        """The network Predict, Save and Export use: the best epoch's weights or the live ones (``keep``)."""
        return self.best.model(self.model, self.settings.train.keep)

    def _ready(self) -> None:
        if self.model is None:
            raise SettingsError("There is no trained model yet: train or load a model first.")
        if self.device is None:
            self.device = pick_device(self.settings.train.device)
            self.model.to(self.device)

    def trained_model(self) -> TrainedModel:
        """The kept weights (``TrainSettings.keep``) as a model handle, normalisation statistics settled.

        It shares the live network (when it holds the kept weights) and the settings: call it between
        trainings, or from the training thread; ``snapshot`` is for other threads."""
        self._ready()
        self.settle_normalization()
        return TrainedModel(self.kept_model(), self.settings, self.device, self.history, self.data_size,
                            rounds=self.rounds)

    def snapshot(self) -> TrainedModel:
        """A model handle of the kept weights that may be taken from another thread while training runs: a deep
        copy taken between two training steps, settled on its own, with a copy of the settings; the live
        model, its statistics and the training's random draws are left as they are."""
        self._ready()
        keep = self.settings.train.keep
        with self._weights_lock:
            best = self.best.applies(keep)  # the best epoch's statistics were settled when it was kept
            model, stale = self.best.model(self.model, keep) if best else copy.deepcopy(self.model), self._norm_stale
            settings = self.settings.copy()
            sources = list(self._run.train) if self._run is not None else []
            history = list(self.history)
        if stale and not best:
            self.settle_normalization(model, sources)
        return TrainedModel(model, settings, self.device, history, self.data_size, rounds=self.rounds)

    def predictor(self, tile: int | str | None = "auto", overlap: int = 128, snapshot: bool = False,
                  diameter: float | str | None = None, tta: bool = False) -> Predictor:
        """A Predictor of the kept weights (``TrainSettings.keep``), with settled normalisation statistics.

        `tile`, `diameter`, `tta`: see ``Predictor``. ``snapshot=False``: predicts with the live model
        (``trained_model``); ``snapshot=True``: with a copy that may be made from another thread while
        training runs (``snapshot``).
        """
        model = self.snapshot() if snapshot else self.trained_model()
        return model.predictor(tile=tile, overlap=overlap, diameter=diameter, tta=tta)

    def save(self, path: str | Path, include_optimizer: bool = False) -> Path:
        """Write the model file: the kept weights and every setting; `include_optimizer`: also what --resume needs."""
        if self.model is None:
            raise SettingsError("There is no model to save yet: train or load a model first.")
        # The file's statistics are what every later prediction (CLI, another session) uses.
        self.settle_normalization()
        weights, kept = self.best.file_entries(self.model, self.settings.train.keep)
        run = self._run
        state = None
        if include_optimizer and run is not None and run.optimizer is not None:
            state = checkpoint.run_state(run.optimizer, run.scheduler, run.epoch, run.iteration)
        # The latest weights only matter to continue the run.
        last = kept.get("last_state_dict") if include_optimizer else None
        return checkpoint.write(path, weights, self.settings, self.history, self.data_size, kept.get("best_epoch"),
                                last, state, self.rounds)

    @classmethod
    def load(cls, path: str | Path):
        """A trainer holding a model file's weights, ready to predict, to train on, or (``train(continue_saved=
        True)``) to continue the run the file was autosaved in."""
        model = TrainedModel.load(path)
        trainer = cls(model.settings)
        trainer.model = model.network
        if model.last_state is not None:
            # The file's model is the best epoch's; training goes on from the latest weights.
            trainer.best.store(trainer.model, model.best_epoch or 0, float("nan"))
            try:
                trainer.model.load_state_dict(model.last_state)
            except (RuntimeError, KeyError) as e:
                raise damaged(path) from e
            trainer.best.moved_on()
        trainer._key = model_key(trainer.settings.model)
        trainer.history = list(model.history)
        trainer._loaded_data_size = model.data_size
        trainer._saved_run = model.run_state
        trainer.rounds = model.rounds
        trainer.device = model.device
        trainer._place()  # in the layout and precision training and validation use on that device
        return trainer

    def labelled_objects(self) -> int | None:
        """The labelled objects the last run learned from (training and validation), where the application
        counts objects (segmentation, detection); else None."""
        run = self._run
        counts = [len(s.diameters) for s in (run.train + run.val if run is not None else [])
                  if s.diameters is not None]
        return sum(counts) if counts else None

    def restore_round(self, number: int) -> None:
        """The weights of round `number` (``self.rounds``) become the model's: predictions are that round's
        again, and the next Start trains on from them (a stopped run can no longer be resumed)."""
        book = self.rounds
        try:
            index = book.index_of(number)
        except KeyError:
            raise SettingsError(f"There is no round {number}: the rounds are "
                                f"{', '.join(str(r.number) for r in book.rounds) or 'none yet'}.") from None
        if not book.has_weights(index):
            raise SettingsError(f"Round {number}'s weights were not kept in this model file: it cannot be restored.")
        self._ready()
        with self._weights_lock:
            self.model.load_state_dict(book.weights(index))
            self.best.clear()
            self._run, self._norm_stale = None, False
        self._place()
