"""Hardware use (engine.accel): mixed precision, data-loading workers, each process's share of the patches."""

import numpy as np
import torch

from napari_mia.engine import accel
from napari_mia.engine.events import IterationEnd, TrainingStarted
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings


def test_precision_choices_per_device(monkeypatch):
    cpu = torch.device("cpu")
    assert accel.autocast_dtype(cpu, "auto") is None  # a laptop's results do not change
    assert accel.autocast_dtype(cpu, "off") is None
    monkeypatch.setattr(accel, "cpu_bf16_native", lambda: True)
    assert accel.autocast_dtype(cpu, "on") is torch.bfloat16 and accel.precision_note(cpu, "on") == ""
    # Without bfloat16 instructions a CPU's bfloat16 convolutions are several times slower than float32
    # (benchmarks/real_step.py): it stays in float32.
    monkeypatch.setattr(accel, "cpu_bf16_native", lambda: False)
    assert accel.autocast_dtype(cpu, "on") is None and "Training in float32" in accel.precision_note(cpu, "on")
    assert accel.precision_note(cpu, "auto") == accel.precision_note(cpu, "off") == ""
    assert not accel.grad_scaler(cpu, torch.bfloat16).is_enabled()  # bfloat16 needs no loss scaling
    assert accel.memory_format(cpu, torch.bfloat16) is torch.contiguous_format
    assert accel.loader_workers(-1, cpu) == 0 and accel.loader_workers(2, cpu) == 2


def test_mixed_precision_trains_and_predicts_on_the_cpu(dsb_pairs, monkeypatch):
    monkeypatch.setattr(accel, "cpu_bf16_native", lambda: True)  # a CPU with bfloat16 instructions
    # bfloat16 is emulated, and slow, on CPUs without it: small patches, no validation, a small image to predict.
    t = Trainer(small_settings(steps_per_epoch=2, precision="on", patch_width=64, patch_height=64, val_split=0))
    events = list(t.train(dsb_pairs[:4]))
    assert next(e for e in events if isinstance(e, TrainingStarted)).precision == "bf16"
    losses = [e.loss for e in events if isinstance(e, IterationEnd)]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert next(t.model.parameters()).dtype == torch.float32  # autocast computes in bf16, keeps fp32 weights
    image = dsb_pairs[5][0][:96, :96]
    labels = t.predictor().predict(image)
    assert labels.shape == image.shape[:2]


def test_precision_on_keeps_a_cpu_without_bfloat16_in_float32_and_says_so(dsb_pairs, monkeypatch):
    monkeypatch.setattr(accel, "cpu_bf16_native", lambda: False)
    t = Trainer(small_settings(steps_per_epoch=1, precision="on", patch_width=64, patch_height=64, val_split=0))
    events = list(t.train(dsb_pairs[:2]))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert started.precision == "" and "Mixed precision is off on this CPU" in started.note
    assert t._amp is None and t.settings.train.precision == "on"  # the setting stays: another machine may use it


def _batches(settings, pairs):
    t = Trainer(settings)
    gen = t.train(pairs)
    next(gen)  # TrainingStarted: the run and its loader exist
    loader = t._loader()
    t._run.sampler.set_epoch(0)
    return [x for x, _, _ in loader]


def test_workers_give_the_same_patches_as_the_training_process(dsb_pairs):
    pairs = dsb_pairs[:4]
    alone = _batches(small_settings(steps_per_epoch=3, num_workers=0), pairs)
    workers = _batches(small_settings(steps_per_epoch=3, num_workers=2), pairs)
    assert len(alone) == len(workers) == 3
    assert all(torch.equal(a, b) for a, b in zip(alone, workers))


def test_processes_share_out_the_epochs_patches():
    class Numbers:
        def __init__(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 10

        def __getitem__(self, i):
            return (self.epoch, i)

    alone = accel.EpochItems(Numbers, batch_size=2)
    shares = [accel.EpochItems(Numbers, batch_size=2, rank=r, world=2) for r in (0, 1)]
    assert len(alone) == 10 and [len(s) for s in shares] == [6, 6]  # whole batches of 2 in each process
    drawn = [s[(1, i)] for s in shares for i in range(len(s))]
    assert sorted(set(drawn)) == [alone[(1, i)] for i in range(10)]  # every item of the epoch, its own epoch's
    assert len(drawn) - len(set(drawn)) == 2  # padding to whole batches repeats the first items
