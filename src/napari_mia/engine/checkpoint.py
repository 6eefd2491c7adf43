"""The weights of the best validation epoch, kept beside the live ones (``TrainSettings.keep``).

The validation score of a short training on few images goes up and down from
epoch to epoch; the last epoch is rarely the best. Training always continues
from the live (latest) weights; Predict, Save and Export use the kept ones.
"""

from __future__ import annotations

import copy


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
