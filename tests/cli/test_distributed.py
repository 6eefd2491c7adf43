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
COMMON = ["--label-mode", "instances", "--epochs", "4", "--patch", "128", "--batch-size", "2", "--val-split", "0.25",
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


def test_two_processes_train_one_model_with_the_same_weights(folders, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    model = out / "nuclei.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    args = ["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out", str(model),
            "--config", str(folders / "settings.yaml"), *COMMON]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(ROOT / "tests" / "cli" / "ddp_worker.py"), str(out), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Distributed training: 2 processes (gloo)" in proc.stderr
    # Rank 0 alone speaks: one "Training on" line, one "Model saved".
    assert proc.stderr.count("Training on ") == 1 and proc.stdout.count("Model saved to") == 1
    assert sorted(p.name for p in out.iterdir()) == ["nuclei.pt", "nuclei_record.csv", "rank0_step1.json",
                                                     "rank1_step1.json"]
    ranks = [json.loads((out / f"rank{r}_step1.json").read_text()) for r in (0, 1)]
    # Each process drew its own patches (different losses) but the averaged gradients kept the weights equal.
    assert ranks[0]["loss"] != ranks[1]["loss"]
    assert np.allclose(ranks[0]["sums"], ranks[1]["sums"], rtol=0, atol=1e-9)
    losses = _epoch_losses(out / "nuclei_record.csv")
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    rows = list(csv.DictReader((out / "nuclei_record.csv").open()))
    assert sum(r["kind"] == "iteration" for r in rows) == 16  # 4 epochs of 4 steps in each process

    # One process from the same seed on the same patches (steps of both processes' batches together).
    single = tmp_path / "single.pt"
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out",
                 str(single), "--config", str(folders / "single.yaml"), *COMMON, "--batch-size", "4"]) == 0
    alone = _epoch_losses(tmp_path / "single_record.csv")
    assert abs(alone[-1] - losses[-1]) < 0.15 * alone[0], (alone, losses)
