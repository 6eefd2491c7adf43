"""One training session per viewer, shared by the training dock and the plot dock.

All threading lives here: the engine's generators run in a napari
``thread_worker`` and their events come back on the main thread through
``event``. Widgets only call start / stop / resume / reset / predict.
"""

from __future__ import annotations

import collections
import logging
import weakref
from pathlib import Path
from typing import Callable

from napari.qt.threading import create_worker
from napari.utils import progress
from psygnal import Signal
from qtpy.QtCore import QObject, Signal as QtSignal

from .._llvm import keep_triton_out_if_llvm_loaded
from ..engine.task_data import sources_for_task
from ..engine.errors import MiaError
from ..engine.events import IterationEnd, PlanMade, TrainingFinished, TrainingStarted
from ..engine.modelfile import check_file
from ..engine.record import TrainingRecord
from ..engine.settings import Settings
from ..workflows.events import RoundDone
from ._messages import notify
from ._preload import preload
from .applications import adapter_for

log = logging.getLogger(__name__)

IDLE, TRAINING, PREDICTING, LOADING = "idle", "training", "predicting", "loading"


def import_engine_libraries() -> None:
    """Import torch and friends when first needed, triton kept out first where it would crash (see `_llvm`)."""
    keep_triton_out_if_llvm_loaded()
    # torch and the libraries on it take seconds to import: called in the workers, never as the dock opens
    import albumentations  # noqa: F401
    import segmentation_models_pytorch  # noqa: F401
    import torch  # noqa: F401


def explain(error: BaseException) -> str:
    """A message for a person: the engine's own, or a plain hint for the rest."""
    if isinstance(error, MiaError):
        return str(error)
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "Out of memory. Lower the batch size or the patch size, or use down scaling."
    return f"Something went wrong: {text}. Your layers are unchanged; see the log for details."


def _relay():
    """A Qt signal made on the main thread: emitted from a worker thread, its slots run on the main thread
    (Qt queues a signal that crosses threads), in order with the worker's own signals."""
    class Relay(QObject):
        sent = QtSignal(object)

    return Relay()


class TrainingSession:
    event = Signal(object)  # each engine event, on the main thread
    round_done = Signal(object)  # the run's RoundDone (workflows.rounds), after its last event
    state_changed = Signal(str)
    failed = Signal(str)  # a plain-words message
    # (image name, job k, jobs n, tile done, tiles total), on the main thread, as a prediction goes on
    predict_progress = Signal(str, int, int, int, int)

    def __init__(self):
        self.trainer = None
        # The file the model was loaded from (Load Model, Import model), until Reset: training then continues
        # from weights learned on other images, as `train --from` does.
        self.loaded_from = None
        self.loaded_said = False  # whether the dock has said, since the last load, what training it further keeps
        self.record = TrainingRecord()
        self.state, self.worker, self._progress, self.last_event = IDLE, None, None, None
        self.last_round = None  # the latest RoundDone: what the last run was recorded as
        self.labelled_names: set[str] = set()  # image layers the last run learned or tested on (Label next: others)
        self.failures = 0
        self._predicting = False
        self._stop_requested = False
        self._pending: collections.deque = collections.deque()
        self._dispatching = False
        self._task_worker = None
        self._round: tuple | None = None  # the latest round's items, test items and facts, for a Resume
        # image name -> the objects' diameter (image pixels) its last prediction used, None: the model's scale
        self.diameters: dict = {}

    # -- state --------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state != IDLE

    @property
    def can_resume(self) -> bool:
        return self.trainer is not None and self.trainer.can_resume and not self.busy

    @property
    def has_model(self) -> bool:
        return self.trainer is not None and self.trainer.model is not None

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    # -- training -----------------------------------------------------------
    def start(self, settings: Settings, items: list, preview=None, val: list | None = None,
              test: list | None = None, facts: dict | None = None) -> bool:
        """Start a run from the current weights; when it ends, it is recorded as the model's next round
        (``RoundDone``, scored on the `test` items if any; `facts`: see ``workflows.rounds.as_round``).

        `items`: copied (image, target, name, target name, rgb[, reviewed regions]), the target being a labels
        array (segmentation), (N, 2|3) y, x[, class] points (detection) or one class id per frame, -1 for none
        (classification). `val`: items of the same kind held out for validation; None: the validation split of
        the settings holds some of `items` out."""
        if self.busy:
            self._fail("Training is already running. Stop it first.")
            return False
        keep_triton_out_if_llvm_loaded()  # on the main thread, before any thread imports torch
        preload()  # matplotlib for the Training Data dock, imported beside torch rather than on the main thread
        settings = settings.copy()
        # A few new images estimate BatchNorm's statistics far worse than the images a loaded model learned
        # them from (docs/benchmarks.md, "train --from on 3 images"): keep them, as `train --from` does.
        settings.train.freeze_normalization = self.loaded_from is not None
        if self.trainer is not None:
            self.trainer.settings = settings
            self.trainer.preview_image = preview
        self.record.clear()
        self._stop_requested = False
        self.labelled_names = {it[2] for it in items + (val or []) + (test or [])}

        def run():
            # The first start imports torch and smp (about 6 s here): in the worker, so the viewer stays live.
            import_engine_libraries()
            # lazy: the trainer's modules load in the worker, not as a dock opens
            from ..engine.trainer import Trainer

            if self.trainer is None:
                trainer = Trainer(settings)
                trainer.preview_image = preview
                self.trainer = trainer
            trainer = self.trainer
            if self._stop_requested:  # Stop pressed while the libraries were loading
                return
            sources = sources_for_task(items, trainer.settings, rgb=[it[4] for it in items],
                                       regions=[it[5] if len(it) > 5 else None for it in items])
            held_out = None if val is None else sources_for_task(
                val, trainer.settings, rgb=[it[4] for it in val],
                regions=[it[5] if len(it) > 5 else None for it in val])
            from ..workflows.rounds import as_round  # lazy: the engine's modules load in the worker (above)

            self._round = (items + (val or []), test, dict(facts or {}))
            yield from as_round(trainer, _calibrated(trainer, trainer.train(sources, val=held_out)), *self._round)

        self._launch(run, TRAINING)
        return True

    def resume(self) -> bool:
        if not self.can_resume:
            self._fail("There is no stopped training to resume.")
            return False
        trainer = self.trainer

        def run():  # a generator function: napari makes a GeneratorWorker only of those
            from ..workflows.rounds import as_round  # lazy, as in start

            events = _calibrated(trainer, trainer.resume())  # the stopped round, recorded again in its place
            yield from as_round(trainer, events, *self._round, continues=True) if self._round else events

        self._launch(run, TRAINING)
        return True

    def stop(self) -> None:
        if self.state == TRAINING:
            self._stop_requested = True
            if self.trainer is not None:
                self.trainer.stop()

    def reset(self) -> None:
        if self.busy:
            self._fail("Stop the training before resetting the model.")
            return
        if self.trainer is not None:
            self.trainer.reset()
        self.trainer, self.loaded_from, self._round, self.labelled_names = None, None, None, set()
        self.record.clear()
        self.state_changed.emit(self.state)

    # -- prediction -----------------------------------------------------------
    def predict(self, jobs: list, done: Callable, post=None, options: dict | None = None) -> bool:
        """Predict `jobs` [(key, image, rgb[, name])] in a worker, one after the other (`name`: how the engine's
        messages name the image, the key if not given); `done(key, result)`
        runs on the main thread as each finishes (see `Predictor.result`). During training it uses a snapshot
        of the weights. Progress goes to a napari progress bar, tile by tile, and to `predict_progress`.
        `options`: the predictor's `diameter` and `tta` (``TrainedModel.predictor``); the objects' diameter used
        for each key is in `diameters[key]` when `done` runs (None: the model's own scale)."""
        if not self.has_model:
            self._fail("There is no model yet: train or load one first.")
            return False
        if self.state == PREDICTING or self._predicting:
            self._fail("A prediction is already running.")
            return False
        if self.state == LOADING:
            self._fail("Please wait: napari-mia is still loading.")
            return False
        keep_triton_out_if_llvm_loaded()  # on the main thread, before the worker imports torch
        trainer = self.trainer
        snapshot = self.state == TRAINING
        settings = trainer.settings.copy()
        relay = _relay()

        def run():
            # torch's first import takes seconds: here, not on the main thread, so the viewer stays live.
            import_engine_libraries()
            predictor = _predictor(trainer, settings, snapshot, **(options or {}))
            for k, (key, image, rgb, *name) in enumerate(jobs):
                def tile(i, n, key=key, k=k):
                    relay.sent.emit((key, k, len(jobs), int(i), int(n)))

                relay.sent.emit((key, k, len(jobs), 0, 0))  # "Predicting <name>" before its first tile
                result = _result(predictor, image, rgb, post, tile, name[0] if name else str(key))
                yield key, result, predictor.last_diameter

        bar = progress(total=0, desc="napari-mia prediction")

        def moved(value):
            key, k, n, i, total = value
            if total and bar.total != total:  # the next image: its own count of tiles
                bar.set_description(f"napari-mia: predicting {key}")
                bar.total, bar.n = total, 0
            if i > bar.n:
                bar.update(i - bar.n)
            self.predict_progress.emit(str(key), k, n, i, total)

        relay.sent.connect(lambda value: self._in_order(moved, value))

        def one_done(result):
            key, labels, diameter = result
            self.diameters[key] = diameter
            done(key, labels)

        def finished():
            bar.close()
            relay.deleteLater()
            self._predicting = False
            if self.state == PREDICTING:
                self._set_state(IDLE)

        worker = self._create_worker(run, one_done, finished)
        self._predicting = True
        self._relay = relay  # kept alive while the worker sends through it
        if self.state == IDLE:
            self._set_state(PREDICTING)
        self._predict_worker = worker
        worker.start()
        return True

    # -- work in the background ----------------------------------------------------
    def run_task(self, work: Callable, done: Callable, state: str = LOADING) -> bool:
        """`work()` in a worker thread (torch imports, file reads), `done(result)` on the main thread.

        The session is `state` meanwhile, so the dock's buttons lock; errors become messages.
        """
        if self.busy:
            self._fail("Please wait for the training or prediction to finish (or stop it) first.")
            return False
        keep_triton_out_if_llvm_loaded()  # on the main thread, before any thread imports torch

        def run():
            yield work()

        def finished():
            self._task_worker = None
            if self.state == state:
                self._set_state(IDLE)

        worker = self._create_worker(run, done, finished)
        self._task_worker = worker
        self._set_state(state)
        worker.start()
        return True

    # -- files --------------------------------------------------------------
    def save(self, path) -> None:
        self.trainer.save(path)

    def load(self, path, done: Callable | None = None) -> bool:
        """Load a model file in a worker (the first use imports torch: seconds); `done(settings)` on the main
        thread once it is the session's model. A file that is plainly not a model is refused at once (False); a
        damaged one becomes a message; the current model stays."""
        if self.busy:
            self._fail("Stop the training before loading a model.")
            return False
        try:  # what is plainly not a model is refused now, before torch is imported (seconds)
            check_file(path)
        except MiaError as e:
            self._fail(str(e))
            return False

        def work():
            import_engine_libraries()
            # lazy: the trainer's modules load in the worker, not as a dock opens
            from ..engine.trainer import Trainer

            return Trainer.load(path)

        def loaded(trainer):
            self.trainer, self.labelled_names = trainer, set()  # the images of this viewer are new to it
            self.loaded_from, self.loaded_said = Path(path), False
            self.record.clear()
            self.state_changed.emit(self.state)
            if done is not None:
                done(trainer.settings)

        return self.run_task(work, loaded)

    # -- worker plumbing ------------------------------------------------------
    def _create_worker(self, gen_func, on_yielded: Callable, on_finished: Callable):
        """A napari worker whose signals reach the main thread in order; failures become messages."""
        # Handlers given at creation: superqt re-raises errors in the event loop
        # (a traceback dialog in napari) unless `errored` is connected there.
        return create_worker(gen_func, _start_thread=False, _connect={
            "yielded": lambda value: self._in_order(on_yielded, value),
            "errored": lambda e: self._in_order(self._fail, explain(e), e),
            "finished": lambda: self._in_order(on_finished),
        })

    def _launch(self, gen_func, state: str) -> None:
        worker = self._create_worker(gen_func, self._on_event, self._on_finished)
        self.worker = worker
        self._set_state(state)
        worker.start()

    def _in_order(self, handler: Callable, *args) -> None:
        """Run the worker's signals one at a time, in the order they were sent.

        napari's progress bar calls ``processEvents`` when it moves, so a
        handler can be re-entered with the worker's next signals (even
        ``finished``) before it returns; those wait here for their turn.
        """
        self._pending.append((handler, args))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                handler, args = self._pending.popleft()
                try:
                    handler(*args)
                except Exception:  # one broken subscriber must not hold back the signals behind it
                    log.exception("napari-mia: a handler of the training session failed")
        finally:
            self._dispatching = False

    def connect_widget(self, widget, links: list) -> None:
        """Connect a dock's slots [(signal, slot)] to this session for as long as Qt keeps the dock.

        When the viewer closes, Qt deletes the docks while a worker may still be sending events: a slot
        that finds its widgets deleted is disconnected instead of raising into the event loop.
        """
        def guarded(signal, slot):
            def call(*args):
                try:
                    slot(*args)
                except RuntimeError as e:
                    if "has been deleted" not in str(e):
                        raise
                    signal.disconnect(call)
            return call

        wrapped = [(signal, guarded(signal, slot)) for signal, slot in links]
        for signal, call in wrapped:
            signal.connect(call)

        def teardown(*_):
            for signal, call in wrapped:
                signal.disconnect(call, missing_ok=True)

        widget.destroyed.connect(teardown)

    def _on_event(self, ev) -> None:
        if isinstance(ev, RoundDone) or ev is None:  # after the run's last event, which stays the last one
            self.last_round = ev
            return None if ev is None else self.round_done.emit(ev)
        self.record.add(ev)
        self.last_event = ev
        if isinstance(ev, TrainingStarted):
            self._close_progress()
            total = (ev.epochs - ev.start_epoch) * ev.steps_per_epoch
            self._progress = progress(total=total, desc="napari-mia training")
        elif isinstance(ev, PlanMade) and ev.timed and self._progress is not None:
            self._progress.total = ev.steps  # a time plan's steps are known once the first are timed
        elif isinstance(ev, IterationEnd) and self._progress is not None:
            self._progress.update(1)
        elif isinstance(ev, TrainingFinished):
            self._close_progress()
        self.event.emit(ev)

    def _on_finished(self) -> None:
        self._close_progress()
        self.worker = None
        self._set_state(IDLE)

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _fail(self, message: str, error: BaseException | None = None) -> None:
        if error is not None and not isinstance(error, MiaError):
            log.error("napari-mia worker failed", exc_info=error)
        notify(message, "error")
        self.failures += 1
        self.failed.emit(message)


def _predictor(trainer, settings, snapshot: bool, diameter=None, tta: bool = False):
    """A predictor of the trainer's model handle (normalisation settled; a copy of the weights while training
    goes on) under the dock's `settings` as they were when Predict was pressed."""
    model = trainer.snapshot() if snapshot else trainer.trained_model()
    return model.with_settings(settings).predictor(diameter=diameter, tta=tta)


def _result(predictor, image, rgb, post, tile: Callable, name: str = "image"):
    """`predictor.result`, reporting each tile through `tile(done, total)`."""
    return predictor.result(image, rgb=rgb, post=post, progress=tile, name=name)


def _calibrated(trainer, events):
    """A run's events; after them the application finishes the model (detection: its peak threshold from
    the training images)."""
    yield from events
    adapter_for(trainer.settings.model.task).after_training(trainer)


_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_for(viewer) -> TrainingSession:
    """The viewer's session (created on first use), so both docks share one state."""
    if viewer not in _sessions:
        _sessions[viewer] = TrainingSession()
    return _sessions[viewer]
