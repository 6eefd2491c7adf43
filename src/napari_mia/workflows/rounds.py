"""A training run as a round: score it on the test images, record it in the model's rounds, say how it went.

Shared by the command line (``train --test-images``) and the dock: both train, then call ``finish_round``
with what they know (the training data's hashes, the test scores, what the user corrected and how long
they edited), and show the lines it returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..engine import applications
from ..engine.applications.base import write_csv
from ..engine.events import IterationEnd, TrainingFinished, TrainingStarted
from ..engine.methods import package_versions
from ..engine.rounds import Round, hash_array, hash_bytes, now_text, rounds_csv_rows
from .evaluation import EvaluationReport, evaluate_folder, score_items
from .events import Note, RoundDone
from .prediction import predictor_for_model


def item_hash(image, target) -> str:
    """One training pair's hash: image and target, files (their bytes) or arrays (their values)."""
    parts = []
    for x in (image, target):
        if isinstance(x, (str, Path)) and Path(x).is_file():
            parts.append(hash_bytes(Path(x).read_bytes()))
        elif x is not None:
            parts.append(hash_array(x))
    return hash_bytes("|".join(parts).encode())


def data_hashes(pairs: Iterable[tuple]) -> dict[str, str]:
    """name -> hash, for pairs of (image file, target) or (image, target, name) arrays."""
    out = {}
    for p in pairs:
        name = p[2] if len(p) > 2 and isinstance(p[2], str) else Path(p[0]).name
        out[name] = item_hash(p[0], p[1])
    return out


@dataclass
class RoundClock:
    """What a run's events say about it: its steps and its training time (from start to finish)."""

    started: float | None = None
    seconds: float = 0.0
    steps: int = 0
    device: str = ""

    def see(self, ev) -> None:
        if isinstance(ev, TrainingStarted):
            self.started = time.monotonic() if self.started is None else self.started
            self.device = ev.device
        elif isinstance(ev, IterationEnd):
            self.steps += 1
        elif isinstance(ev, TrainingFinished) and self.started is not None:
            self.seconds += time.monotonic() - self.started
            self.started = None

    def stop(self) -> None:
        if self.started is not None:
            self.seconds += time.monotonic() - self.started
            self.started = None


def headline(settings) -> tuple[str, str]:
    """(score, words) that ranks rounds of this application: object F1, point F1, accuracy."""
    return applications.for_settings(settings).headline_scores[-1]


def test_line(report: EvaluationReport, settings) -> str:
    """E.g. "Test, 3 images: fg IoU 0.81, object F1 0.74"."""
    scores = applications.for_settings(settings).headline_scores
    told = ", ".join(f"{words} {report.means[k]:.2f}" for k, words in scores if k in report.means)
    return f"Test, {len(report.rows)} image{'s' if len(report.rows) != 1 else ''}: {told}"


def active_minutes(times: Iterable[float], gap: float = 60.0) -> float:
    """Active editing time, in minutes, from the times (seconds) of edit events: the time between two
    consecutive edits counts when they are at most `gap` seconds apart (a longer pause is not editing)."""
    t = sorted(times)
    return sum(b - a for a, b in zip(t, t[1:]) if b - a <= gap) / 60.0


def finish_round(trainer, clock: RoundClock, data: dict[str, str], test: EvaluationReport | None = None,
                 test_data: Iterable[str] = (), corrected: int = 0, human_minutes: float | None = None,
                 started_from: str = "", continues: bool = False) -> tuple[Round, list[str]]:
    """Record the run just trained as the next round of `trainer` (its kept weights, what it learned from,
    its scores) and return it with the lines to show: the test scores, and a plain warning when it scores
    worse on the test images than an earlier round. `continues`: a resumed run, which replaces the latest
    round (its stopped part) rather than adding one."""
    clock.stop()
    s = trainer.settings
    size = trainer.data_size or {}
    best = [h for h in trainer.history if h.get("best")]
    validation = None
    if best:
        validation = best[-1].get("val_objects") if best[-1].get("val_objects") is not None \
            else best[-1].get("val_metric")
    round_ = Round(
        number=trainer.rounds.next_number, finished=now_text(), seconds=round(clock.seconds, 1), steps=clock.steps,
        device=clock.device or str(trainer.device), images=size.get("train_images", 0),
        validation_images=size.get("validation_images", 0), objects=trainer.labelled_objects(),
        corrected=corrected, human_minutes=human_minutes, validation=validation,
        test={} if test is None else {"images": len(test.rows), **{k: float(v) for k, v in test.means.items()}},
        test_data=sorted(test_data), data=dict(data), seed=s.train.seed, settings=s.to_dict(),
        started_from=started_from, versions=package_versions())
    if continues and trainer.rounds.rounds:
        before = trainer.rounds.rounds[-1]
        round_.seconds += before.seconds
        round_.steps += before.steps
        round_.human_minutes = before.human_minutes
        round_.corrected, round_.started_from = before.corrected, before.started_from
    trainer.rounds.add(round_, trainer.trained_model().network.state_dict(), replace_last=continues)
    lines = []
    if test is not None:
        lines.append(test_line(test, s))
    key, words = headline(s)
    warning = trainer.rounds.regression(key, words)
    if warning:
        lines.append(f"Warning: {warning}")
    return round_, lines


def score_test_folder(predictor, images: Path, targets: Path,
                      channel_axis: int | None = None) -> tuple[EvaluationReport, list[str]]:
    """The model's scores on a folder of test images, as ``napari-mia evaluate`` gives them, and what was said
    about its files (skipped, rescaled)."""
    report, notes = None, []
    for ev in evaluate_folder(predictor, images, targets, None, channel_axis):
        if isinstance(ev, EvaluationReport):
            report = ev
        elif isinstance(ev, Note):
            notes.append(ev.text)
    return report, notes


def write_rounds_csv(path: Path, rounds: list[Round]) -> Path:
    """The rounds, one row each, with their test scores (``test_<score>`` columns)."""
    columns, rows = rounds_csv_rows(rounds)
    return write_csv(path, columns, rows)


def as_round(trainer, events, items: list, test: list | None = None, facts: dict | None = None,
             continues: bool = False):
    """A dock run's events, then the ``RoundDone`` it was recorded as (``finish_round``; None if no model).
    `items`: the (image, target, name, ...) items it trained and validated on; `test`: the test items, scored
    at the end (predicting them: in the worker); `facts`: ``finish_round``'s `corrected` and `human_minutes`."""
    clock = RoundClock()
    for ev in events:
        clock.see(ev)
        yield ev
    if trainer.model is None:
        yield None
        return
    report = None
    if test:
        predictor = predictor_for_model(trainer.trained_model())
        report = score_items(predictor, [(it[2], it[0], it[1], it[4]) for it in test])
    round_, lines = finish_round(trainer, clock, data_hashes([it[:3] for it in items]), report,
                                 data_hashes([it[:3] for it in test or []]).values(), continues=continues,
                                 **(facts or {}))
    warning = next((line.removeprefix("Warning: ") for line in lines if line.startswith("Warning: ")), "")
    yield RoundDone(round_, tuple(lines), warning)
