"""What the Train Model dock's status line says while a training runs: the session's events in words, with the
time the rest of the run takes."""

from __future__ import annotations

import time
from typing import Callable

from magicgui.widgets import Label

from ...engine.events import EpochEnd, IterationEnd, PlanMade, Preview, TrainingFinished, TrainingStarted
from .._messages import notify

# The status line says how long the rest of a run takes once this many steps after the first were timed (the
# first carries the start-up: the libraries, the data, the first batches).
TIMED_STEPS = 3
_clock = time.monotonic


def duration_text(seconds: float) -> str:
    """'about 40 seconds', 'about 1 minute', 'about 12 minutes', 'about 2 hours' (rounded as a person says it)."""
    if seconds < 55:
        return f"about {max(10, round(seconds / 10) * 10)} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"about {seconds / 3600:.1f} hours".replace(".0 ", " ")


class TrainingProgress:
    """`open_plot`: shows the Training Data dock when a run starts; `model_made`: the run has built its model
    (Predict works during the first run too); `preview`: a prediction made during the run."""

    def __init__(self, status: Label, device_label: Label, open_plot: Callable, model_made: Callable[[], None],
                 preview: Callable[[str, object], None]):
        self.status, self.device_label = status, device_label
        self._open_plot, self._model_made, self._preview = open_plot, model_made, preview
        self.epoch_text = ""  # the last epoch's result, kept in the status line during the next epoch
        self._run_size = (0, 0)
        self._first_step = None  # (time, iteration) of the run's first step: the estimate starts after it
        self._deadline = None

    def on_event(self, ev) -> None:
        if isinstance(ev, TrainingStarted):
            self._on_start(ev)
        elif isinstance(ev, PlanMade):
            self.status.value = f"Plan: {ev.message}"
            if ev.warning:
                _notify_plan(ev.warning)
        elif isinstance(ev, IterationEnd):
            epochs, steps = self._run_size
            of = f" of {steps}" if steps else ""
            where = f"epoch {ev.epoch} of {epochs}" if epochs else f"period {ev.epoch}"
            self.status.value = f"Training: step {ev.step}{of}, {where}, loss {ev.loss:.4f}" \
                                + self._time_left(ev) + (f". {self.epoch_text}" if self.epoch_text else "")
        elif isinstance(ev, EpochEnd):
            val = "" if ev.val_metric is None else f", validation {ev.val_metric:.3f}"
            self.epoch_text = f"Epoch {ev.epoch}: loss {ev.train_loss:.4f}{val}"
            self.status.value = self.epoch_text
        elif isinstance(ev, Preview):
            self._preview(ev.name, ev.prediction)
        elif isinstance(ev, TrainingFinished):
            self.status.value = {"completed": "Training finished.", "stopped": "Training stopped: Resume continues.",
                                 "time_limit": "Time limit reached."}[ev.reason] + f" ({ev.iteration} steps)"

    def _on_start(self, ev: TrainingStarted) -> None:
        self._open_plot()
        self._run_size = (ev.epochs, ev.steps_per_epoch)
        self._first_step = None
        # A time plan ends at its deadline, whatever the pace.
        self._deadline = _clock() + ev.minutes * 60 if ev.minutes else None
        start = f"epoch {ev.start_epoch + 1} of {ev.epochs} starting…" if ev.epochs else \
            f"{ev.minutes:g} minutes, timing the first steps to plan them…"
        self.status.value = f"Training: {start}" + (f" {ev.note}" if ev.note else "")
        if ev.warning:
            _notify_plan(ev.warning)
        self._model_made()
        self.device_label.value = f"Training on {ev.device}" + \
            (f" in mixed precision ({ev.precision})" if ev.precision else "") + \
            ("; the loaded model's normalisation statistics are kept" if ev.kept_normalization else "")

    def _time_left(self, ev) -> str:
        """', about N minutes left': the rest of the run at the pace measured since its first step, on this
        computer with what else runs on it ('' until TIMED_STEPS steps were timed)."""
        now, first = _clock(), self._first_step
        if first is None:
            self._first_step = (now, ev.iteration)
            return ""
        epochs, steps = self._run_size
        timed = ev.iteration - first[1]
        if timed < TIMED_STEPS or not (steps or self._deadline):
            return ""
        left = (epochs * steps - ev.iteration) * (now - first[0]) / timed if steps else float("inf")
        if self._deadline is not None:
            left = min(left, self._deadline - now)
        return f", {duration_text(left)} left" if left > 0 else ""


def _notify_plan(message: str) -> None:
    """A plan too short to learn, or cut before its first validation: said once, without stopping anything."""
    notify(message)
