"""The weights of the best validation epoch, kept beside the live ones (``TrainSettings.keep``), and
the trainer's model file (``Trainer.save``, ``Trainer.load``).

The validation score of a short training on few images goes up and down from
epoch to epoch; the last epoch is rarely the best. Training always continues
from the live (latest) weights; Predict, Save and Export use the kept ones.
"""

from __future__ import annotations

import copy
from pathlib import Path

from . import modelfile
from .errors import ModelFileError, SettingsError


class BestWeights:
    """A CPU copy of the weights of the run's best epoch so far."""

    def __init__(self):
        self.state: dict | None = None
        self.epoch: int | None = None
        self.score: float | None = None
        # Whether the live weights moved on from the best ones (a later epoch, or steps since).
        self.behind = False

    def clear(self) -> None:
        self.__init__()

    def store(self, model, epoch: int, score: float) -> None:
        """Called when `epoch` scored best: its weights (BatchNorm statistics settled) are these."""
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.epoch, self.score, self.behind = epoch, score, False

    def moved_on(self) -> None:
        if self.state is not None:
            self.behind = True

    def applies(self, keep: str) -> bool:
        return keep == "best" and self.state is not None and self.behind

    def model(self, live, keep: str):
        """The network to predict, save or export with: the live one, or a copy holding the best weights."""
        if not self.applies(keep):
            return live
        kept = copy.deepcopy(live)
        kept.load_state_dict(self.state)
        return kept

    def file_entries(self, live, keep: str) -> tuple[dict, dict]:
        """(weights for the file's model, extra entries): the best as the model, the live ones kept to resume."""
        if not self.applies(keep):
            return live.state_dict(), {}
        return self.state, {"last_state_dict": {k: v.detach().cpu() for k, v in live.state_dict().items()},
                            "best_epoch": self.epoch}


def save_trainer(trainer, path, include_optimizer: bool = False) -> Path:
    if trainer.model is None:
        raise SettingsError("There is no model to save yet: train or load a model first.")
    # The file's statistics are what every later prediction (CLI, another session) uses.
    trainer.settle_normalization()
    weights, kept = trainer.best.file_entries(trainer.model, trainer.settings.train.keep)
    extra = {"history": trainer.history, **kept}
    if trainer.data_size:  # the export's README reports it
        extra["data"] = trainer.data_size
    run = trainer._run
    if include_optimizer and run is not None and run.optimizer is not None:
        extra.update(optimizer=run.optimizer.state_dict(), epoch=run.epoch, iteration=run.iteration)
        if run.scheduler is not None:
            extra["scheduler"] = run.scheduler.state_dict()
    if not include_optimizer:  # the latest weights only matter to continue the run
        extra.pop("last_state_dict", None)
    return modelfile.save(path, weights, trainer.settings, **extra)


def load_trainer(cls, path):
    from .models import build_model, pick_device
    from .trainer import _model_key

    content = modelfile.load(path)
    trainer = cls(content["settings"])
    trainer.model = build_model(trainer.settings.model, load_pretrained=False)
    try:
        trainer.model.load_state_dict(content["state_dict"])
        if content.get("last_state_dict") is not None:
            # The file's model is the best epoch's; training goes on from the latest weights.
            trainer.best.store(trainer.model, content.get("best_epoch") or 0, float("nan"))
            trainer.model.load_state_dict(content["last_state_dict"])
            trainer.best.moved_on()
    except (RuntimeError, KeyError) as e:
        raise ModelFileError(f"{Path(path).name}: the weights do not match the settings stored with them "
                             "(the file is damaged).") from e
    trainer._key = _model_key(trainer.settings)
    trainer.history = list(content.get("history", []))
    trainer._loaded_data_size = content.get("data")
    trainer._saved_run = {k: content[k] for k in ("optimizer", "scheduler", "epoch", "iteration") if k in content}
    try:
        trainer.device = pick_device(trainer.settings.train.device)
    except SettingsError:
        # Trained on a GPU this machine does not have: predict on what is here.
        trainer.settings.train.device = "auto"
        trainer.device = pick_device("auto")
    trainer.model.to(trainer.device)
    return trainer
