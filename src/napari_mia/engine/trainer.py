"""The trainer: a generator of progress events.

    trainer = Trainer(settings)
    for event in trainer.train(pairs):     # a new run from the current weights
        ...                                 # trainer.stop() from any thread
    for event in trainer.resume():         # the stopped run, exactly where it was
        ...
    trainer.reset()                        # forget the weights

Everything the widgets and the CLI show comes from these events; nothing
here knows about Qt or napari.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from . import accel, applications, checkpoint, distributed
from .augment import build_augment
from .checkpoint import BestWeights
from .data import split_train_val, too_few_for_validation
from .samples import SampleSource, check_known_background, object_diameter, to_object_size
from .task_data import sources_for_task, validation_items
from .errors import DataError, OutOfMemoryError, SettingsError
from .events import EpochEnd, Event, IterationEnd, PlanMade, Preview, TrainingFinished, TrainingStarted
from .metrics import confusion, score
from .models import model_key, pick_device
from .optimization import (
    SETTLE_EPOCH, Run as _Run, build_optimizer, build_scheduler, class_weight_tensor, norm_layers, settle_batchnorm,
)
from .plan import CROP_COST, MAX_VALIDATION_CROPS, MIN_VALIDATION_CROPS, VALIDATION_SHARE, VALIDATIONS, Clock, \
    cosine_factor
from .predictor import Predictor
from .settings import Settings
from .targets import IGNORE
from .trained_model import TrainedModel, build_model, damaged


def _now() -> float:
    """The trainer's clock (seconds): the plan, the deadline and the timings read it, so tests can replace it."""
    return time.perf_counter()


def _best_key(score: float | None, val_loss: float | None) -> tuple:
    """How epochs rank for the best weights: the score, then the lower validation loss."""
    return (float("-inf") if score is None else score, float("-inf") if val_loss is None else -val_loss)


def _scaled_note(sources, diameter: float) -> str:
    """What bringing the images to one object size did, in a sentence ("" when nothing was scaled)."""
    scales = [s.scale for s in sources if getattr(s, "scale", 1.0) != 1.0]
    if not scales:
        return ""
    low, high = min(scales), max(scales)
    span = f"by {low:.2g}" if math.isclose(low, high, rel_tol=0.05) else f"by {low:.2g} to {high:.2g}"
    return (f"{len(scales)} of {len(sources)} images scaled {span} so that their objects are about "
            f"{diameter:.0f} px across, the size the model learns.")


class Trainer:
    def __init__(self, settings: Settings | None = None):
        self.settings = (settings or Settings()).copy()
        self.model = None
        self.device = None
        self._key: tuple | None = None
        self._run: _Run | None = None
        self._stop = threading.Event()
        # The latest weights' epoch results, for the record and the model file.
        self.history: list[dict] = []
        # A model file rewritten after every epoch, so a crash loses one epoch at most.
        self.autosave_path: Path | None = None
        self._saved_run: dict | None = None  # an autosaved run's state, after `load`
        self._loaded_data_size: dict | None = None  # the loaded file's (``data_size``)
        # (name, image) predicted every `preview_every` epochs.
        self.preview_image: tuple[str, np.ndarray] | None = None
        # BatchNorm running statistics lag behind the weights after optimizer steps
        # (momentum 0.1: after 5 steps they are still 60% their initial values), so the
        # eval-mode network predicts something else than the training curve shows.
        self._norm_stale = False
        self._note = ""  # TrainingStarted.note of the current run
        # Held during a training step and while copying the model, so a snapshot
        # taken from another thread never sees a half-updated model.
        self._weights_lock = threading.Lock()
        self.best = BestWeights()
        # How the hardware is used (engine.accel), set with the device: autocast dtype (None = float32), the
        # tensors' memory layout, and the network the training step calls (DistributedDataParallel around
        # the model when several processes train together, ``group``; the model itself otherwise).
        self._amp = None
        self._format = None
        self._net = None
        self.group: distributed.Group | None = None

    # -- state ------------------------------------------------------------
    @property
    def app(self) -> applications.Application:
        """The application the model is trained for: targets, loss head, score."""
        return applications.for_settings(self.settings)

    @property
    def data_size(self) -> dict | None:
        """How many images the weights were trained and validated on (the last run's, else the loaded file's)."""
        if self._run is not None and self._run.train:
            return {"train_images": len(self._run.train), "validation_images": len(self._run.val)}
        return self._loaded_data_size

    @property
    def can_resume(self) -> bool:
        run = self._run
        return run is not None and not run.done and (run.timed or run.epoch < run.epochs)

    @property
    def saved_run(self) -> dict | None:
        """The state of the run a loaded file was autosaved in (optimizer, epoch, iteration), or None."""
        return self._saved_run

    def calibrate_detection(self) -> float:
        """Detection: set the peak threshold from the run's training images (never the held-out ones)."""
        if self._run is None or self.model is None:
            return self.app.calibrate(None, [])
        return self.app.calibrate(self.trained_model(), list(self._run.train))

    @property
    def validation_sources(self) -> list:
        """The current run's held-out images."""
        return list(self._run.val) if self._run is not None else []

    @property
    def has_validation(self) -> bool:
        return self._run is not None and bool(self._run.val)

    def stop(self) -> None:
        """Ask the running loop to stop after the current step (thread-safe)."""
        self._stop.set()

    def reset(self) -> None:
        """Forget the weights and any stopped run: the next train starts over."""
        self.model, self._key, self._run, self.history = None, None, None, []
        self._norm_stale = False

    def _ensure_model(self) -> None:
        import torch

        key = model_key(self.settings.model)
        if self.model is not None and key != self._key:
            raise SettingsError(
                "The architecture, backbone, channels or classes changed since the model was built. "
                "Press Reset Model to start a new model with these settings (the current weights are lost)."
            )
        self.group = distributed.current()
        self.device = pick_device(distributed.device_for(self.group, self.settings.train.device))
        if self.model is None:
            torch.manual_seed(self.settings.train.seed)
            self.model = build_model(self.settings.model)
            self._key = key
        self._place()

    def _place(self) -> None:
        """The model on the device, in the precision and memory layout the settings ask for there."""
        self._amp = accel.autocast_dtype(self.device, self.settings.train.precision)
        self._format = accel.memory_format(self.device, self._amp)
        self.model.to(self.device, memory_format=self._format)
        net = self._net
        if self.group is None:
            self._net = self.model
        elif net is None or getattr(net, "module", None) is not self.model:
            from torch.nn.parallel import DistributedDataParallel

            # Every process built the same weights from the same seed; DDP also copies rank 0's to the others.
            self._net = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                if self.device.type == "cuda" else None)

    # -- data ---------------------------------------------------------------
    def _sources(self, data) -> list[SampleSource]:
        if data and isinstance(data[0], SampleSource):
            return list(data)
        return sources_for_task(data, self.settings)

    def _check_classes(self, sources: Sequence[SampleSource]) -> None:
        self.app.check_classes(self.settings, sources, new_model=self.model is None)

    # -- public loops ---------------------------------------------------------
    def train(self, data, val=None, max_seconds: float | None = None,
              continue_saved: bool = False) -> Iterator[Event]:
        """Start a new run on `data` from the current weights (new ones if none).

        `data`: (image, labels[, name]) array tuples or ``SampleSource``s;
        detection: (image, points[, name]); classification: (image, class
        ids[, name]), see ``data.sources_from_classes``.
        `val`: held-out data of the same kind; None splits `data` by the
        validation-split setting. `continue_saved`: after `load` of an
        autosaved file, continue its run (optimizer state, epochs done) instead
        of starting a new one.
        """
        sources = self._sources(data)
        val_sources = None if val is None else (self._sources(val) if len(val) else [])
        self._note = ""
        # What the model learns objects to look like, in its own pixels (Predictor's object diameter): a model
        # trained on keeps its own, and new images come to it.
        diameter = object_diameter(sources)
        known = self.settings.data.object_diameter if self.model is not None else None
        if diameter is not None and self.settings.data.same_object_size:
            diameter = known or diameter
            sources = to_object_size(sources, diameter)
            val_sources = None if val_sources is None else to_object_size(val_sources, diameter)
            self._note = _scaled_note(sources, diameter)
        if diameter is not None:
            self.settings.data.object_diameter = round(diameter, 2)
        if val_sources is None:
            train, val_sources = split_train_val(sources, self.settings.train.val_split, self.settings.train.seed)
            self._note = " ".join(x for x in (self._note, too_few_for_validation(len(sources),
                                                                                 self.settings.train.val_split)) if x)
        else:
            train = sources
        self._check_classes(train + val_sources)
        check_known_background(train + val_sources)
        self._ensure_model()
        optimizer = build_optimizer(self.model, self.settings.train)
        scheduler = build_scheduler(optimizer, self.settings.train)
        self._run = _Run(train=train, val=val_sources, optimizer=optimizer, scheduler=scheduler,
                         class_weights=class_weight_tensor(self.settings, train, self.device), epochs=self.settings.train.epochs,
                         scaler=accel.grad_scaler(self.device, self._amp))
        saved = self._saved_run
        if continue_saved:
            if not saved or saved.get("optimizer") is None:
                raise SettingsError("This model file holds no interrupted training to continue (it was saved "
                                    "without the optimizer's state). Train without --resume.")
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None and saved.get("scheduler") is not None:
                scheduler.load_state_dict(saved["scheduler"])
            self._run.epoch = min(int(saved.get("epoch", 0)), self._run.epochs)
            self._run.iteration = int(saved.get("iteration", 0))
            self._run.best_key = max([_best_key(h.get("val_objects") if h.get("val_objects") is not None
                                                else h["val_metric"], h.get("val_loss"))
                                      for h in self.history if h.get("val_metric") is not None],
                                     default=self._run.best_key)
        else:
            self.best.clear()  # a new run: its own best epoch
        self._saved_run = None
        yield from self._loop(max_seconds, resumed=continue_saved)

    def resume(self, max_seconds: float | None = None) -> Iterator[Event]:
        """Continue the stopped run: same data, optimizer state and epoch."""
        if not self.can_resume:
            raise SettingsError("There is no stopped training to resume. Press Start Training.")
        self._place()
        yield from self._loop(max_seconds, resumed=True)

    def _budget(self, max_seconds: float | None, run: _Run) -> float | None:
        """The run's time in seconds: the training time setting and/or the caller's limit, whichever is less;
        a resumed time plan gets what is left of its budget."""
        t = self.settings.train
        limits = [x for x in (t.minutes * 60 if t.minutes > 0 else None, max_seconds) if x]
        if not limits:
            return None
        budget = min(limits)
        if run.timed and run.spent:
            budget = max(budget - run.spent, 10.0)
        return budget

    def _loop(self, max_seconds, resumed: bool) -> Iterator[Event]:
        run, t = self._run, self.settings.train
        self._stop.clear()
        budget = self._budget(max_seconds, run)
        started = _now()
        run.deadline = None if budget is None else started + budget
        if run.epochs == 0 and budget is None:
            raise SettingsError("Give a number of epochs, or a training time to train as many as fit in it.")
        run.timed = budget is not None and run.epochs == 0
        steps = 0 if run.timed else len(self._loader())
        self._loader()
        clock = run.clock = Clock(budget, run.timed, run.epochs, steps, run.iteration, has_validation=bool(run.val))
        if run.timed:
            clock.resume_from(run.lr_progress, run.iteration)
        else:
            clock.set_total(run.epochs * steps)
            if run.val_sample is None:
                run.val_sample = self._validation_sample(run, MAX_VALIDATION_CROPS)
        left = (run.epochs - run.epoch) * steps
        warning = clock.few_steps_warning(left) if not run.timed else ""
        g = self.group
        note = " ".join(filter(None, (self._note, accel.precision_note(self.device, t.precision))))
        yield TrainingStarted(run.epochs, steps, str(self.device), len(run.train), len(run.val), run.epoch, resumed,
                              note=note, precision=accel.precision_name(self._amp),
                              processes=g.world if g else 1, backend=g.backend if g else "",
                              minutes=(budget or 0.0) / 60, warning=warning)
        head = self.app.head(self.settings)
        n_cls = head.n_cm
        while run.timed or run.epoch < run.epochs:
            if not run.in_validation:
                if run.batches is None:
                    loader = self._loader()
                    run.sampler.set_epoch(run.epoch, unbounded=run.timed)
                    run.batches = iter(loader)
                    run.step, run.loss_sum, run.cm, run.epoch_seconds = 0, 0.0, np.zeros((n_cls, n_cls), np.int64), 0.0
                self.model.train()
                for x, y, w in run.batches:
                    self._schedule_lr(run)
                    t0 = _now()
                    loss, cm = self._step(x, y, w, head, run)
                    seconds = _now() - t0
                    run.epoch_seconds += seconds
                    run.spent += seconds
                    clock.step_done(seconds)
                    run.step += 1
                    run.iteration += 1
                    run.loss_sum += loss
                    run.cm += cm
                    yield IterationEnd(run.epoch + 1, run.step, run.iteration, loss, self._score(cm),
                                       self._lr(run))
                    reason = self._should_stop(run)
                    if reason:
                        yield TrainingFinished(reason, run.epoch, run.iteration)
                        return
                    if not run.planned and clock.probed():
                        yield self._make_plan(run, started)
                    if run.timed and self._period_over(run):
                        break
                run.in_validation = True
            t0 = _now()
            if run.val:
                if run.val_sample is None:  # a period ended before the plan was made
                    run.val_sample = self._validation_sample(run, MIN_VALIDATION_CROPS)
                self.settle_normalization()  # the validation curve scores what Predict will give
            val = self._validate(run, head, together=True)
            if val is not None:
                objects = self._validation_objects(run)
                val = None if objects == "stopped" else (*val, objects)
            if val is None:  # stopped during validation: redone on resume
                yield TrainingFinished(self._should_stop(run) or "stopped", run.epoch, run.iteration)
                return
            val_seconds = run.val_seconds = _now() - t0
            run.epoch_seconds += val_seconds
            run.spent += val_seconds
            if run.val:
                clock.validation_done(val_seconds)
            yield from self._end_epoch(run, val)
            self._agree(run)
            reason = self._should_stop(run)
            if reason and (run.timed or run.epoch < run.epochs):
                yield TrainingFinished(reason, run.epoch, run.iteration)
                return
            if run.timed and not self._another_period(run):
                run.done = True
                run.loader = run.sampler = run.batches = None
                yield TrainingFinished("time_limit", run.epoch, run.iteration)
                return
        # Nothing left to resume: the loader's workers can go.
        run.loader = run.sampler = run.batches = None
        yield TrainingFinished("completed", run.epoch, run.iteration)

    # -- the plan (engine.plan) ------------------------------------------------------------------
    def _validation_sample(self, run: _Run, max_crops: int) -> list:
        if not run.val:
            return []
        return self.app.validation_sample(run.val, self.settings, max_crops, self.settings.train.seed)

    def _validation_patches(self, run: _Run) -> int:
        """Patch-sized pieces each validation scores (its cost, before one was timed)."""
        d = self.settings.data
        sample = run.val_sample if run.val_sample is not None else run.val
        return sum(-(-s.shape[0] // d.patch_height) * -(-s.shape[1] // d.patch_width) for s in sample)

    def _validation_seconds(self, run: _Run) -> float:
        if not run.val:
            return 0.0
        return run.clock.estimated_validation(self._validation_patches(run), self.settings.train.batch_size)

    def _make_plan(self, run: _Run, started: float) -> PlanMade:
        """After the first steps are timed: size the validation sample and the periods, and say the plan."""
        clock, t = run.clock, self.settings.train
        if run.timed:
            per_crop = CROP_COST * clock.step_seconds / max(t.batch_size, 1)
            target = VALIDATION_SHARE * clock.budget / VALIDATIONS
            crops = int(min(max(target / max(per_crop, 1e-6), MIN_VALIDATION_CROPS), MAX_VALIDATION_CROPS))
            if self.group is not None:  # every process scores the same sample
                crops = int(distributed.broadcast(crops, self.device))
            run.val_sample = self._validation_sample(run, crops)
            clock.plan_period(run.deadline - _now(), run.iteration, self._validation_seconds(run))
        run.planned = True
        whole = not run.val_sample or run.val_sample[0] in run.val
        summary = clock.summary(run.iteration, self._validation_patches(run), t.batch_size,
                                _now() - started)
        crops = 0 if whole else len(run.val_sample)
        return PlanMade(summary.describe().replace(f"(on {summary.validation_crops} crops)",
                                                   f"(on {crops} crops)" if crops else "(on whole images)"),
                        summary.steps, summary.validate_every, summary.seconds_per_step, summary.seconds,
                        summary.timed, summary.warning, crops)

    def _period_over(self, run: _Run) -> bool:
        """Time plan: whether this period ends now (its steps are done, or the time left needs a validation)."""
        end = run.clock.end_period_now(run.step, run.deadline - _now(), self._validation_seconds(run))
        if self.group is not None:  # the processes validate together
            end = bool(distributed.all_max([float(end)], self.device)[0])
        return end

    def _another_period(self, run: _Run) -> bool:
        """Time plan, after a validation: whether another period fits before the deadline; if so, plan it."""
        remaining = run.deadline - _now()
        val_seconds = self._validation_seconds(run)
        more = run.clock.time_left_for_more(remaining, val_seconds)
        if self.group is not None:
            more = not distributed.all_max([float(not more)], self.device)[0]
        if more and run.planned:
            run.clock.plan_period(remaining, run.iteration, val_seconds)
        return more

    def _schedule_lr(self, run: _Run) -> None:
        """The cosine schedule: the learning rate for the step about to be taken, from the plan's progress."""
        if self.settings.train.lr_schedule != "cosine" or run.optimizer is None:
            return
        run.lr_progress = run.clock.progress(run.iteration + 1)
        lr = self.settings.train.learning_rate * cosine_factor(run.lr_progress)
        for group in run.optimizer.param_groups:
            group["lr"] = lr

    def _should_stop(self, run: _Run) -> str | None:
        if self.group is not None:  # decided together (``_agree``): a process leaving alone would hang the others
            return run.stop_reason
        if self._stop.is_set():
            return "stopped"
        # A time plan ends itself, after a last validation, at its deadline (``_another_period``).
        if not run.timed and run.deadline is not None and _now() >= run.deadline:
            return "time_limit"
        return None

    def _dataset(self, epoch: int):
        return self.app.dataset(self._run.train, self.settings,
                                build_augment(self.settings.augment, skip=self.app.augment_skip),
                                epoch_seed=epoch)

    def _loader(self):
        """The run's DataLoader, made once: its workers (if any) persist from one epoch to the next."""
        import torch

        run, t, g = self._run, self.settings.train, self.group
        if run.loader is None:
            items = accel.EpochItems(self._dataset, t.batch_size, g.rank if g else 0, g.world if g else 1)
            run.sampler = accel.EpochSampler(len(items))
            workers = accel.loader_workers(t.num_workers, self.device, g.world if g else 1)
            run.loader = torch.utils.data.DataLoader(
                items, batch_size=t.batch_size, sampler=run.sampler, drop_last=True, num_workers=workers,
                pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                multiprocessing_context="fork" if workers else None)
        return run.loader

    def _agree(self, run: _Run, bad: bool = False) -> bool:
        """Several processes: agree on stopping (any process asked, or its time is up) and on a bad loss, so
        that all take the same branch; returns whether any process had a bad loss. Alone: `bad`."""
        if self.group is None:
            return bad
        late = not run.timed and run.deadline is not None and _now() >= run.deadline
        bad, stop, late = distributed.all_max([float(bad), float(self._stop.is_set()), float(late)], self.device)
        run.stop_reason = "stopped" if stop else "time_limit" if late else None
        return bool(bad)

    def _step(self, x, y, w, head, run: _Run):
        import torch

        x = x.to(self.device, non_blocking=True, memory_format=self._format)
        y, w = (v.to(self.device, non_blocking=True) for v in (y, w))
        run.optimizer.zero_grad(set_to_none=True)
        # From here the running statistics move (train-mode forward) and then the weights: a snapshot taken
        # meanwhile re-estimates its statistics rather than copy half-updated ones.
        with self._weights_lock:
            self._norm_stale = True
        try:
            with accel.autocast(self.device, self._amp):
                logits = self._net(x)
                loss, pred_cls, true_cls = head(logits, y, w, run.class_weights)
            if self._agree(run, not bool(torch.isfinite(loss))):
                raise DataError("The loss became NaN or infinite: lower the learning rate, or check the images "
                                "for NaN values.")
            run.scaler.scale(loss).backward()
            with self._weights_lock:
                run.scaler.step(run.optimizer)
                run.scaler.update()
                self.best.moved_on()
        except (RuntimeError, MemoryError) as e:
            run.optimizer.zero_grad(set_to_none=True)
            if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
                raise OutOfMemoryError(self.app.out_of_memory_message(self.settings)) from e
            raise
        with torch.no_grad():
            cm = confusion(pred_cls, true_cls, head.n_cm)
        return float(loss.detach()), cm

    def _score(self, cm: np.ndarray) -> float:
        return self.app.score(cm, self.settings)

    def _lr(self, run: _Run) -> float:
        return float(run.optimizer.param_groups[0]["lr"])

    def _validate(self, run: _Run, head, together: bool = False):
        """(loss, cm) over the validation images; None if stopped meanwhile. `together`: every process of a
        distributed run calls it (the training loop), so each scores a share and the sums are exchanged."""
        import torch

        if not run.val:
            return (None, None)
        n_cls = head.n_cm
        self.model.eval()
        total, pixels, cm = 0.0, 0, np.zeros((n_cls, n_cls), np.int64)
        g = self.group if together else None
        with torch.inference_mode(), accel.autocast(self.device, self._amp):
            batch: list = []
            # Several processes: each scores its share of the images, the sums are added up below.
            sample = run.val_sample if run.val_sample is not None else run.val
            patches = validation_items(sample[g.rank::g.world] if g else sample, self.settings)
            for item in [*patches, None]:
                if item is not None:
                    batch.append(item)
                if batch and (item is None or len(batch) == self.settings.train.batch_size):
                    x, y, w = (torch.stack(v).to(self.device) for v in zip(*batch))
                    logits = self.model(x.contiguous(memory_format=self._format)).float()
                    n = int((y != IGNORE).sum())
                    loss, pred_cls, true_cls = head(logits, y, w, run.class_weights)
                    total += float(loss) * n
                    pixels += n
                    cm += confusion(pred_cls, true_cls, n_cls)
                    batch = []
                    if self._should_stop(run):
                        return None
        if g is not None:
            total, pixels = distributed.all_sum([total, pixels], self.device)
            cm = distributed.all_sum(cm, self.device)
        return total / max(pixels, 1), cm

    def _validation_objects(self, run: _Run):
        """The application's object-level score of the validation images (None: it has none; "stopped").
        Several processes: rank 0 scores every image (whole images, decoded: not split into sums) and tells
        the others."""
        if not run.val:
            return None
        g = self.group
        objects = None
        if g is None or g.main:
            sample = run.val_sample if run.val_sample is not None else run.val
            objects = self.app.validation_objects(Predictor(self.model, self.settings, self.device, app=self.app),
                                                  sample,
                                                  self.settings, stop=lambda: self._should_stop(run))
        return objects if g is None else distributed.broadcast(objects, self.device)

    def _end_epoch(self, run: _Run, val) -> Iterator[Event]:
        val_loss, val_cm, val_objects = val
        train_loss = run.loss_sum / max(run.step, 1)
        val_metric = self._score(val_cm) if val_cm is not None else None
        judged = val_objects if val_objects is not None else val_metric
        if run.scheduler is not None:
            import torch

            if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                run.scheduler.step(val_loss if val_loss is not None else train_loss)
            else:
                run.scheduler.step()
        run.epoch += 1
        run.batches, run.in_validation = None, False
        # A tie of the score (a saturated one: object F1 1.0 on one validation image from the first epoch on)
        # goes to the lower validation loss, so that training on can still change what Predict uses.
        key = _best_key(judged, val_loss)
        best = judged is not None and key > run.best_key
        if best:
            run.best_key = key
            self.best.store(self.model, run.epoch, judged)
        ev = EpochEnd(run.epoch, train_loss, self._score(run.cm), val_loss, val_metric, self._lr(run),
                      run.epoch_seconds, best, val_objects, run.val_seconds)
        self.history.append(ev.__dict__.copy())
        if self.autosave_path is not None:
            self.save(self.autosave_path, include_optimizer=True)
        every = self.settings.train.preview_every
        if every and self.preview_image is not None and run.epoch % every == 0:
            name, image = self.preview_image
            yield Preview(run.epoch, name, self.predictor().result(image))
        yield ev

    # -- evaluation and prediction ---------------------------------------------
    def evaluate(self, data=None) -> dict:
        """Validation loss and metric of the current weights (default: the run's validation set)."""
        sources = self._run.val if data is None else self._sources(data)
        if not sources:
            raise DataError("There is no validation data to evaluate on.")
        run = _Run(train=[], val=sources, optimizer=None, scheduler=None,
                   class_weights=self._run.class_weights if self._run else None, epochs=0)
        self.settle_normalization()
        loss, cm = self._validate(run, self.app.head(self.settings))
        return {"loss": loss, "metric": self._score(cm), "metric_name": self.settings.train.metric,
                "accuracy": score(cm, "accuracy")}

    def settle_normalization(self, model=None, sources: Sequence[SampleSource] | None = None) -> bool:
        """Re-estimate the BatchNorm running statistics from training patches, if stale.

        Training normalises each batch with its own statistics; prediction (eval
        mode) uses running averages that follow the weights only slowly
        (momentum 0.1), so after a short training the predicted labels differ from
        what the training curve shows (an empty slide at training IoU 0.75). Here the
        averages are reset and recomputed as a cumulative average over
        ``SETTLE_PATCHES`` training patches, unaugmented, drawn with a seed of their
        own, with the current weights: no gradient, no weight changes, and no use of
        torch's random generator (dropout stays off). Does nothing when no optimizer
        step happened since the last settling, when the model has no BatchNorm, or
        when there are no training patches (a loaded model keeps the statistics
        saved with it, which were settled before saving).

        `model`: another model than the live one (a snapshot: always settled);
        `sources`: training sources (default: the current run's). Returns whether
        the statistics were re-estimated.
        """
        live = model is None
        model = self.model if live else model
        if model is None or (live and not self._norm_stale):
            return False
        sources = list(self._run.train) if sources is None and self._run is not None else list(sources or [])
        if not norm_layers(model) or not sources:
            return False
        dataset = self.app.dataset(sources, self.settings, augment=None, epoch_seed=SETTLE_EPOCH)
        with self._weights_lock if live else contextlib.nullcontext():
            settle_batchnorm(model, dataset, self.settings.train.batch_size)
            if live:
                self._norm_stale = False
        return True

    def kept_model(self):
        """The network Predict, Save and Export use: the best epoch's weights or the live ones (``keep``)."""
        return self.best.model(self.model, self.settings.train.keep)

    def _ready(self) -> None:
        if self.model is None:
            raise SettingsError("There is no trained model yet: train or load a model first.")
        if self.device is None:
            self.device = pick_device(self.settings.train.device)
            self.model.to(self.device)

    def trained_model(self) -> TrainedModel:
        """The kept weights (``TrainSettings.keep``) as a model handle, normalisation statistics settled.

        It shares the live network (when it holds the kept weights) and the settings: call it between
        trainings, or from the training thread; ``snapshot`` is for other threads."""
        self._ready()
        self.settle_normalization()
        return TrainedModel(self.kept_model(), self.settings, self.device, self.history, self.data_size)

    def snapshot(self) -> TrainedModel:
        """A model handle of the kept weights that may be taken from another thread while training runs: a deep
        copy taken between two training steps, settled on its own, with a copy of the settings; the live
        model, its statistics and the training's random draws are left as they are."""
        self._ready()
        keep = self.settings.train.keep
        with self._weights_lock:
            best = self.best.applies(keep)  # the best epoch's statistics were settled when it was kept
            model, stale = self.best.model(self.model, keep) if best else copy.deepcopy(self.model), self._norm_stale
            settings = self.settings.copy()
            sources = list(self._run.train) if self._run is not None else []
            history = list(self.history)
        if stale and not best:
            self.settle_normalization(model, sources)
        return TrainedModel(model, settings, self.device, history, self.data_size)

    def predictor(self, tile: int | str | None = "auto", overlap: int = 128, snapshot: bool = False,
                  diameter: float | str | None = None, tta: bool = False) -> Predictor:
        """A Predictor of the kept weights (``TrainSettings.keep``), with settled normalisation statistics.

        `tile`, `diameter`, `tta`: see ``Predictor``. ``snapshot=False``: predicts with the live model
        (``trained_model``); ``snapshot=True``: with a copy that may be made from another thread while
        training runs (``snapshot``).
        """
        model = self.snapshot() if snapshot else self.trained_model()
        return model.predictor(tile=tile, overlap=overlap, diameter=diameter, tta=tta)

    # -- files (engine.checkpoint) --------------------------------------------------------------------
    def save(self, path: str | Path, include_optimizer: bool = False) -> Path:
        """Write the model file: the kept weights and every setting; `include_optimizer`: also what --resume needs."""
        if self.model is None:
            raise SettingsError("There is no model to save yet: train or load a model first.")
        # The file's statistics are what every later prediction (CLI, another session) uses.
        self.settle_normalization()
        weights, kept = self.best.file_entries(self.model, self.settings.train.keep)
        run = self._run
        state = None
        if include_optimizer and run is not None and run.optimizer is not None:
            state = checkpoint.run_state(run.optimizer, run.scheduler, run.epoch, run.iteration)
        # The latest weights only matter to continue the run.
        last = kept.get("last_state_dict") if include_optimizer else None
        return checkpoint.write(path, weights, self.settings, self.history, self.data_size, kept.get("best_epoch"),
                                last, state)

    @classmethod
    def load(cls, path: str | Path) -> Trainer:
        """A trainer holding a model file's weights, ready to predict, to train on, or (``train(continue_saved=
        True)``) to continue the run the file was autosaved in."""
        model = TrainedModel.load(path)
        trainer = cls(model.settings)
        trainer.model = model.network
        if model.last_state is not None:
            # The file's model is the best epoch's; training goes on from the latest weights.
            trainer.best.store(trainer.model, model.best_epoch or 0, float("nan"))
            try:
                trainer.model.load_state_dict(model.last_state)
            except (RuntimeError, KeyError) as e:
                raise damaged(path) from e
            trainer.best.moved_on()
        trainer._key = model_key(trainer.settings.model)
        trainer.history = list(model.history)
        trainer._loaded_data_size = model.data_size
        trainer._saved_run = model.run_state
        trainer.device = model.device
        return trainer
