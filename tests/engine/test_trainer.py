import numpy as np
import pytest
import torch

from napari_mia.engine.errors import DataError, OutOfMemoryError, SettingsError
from napari_mia.engine.events import EpochEnd, IterationEnd, Preview, TrainingFinished, TrainingStarted
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings

# Tests of the run's bookkeeping (events, stop, resume, retrain, time limit) need no good model: 64 px patches
# cost under half of the default 96 px ones' time, in training and in each validation's BatchNorm settling.
PATCH64 = dict(patch_width=64, patch_height=64)


def _weights(t):
    return {k: v.detach().clone() for k, v in t.model.state_dict().items()}


def test_training_on_real_nuclei_improves_validation(trained, dsb_pairs):
    t, events = trained
    assert isinstance(events[0], TrainingStarted) and isinstance(events[-1], TrainingFinished)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    iters = [e for e in events if isinstance(e, IterationEnd)]
    assert len(epochs) == 4 and len(iters) == 40
    assert np.mean([e.loss for e in iters[-10:]]) < 0.6 * np.mean([e.loss for e in iters[:5]])
    assert epochs[-1].val_metric > 0.6  # foreground IoU on held-out images
    fresh = Trainer(t.settings)
    fresh._ensure_model()
    unseen = dsb_pairs[8:]  # it trained on the first 8
    assert t.evaluate(unseen)["metric"] > fresh.evaluate(unseen)["metric"] + 0.2
    with pytest.raises(SettingsError, match="no model to evaluate"):  # plain words, not an AttributeError
        Trainer(t.settings).evaluate(unseen)
    with pytest.raises(DataError, match="no validation data"):  # a loaded model has no run to take it from
        t.evaluate()


def test_events_arrive_in_order_with_counts(dsb_pairs, frozen):
    frozen(*[a for p in dsb_pairs[:4] for a in p[:2]])
    t = Trainer(small_settings(epochs=2, steps_per_epoch=3, **PATCH64))
    ev = list(t.train(dsb_pairs[:4]))
    kinds = [type(e).__name__ for e in ev]
    # The plan is said once the first steps are timed (engine.plan: one step's warm-up, then 3 measured).
    assert kinds == ["TrainingStarted"] + ["IterationEnd"] * 3 + ["EpochEnd"] + ["IterationEnd", "PlanMade"] + \
        ["IterationEnd"] * 2 + ["EpochEnd", "TrainingFinished"]
    assert [e.iteration for e in ev if isinstance(e, IterationEnd)] == [1, 2, 3, 4, 5, 6]
    assert ev[-1].reason == "completed"


def test_stop_keeps_weights_and_resume_continues_the_same_run(dsb_pairs):
    t = Trainer(small_settings(epochs=2, steps_per_epoch=4, **PATCH64))
    seen = []
    for e in t.train(dsb_pairs[:4]):
        seen.append(e)
        if isinstance(e, IterationEnd) and e.iteration == 2:
            t.stop()
    assert seen[-1] == TrainingFinished("stopped", 0, 2)
    w, opt_steps = _weights(t), t._run.optimizer.state_dict()["state"][0]["step"].item()
    assert opt_steps == 2 and t.can_resume
    rest = list(t.resume())
    assert rest[0].resumed
    assert [e.iteration for e in rest if isinstance(e, IterationEnd)] == [3, 4, 5, 6, 7, 8]
    assert [e.epoch for e in rest if isinstance(e, EpochEnd)] == [1, 2]
    assert t._run.optimizer.state_dict()["state"][0]["step"].item() == 8
    assert not torch.equal(w["decoder.blocks.0.conv1.0.weight"], _weights(t)["decoder.blocks.0.conv1.0.weight"])
    assert not t.can_resume
    with pytest.raises(SettingsError, match="no stopped training"):
        list(t.resume())


def test_stop_during_validation_redoes_it_on_resume(dsb_pairs):
    t = Trainer(small_settings(epochs=1, steps_per_epoch=2, **PATCH64))
    gen = t.train(dsb_pairs[:8])
    for e in gen:
        if isinstance(e, IterationEnd) and e.step == 2:
            break
    # The next `next()` runs validation; stop is requested from "another thread" meanwhile.
    orig = t._validate

    def stopping_validate(run, fn, **kw):
        t.stop()
        return orig(run, fn, **kw)

    t._validate = stopping_validate
    assert next(gen) == TrainingFinished("stopped", 0, 2)
    t._validate = orig
    rest = list(t.resume())
    assert [type(e).__name__ for e in rest] == ["TrainingStarted", "EpochEnd", "TrainingFinished"]


def test_retrain_keeps_weights_and_reset_starts_over(dsb_pairs):
    t = Trainer(small_settings(steps_per_epoch=2, **PATCH64))
    list(t.train(dsb_pairs[:4]))
    w = _weights(t)
    gen = t.train(dsb_pairs[4:8])
    next(gen)  # started: weights untouched so far
    assert all(torch.equal(w[k], v) for k, v in _weights(t).items())
    list(gen)
    t.reset()
    assert t.model is None and not t.can_resume
    t.settings.model.architecture = "FPN"
    list(t.train(dsb_pairs[:4]))
    assert type(t.model).__name__ == "FPN"
    t.settings.model.architecture = "Unet"
    with pytest.raises(SettingsError, match="Reset Model"):
        list(t.train(dsb_pairs[:4]))


def test_time_limit_stops_and_autosave_writes_each_epoch(dsb_pairs, tmp_path, monkeypatch):
    from napari_mia.engine import modelfile, trainer

    # The run's clock jumps past the limit once the first epoch has ended: the limit is then hit at a known
    # point, whatever the machine's speed (a real 3 s limit hit before or after the first epoch by chance).
    offset = [0.0]
    real = trainer._now
    monkeypatch.setattr(trainer, "_now", lambda: real() + offset[0])
    t = Trainer(small_settings(epochs=50, steps_per_epoch=2, **PATCH64))
    t.autosave_path = tmp_path / "auto.pt"
    ev = []
    for e in t.train(dsb_pairs[:4], max_seconds=600):
        ev.append(e)
        if isinstance(e, EpochEnd):
            offset[0] = 601.0
    assert ev[-1] == TrainingFinished("time_limit", 1, 2)
    assert [type(e).__name__ for e in ev].count("EpochEnd") == 1
    saved = modelfile.load(t.autosave_path)
    assert saved["epoch"] == 1 and "optimizer" in saved


@pytest.mark.parametrize("name,klass", [("sgd", "SGD"), ("adadelta", "Adadelta"), ("adamax", "Adamax"),
                                        ("adagrad", "Adagrad")])
def test_optimizer_setting_is_used(dsb_pairs, name, klass):
    t = Trainer(small_settings(optimizer=name, steps_per_epoch=1, val_split=0))
    list(t.train(dsb_pairs[:2]))
    assert type(t._run.optimizer).__name__ == klass


def test_step_schedule_lowers_the_learning_rate(dsb_pairs):
    t = Trainer(small_settings(lr_schedule="step", step_every=2, step_factor=0.1, epochs=3, steps_per_epoch=1,
                               val_split=0))
    lrs = [e.lr for e in t.train(dsb_pairs[:2]) if isinstance(e, EpochEnd)]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-4])


def test_plateau_schedule_reacts_to_a_stalled_validation_loss(dsb_pairs):
    t = Trainer(small_settings(lr_schedule="plateau", plateau_patience=1, plateau_factor=0.5, epochs=4,
                               steps_per_epoch=1))
    stalled = np.zeros((3, 3), np.int64)
    t._validate = lambda run, fn, **kw: (1.0, stalled)  # the validation loss never improves
    lrs = [e.lr for e in t.train(dsb_pairs[:4]) if isinstance(e, EpochEnd)]
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])


def test_class_weighting_reaches_the_loss(dsb_pairs):
    t = Trainer(small_settings(class_weighting="auto", steps_per_epoch=1, val_split=0))
    list(t.train(dsb_pairs[:2]))
    assert t._run.class_weights[1] > t._run.class_weights[0]
    t2 = Trainer(small_settings(class_weighting="manual", class_weights=[0.5, 4.0, 2.0], steps_per_epoch=1, val_split=0))
    list(t2.train(dsb_pairs[:2]))
    assert t2._run.class_weights.tolist() == [0.5, 4.0, 2.0]


def test_preview_every_n_epochs(dsb_pairs):
    t = Trainer(small_settings(preview_every=2, epochs=4, steps_per_epoch=1, val_split=0))
    t.preview_image = ("look", dsb_pairs[5][0])
    previews = [e for e in t.train(dsb_pairs[:2]) if isinstance(e, Preview)]
    assert [p.epoch for p in previews] == [2, 4] and previews[0].prediction.shape == dsb_pairs[5][0].shape


def test_classes_come_from_the_data_then_are_fixed(dsb_pairs):
    img, inst, _ = dsb_pairs[0]
    three = np.where(inst > 0, 1 + (inst % 3), 0).astype(np.uint8)  # classes 1..3
    t = Trainer(small_settings(steps_per_epoch=1, val_split=0, label_mode="classes"))
    with pytest.raises(DataError, match="choose the label mode 'instances'"):
        list(t.train([(img, np.where(inst > 0, inst + 60, 0))]))
    list(t.train([(img, three)]))
    assert t.settings.model.num_classes == 4
    with pytest.raises(DataError, match="class 5"):
        list(t.train([(img, np.where(inst > 0, 5, 0).astype(np.uint8))]))


def test_out_of_memory_is_explained_and_weights_kept(dsb_pairs, monkeypatch):
    t = Trainer(small_settings(steps_per_epoch=2, val_split=0))
    list(t.train(dsb_pairs[:2]))
    w = _weights(t)

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(t.model, "forward", boom)
    with pytest.raises(OutOfMemoryError, match="Lower the batch size"):
        list(t.train(dsb_pairs[:2]))
    assert all(torch.equal(w[k], v) for k, v in _weights(t).items())


@pytest.mark.parametrize("loss", ["focal", "kl_divergence", "dice"])
def test_other_losses_train(dsb_pairs, loss):
    # The loss on the same whole images after the first step and after eight more, not that of two batches of
    # random patches (whose difference depends on which patches were drawn).
    t = Trainer(small_settings(loss=loss, steps_per_epoch=1, val_split=0, metric="dice"))
    list(t.train(dsb_pairs[:4], val=[]))
    before = t.evaluate(dsb_pairs[:4])["loss"]
    t.settings.train.steps_per_epoch = 8
    its = [e for e in t.train(dsb_pairs[:4], val=[]) if isinstance(e, IterationEnd)]
    assert len(its) == 8
    after = t.evaluate(dsb_pairs[:4])["loss"]
    assert after < before, (before, after)
