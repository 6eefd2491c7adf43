"""Run under torchrun by test_distributed.py: the real CLI, with the parameters' checksum written after the first
training step of each process (what the test compares between ranks)."""

import json
import os
import sys
from pathlib import Path

import torch

from napari_mia import cli
from napari_mia.engine.trainer import Trainer

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
original = Trainer._step


def step_and_record(self, *args, **kw):
    result = original(self, *args, **kw)
    if self._run.iteration == 0:  # the counter moves after _step returns: this was the first step
        with torch.no_grad():
            sums = [float(p.double().sum()) for p in self.model.parameters()]
        (out / f"rank{rank}_step1.json").write_text(json.dumps({"sums": sums, "loss": result[0]}))
    return result


Trainer._step = step_and_record
sys.exit(cli.main(sys.argv[2:]))
