"""Training in two processes (torchrun, gloo on the CPU) through the real CLI, on real DSB nuclei."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_mia.cli import main
from tests.conftest import DSB, _dsb_names

ROOT = Path(__file__).resolve().parents[2]
# 2 processes x batch 2 x 4 steps = the 16 patches of an epoch (steps_per_epoch 8 of batch 2 in one process).
COMMON = ["--label-mode", "instances", "--epochs", "2", "--patch", "128", "--batch-size", "2", "--val-split", "0.25",
          "--device", "cpu", "--quiet", "--seed", "3", "--lr", "0.003"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
    for name in _dsb_names(8):
        shutil.copy(DSB / "images" / f"{name}.tif", root / "images")
        shutil.copy(DSB / "masks" / f"{name}.tif", root / "masks")
    (root / "settings.yaml").write_text("train:\n  steps_per_epoch: 8\n")
    (root / "single.yaml").write_text("train:\n  steps_per_epoch: 4\n")
    return root


def _epoch_losses(record: Path) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(record.open()) if r["kind"] == "epoch"]


def _torchrun(out: Path, *args: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1",
           "KILL_AFTER_EPOCH": str(kill_after)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(ROOT / "tests" / "cli" / "ddp_worker.py"), str(out), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_train_one_model_with_the_same_weights_and_resume_after_a_kill(folders, tmp_path):
    from napari_mia.engine.trainer import Trainer

    out = tmp_path / "run"
    out.mkdir()
    model = out / "nuclei.pt"
    data = ["--images", str(folders / "images"), "--masks", str(folders / "masks")]
    # Killed after epoch 1 of 2, like a cluster job at its time limit.
    proc = _torchrun(out, "train", *data, "--out", str(model), "--config", str(folders / "settings.yaml"), *COMMON,
                     kill_after=1)
    assert proc.returncode != 0
    assert "Distributed training: 2 processes (gloo)" in proc.stderr
    assert proc.stderr.count("Training on ") == 1  # rank 0 alone speaks
    ranks = [json.loads((out / f"rank{r}_step1.json").read_text()) for r in (0, 1)]
    # Each process drew its own patches (different losses) but the averaged gradients kept the weights equal.
    assert ranks[0]["loss"] != ranks[1]["loss"]
    assert np.allclose(ranks[0]["sums"], ranks[1]["sums"], rtol=0, atol=1e-9)

    proc = _torchrun(out, "train", *data, "--out", str(model), "--resume", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("Resuming nuclei.pt after epoch 1 of 2") == 1
    assert proc.stdout.count("Model saved to") == 1
    # One model file and its record: the other process wrote nothing.
    assert sorted(p.name for p in out.iterdir()) == ["nuclei.pt", "nuclei_record.csv", "nuclei_rounds.csv",
                                                     "rank0_step1.json", "rank1_step1.json"]
    history = Trainer.load(model).history
    assert [h["epoch"] for h in history] == [1, 2]
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < losses[0], losses
    rows = list(csv.DictReader((out / "nuclei_record.csv").open()))
    assert sum(r["kind"] == "iteration" for r in rows) == 4  # the resumed epoch: 4 steps in each process

    # One process from the same seed on the same patches (steps of both processes' batches together).
    single = tmp_path / "single.pt"
    assert main(["train", *data, "--out", str(single), "--config", str(folders / "single.yaml"), *COMMON,
                 "--batch-size", "4"]) == 0
    alone = _epoch_losses(tmp_path / "single_record.csv")
    assert len(alone) == 2 and abs(alone[-1] - losses[-1]) < 0.15 * alone[0], (alone, losses)
