"""What a Trainer does besides stepping: validation, the plan of a run (how often it validates, on what),
evaluation and the settling of BatchNorm statistics.

A base class of ``trainer.Trainer``, kept in a file of its own for size: its methods work on the trainer's
model, device, settings and run, as the loop's own do. The trainer's clock is ``Trainer._time``.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from . import accel, distributed
from .errors import DataError, SettingsError
from .events import PlanMade
from .metrics import confusion, score
from .optimization import SETTLE_EPOCH, Run, norm_layers, settle_batchnorm
from .plan import CROP_COST, MAX_VALIDATION_CROPS, MIN_VALIDATION_CROPS, VALIDATION_SHARE, VALIDATIONS, cosine_factor
from .predictor import Predictor
from .samples import SampleSource
from .targets import IGNORE
from .task_data import validation_items


class TrainerValidation:
    """Validation, the plan, evaluation and normalisation settling of a ``Trainer``."""

    def _validation_sample(self, run: Run, max_crops: int) -> list:
        if not run.val:
            return []
        return self.app.validation_sample(run.val, self.settings, max_crops, self.settings.train.seed)

    def _validation_patches(self, run: Run) -> int:
        """Patch-sized pieces each validation scores (its cost, before one was timed)."""
        d = self.settings.data
        sample = run.val_sample if run.val_sample is not None else run.val
        return sum(-(-s.shape[0] // d.patch_height) * -(-s.shape[1] // d.patch_width) for s in sample)

    def _validation_seconds(self, run: Run) -> float:
        if not run.val:
            return 0.0
        return run.clock.estimated_validation(self._validation_patches(run), self.settings.train.batch_size)

    def _make_plan(self, run: Run, started: float) -> PlanMade:
        """After the first steps are timed: size the validation sample and the periods, and say the plan."""
        clock, t = run.clock, self.settings.train
        if run.timed:
            per_crop = CROP_COST * clock.step_seconds / max(t.batch_size, 1)
            target = VALIDATION_SHARE * clock.budget / VALIDATIONS
            crops = int(min(max(target / max(per_crop, 1e-6), MIN_VALIDATION_CROPS), MAX_VALIDATION_CROPS))
            if self.group is not None:  # every process scores the same sample
                crops = int(distributed.broadcast(crops, self.device))
            run.val_sample = self._validation_sample(run, crops)
            clock.plan_period(run.deadline - self._time(), run.iteration, self._validation_seconds(run))
        run.planned = True
        whole = not run.val_sample or run.val_sample[0] in run.val
        summary = clock.summary(run.iteration, self._validation_patches(run), t.batch_size,
                                self._time() - started)
        crops = 0 if whole else len(run.val_sample)
        return PlanMade(summary.describe().replace(f"(on {summary.validation_crops} crops)",
                                                   f"(on {crops} crops)" if crops else "(on whole images)"),
                        summary.steps, summary.validate_every, summary.seconds_per_step, summary.seconds,
                        summary.timed, summary.warning, crops)

    def _period_over(self, run: Run) -> bool:
        """Time plan: whether this period ends now (its steps are done, or the time left needs a validation)."""
        end = run.clock.end_period_now(run.step, run.deadline - self._time(), self._validation_seconds(run))
        if self.group is not None:  # the processes validate together
            end = bool(distributed.all_max([float(end)], self.device)[0])
        return end

    def _another_period(self, run: Run) -> bool:
        """Time plan, after a validation: whether another period fits before the deadline; if so, plan it."""
        remaining = run.deadline - self._time()
        val_seconds = self._validation_seconds(run)
        more = run.clock.time_left_for_more(remaining, val_seconds)
        if self.group is not None:
            more = not distributed.all_max([float(not more)], self.device)[0]
        if more and run.planned:
            run.clock.plan_period(remaining, run.iteration, val_seconds)
        return more

    def _budget(self, max_seconds: float | None, run: Run) -> float | None:
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

    def _schedule_lr(self, run: Run) -> None:
        """The cosine schedule: the learning rate for the step about to be taken, from the plan's progress."""
        if self.settings.train.lr_schedule != "cosine" or run.optimizer is None:
            return
        run.lr_progress = run.clock.progress(run.iteration + 1)
        lr = self.settings.train.learning_rate * cosine_factor(run.lr_progress)
        for group in run.optimizer.param_groups:
            group["lr"] = lr

    def _validate(self, run: Run, head, together: bool = False):
        """(loss, cm) over the validation images; None if stopped meanwhile. `together`: every process of a
        distributed run calls it (the training loop), so each scores a share and the sums are exchanged."""
        import torch  # lazy: see the trainer's module

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

    def _validation_objects(self, run: Run):
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

    def evaluate(self, data=None) -> dict:
        """Validation loss and metric of the current weights (default: the run's validation set)."""
        if self.model is None:
            raise SettingsError("There is no model to evaluate yet: train or load a model first.")
        sources = (self._run.val if self._run else []) if data is None else self._sources(data)
        if not sources:
            raise DataError("There is no validation data to evaluate on.")
        run = Run(train=[], val=sources, optimizer=None, scheduler=None,
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
        saved with it, which were settled before saving), or when the settings
        freeze them (``TrainSettings.freeze_normalization``).

        `model`: another model than the live one (a snapshot: always settled);
        `sources`: training sources (default: the current run's). Returns whether
        the statistics were re-estimated.
        """
        live = model is None
        model = self.model if live else model
        if self.settings.train.freeze_normalization:
            return False  # the statistics the weights came with are kept (TrainSettings.freeze_normalization)
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
