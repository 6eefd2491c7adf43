"""How a run spends the time it is given: training steps, validations, and the learning-rate curve.

A user says "train for 5 minutes" (``TrainSettings.minutes``) and expects the best model 5 minutes can
give, on a laptop's CPU as on a GPU server. The number of steps that fit is only known once the first
steps are timed, so the plan is made then and re-made after every validation: a machine that slows down
gets shorter periods, never a run cut before its last validation. Without a time budget the epochs set
the plan, as in MIA; the plan then only estimates how long it will take and warns when it is too short
to learn anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# About this many validations over a time-budget run: enough to catch the best weights of a curve that
# goes up and down, few enough that they cost little.
VALIDATIONS = 10
# At most this share of the budget goes to validation; fewer validations, then fewer crops, when it would
# take more.
VALIDATION_SHARE = 0.15
# The first step pays one-off costs (memory allocation, oneDNN kernel choice, the first images read):
# it is left out of the speed, which the next PROBE_STEPS measure before the plan is made.
PROBE_STEPS = 3
# The learning rate rises over this share of the steps, then follows a cosine down to LR_FLOOR of itself
# at the end of the run: large steps early, small ones at the end, so the last weights are settled ones.
WARMUP = 0.05
LR_FLOOR = 0.02
# A plan of fewer steps than this learns next to nothing (a 3-image project of 10 epochs is 10 steps).
FEW_STEPS = 60
# Validation crops (the patch size) kept as a fixed sample across the run, so that every validation
# scores the same pixels: bounds for a time plan, and the cap of an epoch plan.
MIN_VALIDATION_CROPS, MAX_VALIDATION_CROPS = 8, 48
# A validation crop costs about this many training steps' worth of one patch (a forward pass without
# gradients is about a third of a training step; decoding objects adds to it). Replaced by the measured
# cost after the first validation.
CROP_COST = 0.6


def cosine_factor(progress: float, warmup: float = WARMUP, floor: float = LR_FLOOR) -> float:
    """The learning rate's multiplier at `progress` (0 = first step, 1 = last): linear warm-up, then cosine."""
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return max(p / warmup, 0.05)
    q = (p - warmup) / (1 - warmup) if warmup < 1 else 1.0
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * q))


@dataclass(frozen=True)
class PlanSummary:
    """What the plan says, for the user (``events.PlanMade``)."""

    timed: bool  # a time budget sets the plan (False: epochs do)
    seconds_per_step: float
    steps: int  # planned training steps of this run
    validate_every: int  # steps between validations (0: no validation)
    validations: int
    seconds: float  # the run's expected length, validations included
    budget: float | None  # the time budget in seconds, if any
    validation_crops: int  # crops each validation scores (0: whole images, or none)
    warning: str = ""
    epochs: int = 0  # an epoch plan's epochs

    def describe(self) -> str:
        """E.g. '5 minutes: about 190 steps, validation every 19 steps (on 24 crops).'"""
        steps = f"about {self.steps} steps" if self.timed else f"{self.steps} steps"
        every = "step" if self.validate_every == 1 else f"{self.validate_every} steps"
        val = (f", validation every {every}" if self.validations > 1 else
               ", validation at the end" if self.validations == 1 else ", no validation")
        if self.validations and self.validation_crops:
            val += f" (on {self.validation_crops} crops)"
        if self.timed:
            return f"{_minutes(self.budget)}: {steps}{val}."
        if self.epochs:
            per = self.steps // self.epochs
            steps = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} of {per} step{'s' if per != 1 else ''}"
            val = val.replace(f", validation every {every}", ", validated after each")
        return f"{steps}{val}: about {_minutes(self.seconds)} on this machine."


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "no time limit"
    m = seconds / 60
    if m < 1:
        return f"{max(1, round(seconds))} seconds"
    return f"{m:.0f} minute{'s' if round(m) != 1 else ''}" if m >= 2 or m.is_integer() else f"{m:.1f} minutes"


class Clock:
    """Times the run's steps and validations and decides, step by step, when to validate and when to end.

    Time plan (`budget` seconds, no epoch limit): each period between two validations is sized from the
    measured speed so that about ``VALIDATIONS`` validations, at most ``VALIDATION_SHARE`` of the budget,
    end on time, the last one just before the deadline. Epoch plan: the epochs' length, as set.
    """

    def __init__(self, budget: float | None, timed: bool, epochs: int, steps_per_epoch: int,
                 start_iteration: int = 0, has_validation: bool = True):
        self.budget, self.timed = budget, timed
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.has_validation = has_validation
        self.step_seconds: float | None = None
        self.validation_seconds: float | None = None
        self._timed_steps: list[float] = []
        self.trained_seconds = 0.0  # training steps only
        self.validations_done = 0
        # Learning-rate progress: re-anchored whenever the plan is re-made, so that it reaches 1 on the
        # planned last step whatever the speed did meanwhile.
        self._p0, self._it0, self._left = 0.0, start_iteration, None
        self.period_steps: int | None = None if timed else steps_per_epoch

    # -- speed ------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.step_seconds is not None

    def step_done(self, seconds: float) -> None:
        self.trained_seconds += seconds
        self._timed_steps.append(seconds)
        if len(self._timed_steps) > 1:  # the first step pays one-off costs
            recent = self._timed_steps[1:][-20:]
            self.step_seconds = sorted(recent)[len(recent) // 2]

    def validation_done(self, seconds: float) -> None:
        self.validations_done += 1
        v = self.validation_seconds
        self.validation_seconds = seconds if v is None else max(seconds, 0.5 * (v + seconds))

    def probed(self) -> bool:
        return len(self._timed_steps) >= PROBE_STEPS + 1

    def estimated_validation(self, crops: int, batch_size: int) -> float:
        if self.validation_seconds is not None:
            return self.validation_seconds
        if not self.has_validation or self.step_seconds is None:
            return 0.0
        return crops * CROP_COST * self.step_seconds / max(batch_size, 1)

    # -- the time plan ----------------------------------------------------------------------------
    def plan_period(self, remaining: float, iteration: int, val_seconds: float) -> int:
        """Steps of the next period between validations, from `remaining` seconds (time plan)."""
        step = self.step_seconds or 1.0
        n = self.validations_left(remaining, val_seconds)
        train_time = max(remaining - n * val_seconds, step)
        total = max(1, int(train_time / step))
        self.period_steps = max(1, total // n)
        self._reanchor(iteration, total)
        return self.period_steps

    def validations_left(self, remaining: float, val_seconds: float) -> int:
        # Without validation images the periods still end (an epoch in the record, an autosave).
        left = max(1, VALIDATIONS - self.validations_done)
        if val_seconds > 0:
            left = min(left, int(VALIDATION_SHARE * remaining / val_seconds))
        return max(1, left)

    def end_period_now(self, steps_in_period: int, remaining: float, val_seconds: float) -> bool:
        """Whether to validate now: the period's steps are done, or one more step would leave no time to."""
        if self.period_steps is not None and steps_in_period >= self.period_steps:
            return True
        step = self.step_seconds or 0.0
        return self.timed and steps_in_period > 0 and remaining < step + val_seconds

    def time_left_for_more(self, remaining: float, val_seconds: float) -> bool:
        """After a validation: whether another period (a few steps and a validation) still fits."""
        step = self.step_seconds or 0.0
        return remaining >= max(3 * step, 0.5 * step + val_seconds) + (val_seconds if self.has_validation else 0)

    # -- the learning rate ------------------------------------------------------------------------
    def _reanchor(self, iteration: int, total_left: int) -> None:
        self._p0 = self.progress(iteration)
        self._it0, self._left = iteration, max(total_left, 1)

    def set_total(self, total_steps: int) -> None:
        """Epoch plan: the run's steps are known from the start (a resumed run counts from its first step)."""
        self._p0, self._it0, self._left = 0.0, 0, max(total_steps, 1)

    def resume_from(self, progress: float, iteration: int) -> None:
        """Time plan resumed: the learning rate goes on from where it was, not from a new warm-up."""
        self._p0, self._it0 = progress, iteration

    def progress(self, iteration: int) -> float:
        """How far through the run's planned steps `iteration` (1-based, steps done) is, 0 to 1."""
        by_steps = self._p0 if self._left is None else self._p0 + (1 - self._p0) * (iteration - self._it0) / self._left
        by_time = (self.trained_seconds / self.budget) if (self.budget and not self.timed) else 0.0
        return min(max(by_steps, by_time, 0.0), 1.0)

    # -- what the user is told ----------------------------------------------------------------------
    def summary(self, iteration: int, crops: int, batch_size: int, elapsed: float) -> PlanSummary:
        step = self.step_seconds or 0.0
        val = self.estimated_validation(crops, batch_size)
        if self.timed:
            remaining = max((self.budget or 0) - elapsed, 0.0)
            n = self.validations_left(remaining, val) if self.has_validation else 0
            steps = iteration + max(0, int((remaining - n * val) / step)) if step else iteration
            every = self.period_steps or 0
            return PlanSummary(True, step, steps, every if n else 0, n, self.budget or 0.0, self.budget,
                               crops if n else 0, self.few_steps_warning(steps))
        steps = self.epochs * self.steps_per_epoch
        n = self.epochs if self.has_validation else 0
        seconds = steps * step + n * val
        cut = self.budget is not None and seconds > self.budget
        # Too few steps was said when the run started (TrainingStarted.warning); a time limit that cuts the
        # plan only shows once the speed is known.
        warning = ""
        if cut and n and self.steps_per_epoch * step + val > self.budget:
            warning = (f"The time limit ({_minutes(self.budget)}) ends the run before its first validation "
                       f"(an epoch is {self.steps_per_epoch} steps, about {_minutes(self.steps_per_epoch * step)}): "
                       "no best epoch will be kept. Give the time alone (no epochs) to fit the plan to it.")
        return PlanSummary(False, step, steps, self.steps_per_epoch if n else 0, n, seconds, self.budget,
                           crops if n else 0, warning, self.epochs)

    @staticmethod
    def few_steps_warning(steps: int) -> str:
        """A plan of too few steps to learn from, in plain words ("" if it has enough)."""
        if steps < FEW_STEPS:
            return (f"Only about {steps} training steps: far too few to learn (a model needs hundreds). "
                    "Train longer: give a training time, or more epochs or steps per epoch.")
        return ""
