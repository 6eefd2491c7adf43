"""The trainer: a generator of progress events.

    trainer = Trainer(settings)
    for event in trainer.train(pairs):     # a new run from the current weights
        ...                                 # trainer.stop() from any thread
    for event in trainer.resume():         # the stopped run, exactly where it was
        ...
    trainer.reset()                        # forget the weights

Everything the widgets and the CLI show comes from these events; nothing here knows about Qt or napari.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from . import accel, applications, distributed
from .augment import build_augment
from .checkpoint import BestWeights
from .data import split_train_val, too_few_for_validation
from .errors import DataError, OutOfMemoryError, SettingsError
from .events import EpochEnd, Event, IterationEnd, Preview, TrainingFinished, TrainingStarted
from .metrics import confusion
from .models import model_key, pick_device
from .optimization import Run as _Run, build_optimizer, build_scheduler, class_weight_tensor, train_mode
from .plan import MAX_VALIDATION_CROPS, MIN_VALIDATION_CROPS, Clock
from .rounds import RoundBook
from .samples import SampleSource, check_known_background, object_diameter, scaled_note, to_object_size
from .settings import Settings
from .task_data import sources_for_task
from .trained_model import build_model
from .trainer_model import TrainerModel
from .trainer_validation import TrainerValidation


def _now() -> float:
    """The trainer's clock (seconds): the plan, the deadline and the timings read it, so tests can replace it."""
    return time.perf_counter()


def _best_key(score: float | None, val_loss: float | None) -> tuple:
    """How epochs rank for the best weights: the score, then the lower validation loss."""
    return (float("-inf") if score is None else score, float("-inf") if val_loss is None else -val_loss)


class Trainer(TrainerValidation, TrainerModel):
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
        self.preview_image: tuple[str, np.ndarray] | None = None  # (name, image) predicted every preview_every epochs
        self.rounds = RoundBook()  # every finished run, its scores and weights (workflows.rounds)
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

    def _time(self) -> float:  # the trainer's clock (``_now``), for the methods of its base classes
        return _now()

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
        self.model, self._key, self._run, self.history, self.rounds = None, None, None, [], RoundBook()
        self._norm_stale = False

    def _ensure_model(self) -> None:
        import torch  # lazy: seconds to import, and napari-mia --help imports this module

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
            from torch.nn.parallel import DistributedDataParallel  # lazy: torch (see _ensure_model)

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
        ids[, name]), see ``applications.classification.sources_from_classes``.
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
            self._note = scaled_note(sources, diameter)
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

    # Over 80 lines: one generator; its steps, validation and stops share the run's state and yield in order.
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
                              note=note, precision=accel.precision_name(self._amp), warning=warning,
                              processes=g.world if g else 1, backend=g.backend if g else "",
                              minutes=(budget or 0.0) / 60, kept_normalization=self.settings.train.freeze_normalization)
        head = self.app.head(self.settings)
        n_cls = head.n_cm
        while run.timed or run.epoch < run.epochs:
            if not run.in_validation:
                if run.batches is None:
                    loader = self._loader()
                    run.sampler.set_epoch(run.epoch, unbounded=run.timed)
                    run.batches = iter(loader)
                    run.step, run.loss_sum, run.cm, run.epoch_seconds = 0, 0.0, np.zeros((n_cls, n_cls), np.int64), 0.0
                train_mode(self.model, frozen_norm=self.settings.train.freeze_normalization)
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
        import torch  # lazy: seconds to import, and napari-mia --help imports this module

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
        import torch  # lazy: seconds to import, and napari-mia --help imports this module

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

    def _end_epoch(self, run: _Run, val) -> Iterator[Event]:
        val_loss, val_cm, val_objects = val
        train_loss = run.loss_sum / max(run.step, 1)
        val_metric = self._score(val_cm) if val_cm is not None else None
        judged = val_objects if val_objects is not None else val_metric
        if run.scheduler is not None:
            import torch  # lazy: seconds to import, and napari-mia --help imports this module

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









