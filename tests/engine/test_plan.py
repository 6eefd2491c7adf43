"""Training for the time the user gives (engine.plan): the plan fits the budget, validates along the way, and
runs the learning rate down to its floor at the deadline.

The trainer reads one clock (``trainer._now``). Here it is a fake one that moves only when a training step or
a validation runs, by fixed amounts, so every figure below is the same on a fast or a busy machine.
"""

from __future__ import annotations

import math

import pytest

from napari_mia.engine import plan, trainer as trainer_module
from napari_mia.engine.events import EpochEnd, IterationEnd, PlanMade, TrainingFinished, TrainingStarted
from napari_mia.engine.settings import Settings
from napari_mia.engine.trainer import Trainer
from tests.conftest import load_dsb, small_settings

PATCH64 = dict(patch_width=64, patch_height=64)


class FakeClock:
    """Seconds that pass only in training steps (`step` each) and validations (`per_crop` per crop)."""

    def __init__(self, step: float, per_crop: float, slow_after: int | None = None, slow: float = 1.0):
        self.t, self.step, self.per_crop = 0.0, step, per_crop
        self.steps = 0
        self.slow_after, self.slow = slow_after, slow

    def __call__(self) -> float:
        return self.t

    def install(self, monkeypatch):
        monkeypatch.setattr(trainer_module, "_now", self)
        step, validate = Trainer._step, Trainer._validate
        clock = self

        def timed_step(self, *a, **k):
            out = step(self, *a, **k)
            clock.steps += 1
            late = clock.slow_after is not None and clock.steps > clock.slow_after
            clock.t += clock.step * (clock.slow if late else 1.0)
            return out

        def timed_validate(self, run, *a, **k):
            out = validate(self, run, *a, **k)
            clock.t += clock.per_crop * len(run.val_sample if run.val_sample is not None else run.val)
            return out

        monkeypatch.setattr(Trainer, "_step", timed_step)
        monkeypatch.setattr(Trainer, "_validate", timed_validate)
        return self


@pytest.fixture(scope="module")
def big_folder():
    """40 real DSB images: a folder whose 10% validation share holds more crops than a validation may score."""
    return load_dsb(40)


def _run(pairs, clock, monkeypatch, **settings):
    clock.install(monkeypatch)
    t = Trainer(small_settings(**{**PATCH64, "epochs": 0, "steps_per_epoch": 0, **settings}))
    return t, list(t.train(pairs))


def test_a_time_plan_on_a_big_folder_validates_along_the_way(big_folder, monkeypatch):
    # 60 "seconds" at 1.5 s a step: about 35 steps, validated about 10 times, not cut inside a first epoch.
    clock = FakeClock(step=1.5, per_crop=0.05)
    t, events = _run(big_folder, clock, monkeypatch, minutes=1.0, val_split=0.1)
    started, plan_made = events[0], [e for e in events if isinstance(e, PlanMade)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    iters = [e for e in events if isinstance(e, IterationEnd)]
    assert isinstance(started, TrainingStarted) and started.minutes == 1.0 and started.epochs == 0
    assert len(plan_made) == 1 and plan_made[0].timed
    assert plan_made[0].message.startswith("1 minute: about ")
    assert "validation every" in plan_made[0].message
    assert len(epochs) >= 3 and all(e.val_objects is not None for e in epochs)
    assert events[-1] == TrainingFinished("time_limit", len(epochs), len(iters))
    # Most of the time trains, and the run ends within the budget plus at most one step.
    assert clock.t <= 60 + 1.5 and clock.t >= 0.9 * 60
    assert sum(e.val_seconds for e in epochs) <= 0.16 * clock.t
    assert t.best.epoch is not None  # a best checkpoint was kept
    # The validations scored a fixed sample of crops, not the 4 whole validation images each time.
    assert t._run.val_sample and t._run.val_sample[0] not in t._run.val


def test_the_learning_rate_reaches_its_floor_at_the_deadline(dsb_pairs, monkeypatch):
    clock = FakeClock(step=2.0, per_crop=0.1)
    t, events = _run(dsb_pairs[:4], clock, monkeypatch, minutes=1.0, learning_rate=1e-3)
    lrs = [e.lr for e in events if isinstance(e, IterationEnd)]
    assert lrs[0] < 0.2e-3  # warming up
    assert max(lrs) == pytest.approx(1e-3, rel=0.05)
    assert lrs[-1] == pytest.approx(plan.LR_FLOOR * 1e-3, rel=0.25)
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # then only down


def test_a_tiny_folder_uses_its_time(dsb_pairs, monkeypatch):
    # Three images (one validates): the epochs they would make are a step each; the time plan trains throughout.
    clock = FakeClock(step=4.0, per_crop=0.2)
    t, events = _run(dsb_pairs[:3], clock, monkeypatch, minutes=2.0, val_split=0.3)
    iters = [e for e in events if isinstance(e, IterationEnd)]
    assert clock.t >= 0.9 * 120
    assert len(iters) >= 0.8 * 120 / 4.0
    assert len([e for e in events if isinstance(e, EpochEnd)]) >= 5


def test_the_plan_adapts_when_the_machine_slows_down(dsb_pairs, monkeypatch):
    # Steps take 3x longer after the 10th: the periods shrink, and the run still ends validated on time.
    clock = FakeClock(step=1.0, per_crop=0.1, slow_after=10, slow=3.0)
    t, events = _run(dsb_pairs[:4], clock, monkeypatch, minutes=1.0)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert events[-1].reason == "time_limit" and isinstance(events[-2], EpochEnd)
    assert clock.t <= 60 + 3.0
    assert len(epochs) >= 3


def test_the_plan_is_said_and_a_plan_too_short_is_warned_about(dsb_pairs, monkeypatch):
    clock = FakeClock(step=0.5, per_crop=0.1)
    # An epoch plan of 3 small images: 5 epochs of 1 step.
    t, events = _run(dsb_pairs[:3], clock, monkeypatch, epochs=5, steps_per_epoch=1, minutes=0)
    started = events[0]
    assert "Only about 5 training steps" in started.warning
    made = [e for e in events if isinstance(e, PlanMade)]
    assert made and not made[0].timed and made[0].message.startswith("5 epochs of 1 step, validated after each")
    assert "on this machine" in made[0].message
    # An epoch plan cut by a time limit before its first validation.
    clock = FakeClock(step=0.5, per_crop=0.1)
    t, events = _run(dsb_pairs[:6], clock, monkeypatch, epochs=3, steps_per_epoch=200, minutes=0.5)
    made = [e for e in events if isinstance(e, PlanMade)]
    assert made and "before its first validation" in made[0].warning


def test_a_tied_validation_score_goes_to_the_lower_loss():
    from napari_mia.engine.trainer import _best_key

    assert _best_key(1.0, 0.2) > _best_key(1.0, 0.3)  # the same saturated score: the later, better-fitting epoch
    assert _best_key(0.9, 0.5) > _best_key(0.8, 0.1)  # the score decides first
    assert _best_key(0.5, None) > _best_key(None, 0.1)


def test_cosine_factor_warms_up_then_decays_to_the_floor():
    f = [plan.cosine_factor(p / 100) for p in range(101)]
    assert f[0] < 0.1 and f[5] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(plan.LR_FLOOR)
    assert all(a >= b for a, b in zip(f[5:], f[6:]))
    assert not any(math.isnan(x) for x in f)


def test_settings_need_epochs_or_a_time():
    from napari_mia.engine.errors import SettingsError

    with pytest.raises(SettingsError, match="training time"):
        Settings().update(epochs=0)
    assert Settings().update(epochs=0, minutes=2).train.epochs == 0
