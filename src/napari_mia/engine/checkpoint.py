"""The weights of the best validation epoch, kept beside the live ones (``TrainSettings.keep``), and
what a model file holds beside the weights: the history, the data size and a stopped run's state.

The validation score of a short training on few images goes up and down from
epoch to epoch; the last epoch is rarely the best. Training always continues
from the live (latest) weights; Predict, Save and Export use the kept ones.
"""

from __future__ import annotations

import copy
from pathlib import Path

from . import applications, modelfile
from .methods import methods_paragraph, reproducibility
from .settings import Settings


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


# What a model file keeps of a stopped run so that ``train --resume`` continues it exactly.
RUN_KEYS = ("optimizer", "scheduler", "epoch", "iteration")


def run_state(optimizer, scheduler, epoch: int, iteration: int) -> dict:
    """The resumable state of a run: the optimizer's and schedule's state, and how far it got."""
    state = {"optimizer": optimizer.state_dict(), "epoch": epoch, "iteration": iteration}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def saved_run(content: dict) -> dict:
    """The resumable run state a model file's content holds (empty when it was saved without)."""
    return {k: content[k] for k in RUN_KEYS if k in content}


def write(path: str | Path, weights: dict, settings: Settings, history: list[dict], data_size: dict | None = None,
          best_epoch: int | None = None, last_state: dict | None = None, run: dict | None = None,
          rounds=None) -> Path:
    """Write a model file: `weights` (what predictions use) and every setting, the epochs' `history`, how many
    images trained and validated (`data_size`, for the export's README); to continue a run, the `last_state`
    weights (when `weights` are an earlier best epoch's, `best_epoch`) and the `run` state; the `rounds`
    (a ``RoundBook``), their weights packed against `weights`."""
    extra: dict = {"history": history}
    if rounds is not None and len(rounds):
        extra.update(rounds.file_entries(weights))
        # Kept as written at the time (a later napari-mia may tell it otherwise): ``napari-mia info`` shows them.
        extra["methods"] = methods_paragraph(settings, rounds.rounds,
                                             applications.for_settings(settings).headline_scores)
        extra["reproducibility"] = reproducibility(rounds.rounds)
    if last_state is not None:
        extra["last_state_dict"] = {k: v.detach().cpu() for k, v in last_state.items()}
    if best_epoch is not None:
        extra["best_epoch"] = best_epoch
    if data_size:
        extra["data"] = data_size
    if run:
        extra.update(run)
    return modelfile.save(path, weights, settings, **extra)
