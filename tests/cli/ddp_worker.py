"""Run under torchrun by test_distributed.py: the real CLI, instrumented by the test.

- The parameters' checksum after the first training step of each process goes to OUT/rank<r>_step1.json
  (the test compares the processes).
- With KILL_AFTER_EPOCH=k every process dies after epoch k (once rank 0's autosave is written), as a job killed
  by a cluster's time limit would; ``train --resume`` then continues it.
"""

import json
import os
import sys
from pathlib import Path

import torch

from napari_mia import cli
from napari_mia.engine.trainer import Trainer

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
kill_after = int(os.environ.get("KILL_AFTER_EPOCH", "0"))
step, end_epoch = Trainer._step, Trainer._end_epoch


def step_and_record(self, *args, **kw):
    result = step(self, *args, **kw)
    if self._run.iteration == 0:  # the counter moves after _step returns: this was the first step
        with torch.no_grad():
            sums = [float(p.double().sum()) for p in self.model.parameters()]
        (out / f"rank{rank}_step1.json").write_text(json.dumps({"sums": sums, "loss": result[0]}))
    return result


def end_epoch_and_die(self, run, val):
    yield from end_epoch(self, run, val)  # rank 0 autosaves in here
    if run.epoch == kill_after:
        torch.distributed.barrier()  # no process dies before the autosave is complete
        sys.stderr.flush()
        os._exit(3)


Trainer._step = step_and_record
Trainer._end_epoch = end_epoch_and_die
sys.exit(cli.main(sys.argv[2:]))
