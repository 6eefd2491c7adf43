"""`napari-mia train --minutes M` as a user types it: the plan is said, and the run fits the time.

The trainer's clock is the fake one of tests/engine/test_plan.py: seconds pass only in steps and validations,
so the figures do not depend on how busy the machine is.
"""

from __future__ import annotations

import csv

from napari_mia.cli import main
from tests.engine.test_plan import FakeClock


# Images in the shared `folders` (tests/cli/conftest.py).
DSB_IMAGES = 6


def test_minutes_alone_plans_the_run_and_says_so(folders, tmp_path, capsys, monkeypatch):
    clock = FakeClock(step=3.0, per_crop=0.2).install(monkeypatch)
    model = tmp_path / "nuclei.pt"
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
                 "--label-mode", "instances", "--minutes", "1", "--patch", "64", "--out", str(model)]) == 0
    err = capsys.readouterr().err
    assert "for 1 minutes, on cpu: the plan follows from the speed of the first steps" in err
    assert "Plan: 1 minute: about " in err and "validation every" in err
    assert "Time limit of 1 minutes reached" in err
    rows = list(csv.DictReader((tmp_path / "nuclei_record.csv").open()))
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) >= 3 and all(r["val_objects"] for r in epochs)
    assert 0.9 * 60 <= clock.t <= 60 + 3.0
    from napari_mia.engine.trainer import Trainer

    saved = Trainer.load(model).settings.train
    assert saved.minutes == 1 and saved.epochs == 0


def test_a_plan_too_short_is_warned_about_before_it_starts(folders, tmp_path, capsys, monkeypatch):
    FakeClock(step=0.5, per_crop=0.1).install(monkeypatch)
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
                 "--label-mode", "instances", "--epochs", "2", "--batch-size", "4",
                 "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "2 epochs of 2 steps" in err  # six 256 px images: 2 steps of 4 patches an epoch
    assert "Warning: Only about" in err and "training steps: far too few to learn" in err
