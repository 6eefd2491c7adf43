"""The training record: every logged value, in memory and as a CSV.

The plot dock draws from it, the CLI writes it next to the model, and the
CSV's rows are exactly the iteration and epoch events of the run.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelFileError
from .events import EpochEnd, IterationEnd

COLUMNS = ["kind", "epoch", "iteration", "loss", "metric", "val_loss", "val_metric", "val_objects", "lr"]


@dataclass
class TrainingRecord:
    iterations: list[IterationEnd] = field(default_factory=list)
    epochs: list[EpochEnd] = field(default_factory=list)

    def add(self, event) -> None:
        if isinstance(event, IterationEnd):
            self.iterations.append(event)
        elif isinstance(event, EpochEnd):
            self.epochs.append(event)

    def clear(self) -> None:
        self.iterations.clear()
        self.epochs.clear()

    @property
    def best_epoch(self) -> EpochEnd | None:
        # The trainer's choice (the object score in instance mode); records from before the flag: the metric.
        flagged = [e for e in self.epochs if e.best]
        if flagged:
            return flagged[-1]
        scored = [e for e in self.epochs if e.val_metric is not None]
        return max(scored, key=lambda e: e.val_metric) if scored else None

    def rows(self) -> list[dict]:
        rows = [{"kind": "iteration", "epoch": e.epoch, "iteration": e.iteration, "loss": e.loss,
                 "metric": e.metric, "val_loss": "", "val_metric": "", "val_objects": "", "lr": e.lr}
                for e in self.iterations]
        last_iter = {e.epoch: e.iteration for e in self.iterations}
        rows += [{"kind": "epoch", "epoch": e.epoch, "iteration": last_iter.get(e.epoch, ""),
                  "loss": e.train_loss, "metric": e.train_metric,
                  "val_loss": "" if e.val_loss is None else e.val_loss,
                  "val_metric": "" if e.val_metric is None else e.val_metric,
                  "val_objects": "" if e.val_objects is None else e.val_objects, "lr": e.lr} for e in self.epochs]
        return rows

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, COLUMNS)
                w.writeheader()
                w.writerows(self.rows())
        except OSError as e:
            raise ModelFileError(f"Cannot write the training record {path}: {e.strerror}.") from e
        return path


def record_path(model_path: str | Path) -> Path:
    """Where the CLI writes the record of a model: beside it, same stem."""
    p = Path(model_path)
    return p.with_name(p.stem + "_record.csv")
