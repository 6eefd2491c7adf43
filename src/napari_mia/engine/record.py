"""The training record: every logged value, in memory and as a CSV.

The plot dock draws from it, the CLI writes it next to the model, and the
CSV's rows are exactly the iteration and epoch events of the run.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, fields
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

    @classmethod
    def read_csv(cls, path: str | Path) -> TrainingRecord:
        """A record written by ``write_csv`` (e.g. beside a model the command line trained), for the plot dock.

        The CSV keeps neither the steps within an epoch nor the epochs' seconds (counted again, and 0), nor
        which epoch was best: it is marked again as the trainer picks it (the objects F1 where there is one,
        else the validation metric, each a new best only when higher)."""
        path = Path(path)
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise ModelFileError(f"Cannot read the training record {path}: {e.strerror}.") from e
        if rows and not {"kind", "epoch", "iteration", "loss", "metric"} <= set(rows[0]):
            raise ModelFileError(f"{path.name} is not a napari-mia training record (columns {', '.join(COLUMNS)}).")
        record, steps, best = cls(), {}, float("-inf")

        def num(row, key):
            text = (row.get(key) or "").strip()
            return float(text) if text else None

        try:
            for r in rows:
                epoch = int(r["epoch"])
                if r["kind"] == "iteration":
                    steps[epoch] = steps.get(epoch, 0) + 1
                    record.iterations.append(IterationEnd(epoch, steps[epoch], int(r["iteration"]), num(r, "loss"),
                                                          num(r, "metric"), num(r, "lr") or 0.0))
                elif r["kind"] == "epoch":
                    val_metric, val_objects = num(r, "val_metric"), num(r, "val_objects")
                    judged = val_objects if val_objects is not None else val_metric
                    is_best = judged is not None and judged > best
                    best = judged if is_best else best
                    record.epochs.append(EpochEnd(epoch, num(r, "loss"), num(r, "metric"), num(r, "val_loss"),
                                                  val_metric, num(r, "lr") or 0.0, 0.0, is_best, val_objects))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path.name}: a row of the training record cannot be read ({e}).") from e
        return record

    @classmethod
    def from_history(cls, history: list[dict]) -> TrainingRecord:
        """The epochs a model file keeps (``Trainer.history``): a record without its iterations."""
        names = {f.name for f in fields(EpochEnd)}
        return cls(epochs=[EpochEnd(**{k: v for k, v in h.items() if k in names}) for h in history])


def record_path(model_path: str | Path) -> Path:
    """Where the CLI writes the record of a model: beside it, same stem."""
    p = Path(model_path)
    return p.with_name(p.stem + "_record.csv")
