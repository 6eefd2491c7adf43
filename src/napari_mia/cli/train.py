"""``napari-mia train``: a new model, a resumed run (--resume), a fine-tuned one (--from), or a job folder (--job);
in this process, or as one of several started by torchrun."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from ..engine import applications, distributed
from ..engine.errors import MiaError
from ..engine.events import EpochEnd, IterationEnd, PlanMade, TrainingFinished, TrainingStarted
from ..engine.job import MODEL_FILE, job_arguments
from ..engine.record import TrainingRecord, record_path
from ..engine.rounds import rounds_path
from ..engine.settings import Settings
from ..engine.trainer import Trainer
from ..workflows import formats
from ..workflows.finetune import start_from, to_model_scale
from ..workflows.prediction import predictor_for_model, read_for_model
from ..workflows.rounds import RoundClock, data_hashes, finish_round, score_test_folder, write_rounds_csv
from ..workflows.training_inputs import guess_channels, test_pairs, training_pairs, validation_pairs, with_regions
from .options import add_channel_axis_option, add_precision_option, diameter_value, positive_int
from .output import close, progress_bar, say, write

TRAIN_EPILOG = """\
Masks have the same file names as the images (TIFF or PNG; the extension may
differ). Settings come from --config (YAML or JSON, as written by
Settings().save(path) in Python), then from the options given here.
The model is saved to --out after every epoch, and the training record (every
logged value) to <out stem>_record.csv beside it.

Classification (one class per image): --classes CSV with the columns
name,class (e.g. a01.tif,treated), one row per image; images the CSV does not
name are skipped. Each image is resized whole to --patch x --patch pixels
(--downscale does not apply).

Multi-channel images (e.g. two fluorescence channels): --channels N, and
--channel-axis A where the files hold them (0 for (C, H, W) files, -1 for
(H, W, C)); without --channel-axis, (C, H, W) files whose first axis has N
entries are read channels first. Without --channels the count is guessed:
1 (Mono) or 3 (Color, RGB files); predict and evaluate take it from the model.

Validation: by default --val-split of the images is held out at random. To
choose the validation images yourself, give them in their own folder with
--val-images and their targets in the training option's form: --val-masks DIR
(segmentation), --val-points CSV (detection) or --val-classes CSV
(classification). Every image of --images then trains, and --val-split is not
used.

Test images (never trained on, never choosing an epoch): --test-images DIR with
--test-masks DIR, --test-points CSV or --test-classes CSV. At the end of the run
the saved model is scored on them per image, as napari-mia evaluate scores, and
the means are printed. Every training run is a round of the model (a --from run
is the next round of that model): <out stem>_rounds.csv beside the model lists
them with their test scores, and napari-mia info --model M shows them. A round
that scores worse on the test images than an earlier one is said.

Training job: --job DIR trains a folder written by the dock's Export training job
(its images, targets, validation images and settings.yaml); options given beside
--job override the job's, and --out defaults to DIR/model.pt. Its README.md has
the command lines, also for several GPUs (torchrun).

examples:
  napari-mia train --task segmentation --images imgs/ --masks masks/ \\
      --label-mode instances --minutes 5 --out nuclei.pt
  napari-mia train --images two_channel/ --masks masks/ --channels 2 \\
      --channel-axis 0 --minutes 5 --out cells.pt
  napari-mia train --task classification --images imgs/ --classes classes.csv \\
      --patch 128 --minutes 5 --out phenotype.pt
  napari-mia train --images imgs/ --masks masks/ --val-images val_imgs/ \\
      --val-masks val_masks/ --label-mode instances --out nuclei.pt
  napari-mia train --job nuclei_job/ --out nuclei.pt
      (a folder written by the dock's Export training job; see its README.md)
  napari-mia train --from nuclei --images mine/ --masks mine_masks/ \\
      --minutes 2 --out my_nuclei.pt
      (fine-tune the nuclei starter that ships with napari-mia on your images)
"""


def add_parser(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a model on images and masks", epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    # In this order in the help: the data, then the model and its training, then the run.
    _add_data_options(t)
    _add_training_options(t)
    _add_run_options(t)
    return t


def _add_data_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--task", choices=list(applications.names()),
                   help="what to learn: segmentation from --masks, detection from --points, classification (one "
                        "class per image) from --classes (default: segmentation, or the --from model's)")
    # Required unless --job gives it (checked in `check`, with argparse's own words).
    t.add_argument("--images", type=Path, help="folder of training images")
    t.add_argument("--masks", type=Path, help="segmentation: folder of label masks, same file names as the images")
    t.add_argument("--points", type=Path,
                   help="detection: CSV with columns name,y,x[,class], one row per object (name: the image's file)")
    t.add_argument("--classes", type=Path,
                   help="classification: CSV with columns name,class, one row per image (name: the image's file; "
                        "class: its class name, e.g. treated)")
    t.add_argument("--object-size", type=float,
                   help="detection: objects' diameter in pixels, the width of the map's bumps (default: 10)")
    t.add_argument("--out", type=Path, help="model file to write (e.g. model.pt; with --job: DIR/model.pt unless "
                                            "given)")
    t.add_argument("--job", type=Path, metavar="DIR",
                   help="a training job folder written by the Train Model dock's Export training job: its images, "
                        "targets, validation images and settings; the options given here override them")
    t.add_argument("--label-mode", choices=["classes", "instances"],
                   help="classes: mask value = class id; instances: one id per object, objects are separated "
                        "(default: guessed from the masks, as the dock does, and said; classes where they do not "
                        "tell)")
    t.add_argument("--channels", type=positive_int, metavar="N",
                   help="channels of the images: 1 (Mono), 3 (Color) or any other count, e.g. 2 for two "
                        "fluorescence channels (default: 3 for RGB files, else 1)")
    add_channel_axis_option(t)


def _add_training_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--config", type=Path, help="settings file (YAML/JSON); the options below override it")
    t.add_argument("--epochs", type=int, help="passes over the training images (default: 10; with --minutes alone, "
                                              "as many as fit in the time)")
    t.add_argument("--minutes", type=float, help="train for this many minutes: the steps, validations and learning "
                                                 "rate are planned to fit the time, and the best model is saved")
    t.add_argument("--arch", help="architecture: Unet, UnetPlusPlus, FPN, Linknet, PSPNet, DeepLabV3, DeepLabV3Plus, "
                                  "PAN, MAnet, UPerNet, Segformer (default: Unet)")
    t.add_argument("--backbone", help="encoder, e.g. resnet18, resnet34, efficientnet-b0 (default: resnet18)")
    t.add_argument("--pretrained", action="store_true", default=None,
                   help="start the encoder from ImageNet weights (cached, downloaded, or --weights)")
    t.add_argument("--weights", type=Path, help="local ImageNet weights file for the encoder (.safetensors or .pth)")
    t.add_argument("--batch-size", type=int, help="patches per step (default: 4)")
    t.add_argument("--lr", type=float, help="learning rate (default: 1e-3)")
    t.add_argument("--patch", type=int, help="patch width and height in pixels, a multiple of 32 (default: 256); "
                                             "classification: the size each whole image is resized to")
    t.add_argument("--downscale", type=float, help="scale images by this factor (0-1] before training (default: 1.0)")
    t.add_argument("--val-split", type=float, help="fraction of images held out for validation (default: 0.1; "
                                                   "not used with --val-images)")
    t.add_argument("--val-images", type=Path, metavar="DIR",
                   help="folder of validation images, with their targets given like the training ones: "
                        "--val-masks, --val-points or --val-classes. They are the validation set, instead of a "
                        "random --val-split of --images")
    t.add_argument("--val-masks", type=Path, metavar="DIR",
                   help="segmentation: folder of label masks of the --val-images, same file names")
    t.add_argument("--val-points", type=Path, metavar="CSV",
                   help="detection: CSV of the --val-images' points (columns name,y,x[,class], as --points)")
    t.add_argument("--val-classes", type=Path, metavar="CSV",
                   help="classification: CSV of the --val-images' classes (columns name,class, as --classes)")
    t.add_argument("--test-images", type=Path, metavar="DIR",
                   help="folder of test images, never trained on and never choosing an epoch: the saved model is "
                        "scored on them at the end (targets: --test-masks, --test-points or --test-classes)")
    t.add_argument("--test-masks", type=Path, metavar="DIR",
                   help="segmentation: folder of label masks of the --test-images, same file names")
    t.add_argument("--test-points", type=Path, metavar="CSV",
                   help="detection: CSV of the --test-images' points (columns name,y,x[,class], as --points)")
    t.add_argument("--test-classes", type=Path, metavar="CSV",
                   help="classification: CSV of the --test-images' classes (columns name,class, as --classes)")


def _add_run_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--seed", type=int, help="random seed (default: 0)")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_precision_option(t)
    t.add_argument("--resume", action="store_true",
                   help="continue the training saved in --out after a crash or kill (it is saved after every "
                        "epoch, with its settings: only --epochs and --minutes apply)")
    t.add_argument("--from", dest="start_from", type=Path, metavar="MODEL",
                   help="start from this saved model's weights and settings (the options given override them), "
                        "with the new images: a new run; nuclei: the fluorescence nuclei starter that ships with "
                        "napari-mia. Images whose objects differ in size from the model's "
                        "are scaled to its objects' size (see --diameter)")
    t.add_argument("--keep", choices=["best", "last"],
                   help="which weights the saved model holds: the best validation epoch's (default) or the last "
                        "epoch's")
    t.add_argument("--diameter", type=diameter_value, metavar="D|auto|off",
                   help="with --from: the objects' typical diameter in these training images, in pixels, to "
                        "scale them to the model's objects (default 'auto': measured from the labels; 'off': "
                        "not scaled)")
    t.add_argument("--sparse", action="store_true", default=None,
                   help="sparse labels: 0 = not labelled (ignored), 1 = background painted on purpose, 2, 3, ... = "
                        "objects (instances) or classes (value v is class v-1)")
    t.add_argument("--regions", type=Path, metavar="DIR",
                   help="folder of reviewed-region masks with the images' file names (nonzero = every object "
                        "there is labelled; unpainted pixels there are background); outside them nothing is "
                        "learned. Images without a region file are taken as fully labelled")


def check(t: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """--images and --out are required, unless --job gives them (the error is argparse's own)."""
    missing = [] if a.job else [flag for flag, given in (("--images", a.images), ("--out", a.out)) if given is None]
    if missing:
        t.error(f"the following arguments are required: {', '.join(missing)}")


def fill_from_job(a: argparse.Namespace) -> None:
    """--job DIR: the job's images, targets, validation images and settings fill the options not given, as if
    they had been given (the job's README shows them), before anything else reads the options."""
    for dest, value in job_arguments(a.job).items():
        if getattr(a, dest, None) is None:
            setattr(a, dest, value)
    if a.out is None:
        a.out = a.job / MODEL_FILE


def read_fit(f: Path, s: Settings, quiet: bool = False, channel_axis: int | None = None):
    """A training image as the model reads it (channels last, opaque alpha dropped), what was changed said on
    stderr unless `quiet`."""
    image, notes = read_for_model(f, s, channel_axis)
    for note in notes if not quiet else ():
        say(note)
    return image


def run(a: argparse.Namespace) -> int:
    """Train in this process, or as one of several started by torchrun (only rank 0 prints and writes)."""
    if a.job:
        fill_from_job(a)
    group = distributed.init_from_env(a.device or "auto")
    silent = contextlib.ExitStack()
    quiet = a.quiet
    if group is not None and not group.main:
        # The other processes train silently: rank 0 says everything once. Errors still reach the terminal
        # (``main`` prints them after this returns or raises).
        devnull = silent.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - closed by the ExitStack
        silent.enter_context(contextlib.redirect_stdout(devnull))
        silent.enter_context(contextlib.redirect_stderr(devnull))
        quiet = True
    with silent:
        rc = _train(a, group, quiet)
    if group is not None:
        distributed.finish()
    return rc


def _new_settings(a: argparse.Namespace, pairs: list[tuple]) -> tuple[Settings, list[str]]:
    """A new model's settings, all of them: --config, then the options, then what the files show (channels,
    label mode, classes). Also what was chosen here, to be said."""
    app = applications.get(a.task or "segmentation")
    s = Settings.load(a.config) if a.config else Settings()
    # A loss made for another task (e.g. the segmentation default, dice) is replaced by this task's default.
    loss = app.default_loss if s.train.loss not in app.losses else None
    # The application's own metric, unless a config written for it chose otherwise.
    metric = app.default_metric if s.model.task != app.name else None
    s.update(
        task=app.name, object_size=a.object_size, loss=loss, metric=metric,
        label_mode=a.label_mode, epochs=a.epochs, architecture=a.arch, encoder=a.backbone,
        pretrained=a.pretrained, weights_path=str(a.weights) if a.weights else None, batch_size=a.batch_size,
        learning_rate=a.lr, patch_width=a.patch, patch_height=a.patch, downscale=a.downscale,
        val_split=a.val_split, seed=a.seed, device=a.device, sparse=a.sparse, precision=a.precision, keep=a.keep,
    )
    if a.weights and not s.model.pretrained:
        s.model.pretrained = True
    _time_budget(a, s)
    if not a.config or a.channels:
        s.model.channels = guess_channels(pairs[0][0], a.channels, a.channel_axis)
    files = formats.get(s.model.task)
    said = []
    if not a.label_mode and not a.config:  # a settings file names its label mode
        guessed = files.guess_label_mode(pairs, bool(s.data.sparse))
        if guessed is not None:
            s.update(label_mode=guessed[0])
            said.append(guessed[1])
    files.prepare_settings(s, pairs, given_config=bool(a.config))
    return s, said


def _time_budget(a: argparse.Namespace, s: Settings) -> None:
    """--minutes alone: the time sets the plan (as many steps as fit, validated along the way); with
    --epochs too, whichever ends first."""
    if a.minutes:
        s.train.minutes = a.minutes
        if not a.epochs:
            s.train.epochs = 0
    elif s.train.epochs == 0 and not s.train.minutes:
        s.train.epochs = 10


def _fine_tuned(a: argparse.Namespace) -> Trainer:
    """--from: the model with the options given applied, refused where they would change its network."""
    if a.resume:
        raise MiaError("--from starts a new run from a saved model; --resume continues the run saved in --out. "
                       "Use one of them.")
    network = {"--arch": ("architecture", a.arch), "--backbone": ("encoder", a.backbone),
               "--label-mode": ("label_mode", a.label_mode), "--pretrained": ("pretrained", a.pretrained),
               "--weights": ("weights_path", a.weights), "--config": ("config", a.config),
               "--channels": ("channels", a.channels)}
    updates = dict(object_size=a.object_size, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
                   patch_width=a.patch, patch_height=a.patch, downscale=a.downscale, val_split=a.val_split,
                   seed=a.seed, device=a.device, keep=a.keep, precision=a.precision, sparse=a.sparse)
    trainer = start_from(a.start_from, network, a.task, updates, a.device)
    _time_budget(a, trainer.settings)
    say(f"Normalisation statistics (BatchNorm) kept as {a.start_from.name} learned them: a few new images would "
        "estimate them worse.")
    return trainer


def _resumed(a: argparse.Namespace) -> Trainer:
    """--resume: the run saved in --out, with only --epochs, --minutes, --precision and --keep applied."""
    if not a.out.is_file():
        raise MiaError(f"--resume: {a.out} does not exist yet, so there is nothing to continue. "
                       "Train without --resume.")
    trainer = Trainer.load(a.out)
    s = trainer.settings
    s.update(epochs=a.epochs, precision=a.precision, keep=a.keep)
    if a.minutes and not a.epochs and s.train.epochs == 0:
        s.train.minutes = a.minutes
    done = trainer.saved_run.get("epoch", 0) if trainer.saved_run else 0
    say(f"Resuming {a.out.name} after epoch {done} of {s.train.epochs}.")
    return trainer


def _trainer(a: argparse.Namespace) -> tuple[Trainer, list[tuple], list[str]]:
    """(the trainer, every setting in its settings; the training pairs; what was chosen here, to be said)."""
    if a.start_from:  # a saved model's weights and settings, new data, a new run
        trainer = _fine_tuned(a)
        files = formats.for_settings(trainer.settings)
        return trainer, training_pairs(files, a.images, getattr(a, files.targets)), []
    files = formats.get(a.task or "segmentation")
    pairs = training_pairs(files, a.images, getattr(a, files.targets))
    if a.resume:
        return _resumed(a), pairs, []
    s, said = _new_settings(a, pairs)
    # Every option is in `s` by now: the trainer keeps its own copy, which is what it trains and saves.
    return Trainer(s), pairs, said


def _train(a: argparse.Namespace, group, quiet: bool) -> int:
    trainer, pairs, notes = _trainer(a)
    s = trainer.settings
    files = formats.for_settings(s)
    axis = a.channel_axis
    pairs, note = with_regions(pairs, a.regions, files)
    if note:
        say(note)
    val_targets = {"masks": a.val_masks, "points": a.val_points, "classes": a.val_classes}
    val_pairs, note = validation_pairs(files, a.val_images, val_targets, a.val_split is not None)
    if note:
        say(note)
    tests = test_pairs(files, a.test_images, {"masks": a.test_masks, "points": a.test_points,
                                              "classes": a.test_classes}, pairs + (val_pairs or []))
    sources = files.sources(pairs, s, lambda f: read_fit(f, s, channel_axis=axis), notes, channel_axis=axis)
    if a.start_from:
        sources, rescaled = to_model_scale(trainer, files, pairs, sources, lambda f: read_fit(f, s, True, axis),
                                           diameter=a.diameter, downscale_given=bool(a.downscale),
                                           channel_axis=axis)
        if rescaled is not None:
            say(rescaled.describe(a.start_from.name))
    # After the training images' scale is settled: the validation images are read at the same one.
    val = None if val_pairs is None else files.sources(val_pairs, s, lambda f: read_fit(f, s, channel_axis=axis),
                                                       notes, channel_axis=axis)
    for note in notes:
        say(note)
    main = group is None or group.main
    trainer.autosave_path = a.out if main else None
    record, clock = TrainingRecord(), RoundClock()
    last = _run_training(trainer, sources, val, a, record, quiet, clock)
    if not main:  # rank 0 writes the model, its record and the report
        return 0
    if trainer.model is not None:
        for line in files.after_training(trainer):
            say(line)
        report = None
        if tests:
            say(f"Scoring the saved model on the test images in {a.test_images} ...")
            targets = {"masks": a.test_masks, "points": a.test_points, "classes": a.test_classes}[files.targets]
            report, notes = score_test_folder(predictor_for_model(trainer.trained_model()), a.test_images,
                                              targets, axis)
            for note in notes:
                say(note)
        started = f"{a.start_from.name}" if a.start_from else ("resumed" if a.resume else "")
        _, lines = finish_round(trainer, clock, data_hashes(pairs), report,
                                data_hashes(tests or []).values(), started_from=started)
        trainer.save(a.out)
        record.write_csv(record_path(a.out))
        write_rounds_csv(rounds_path(a.out), trainer.rounds.rounds)
        for line in lines:
            print(line)
    if last is not None and last.reason == "time_limit":
        say(f"Time limit of {a.minutes or s.train.minutes:g} minutes reached after {last.iteration} steps.")
    if trainer.has_validation:
        for line in files.validation_report(trainer, val_pairs or pairs, lambda f: read_fit(f, s, True, axis)):
            print(line)
    print(f"Model saved to {a.out}")
    return 0


def _run_training(trainer: Trainer, sources, val, a: argparse.Namespace, record: TrainingRecord,
                  quiet: bool, clock: RoundClock) -> TrainingFinished | None:
    """Train, showing the progress; returns how the training finished (None if interrupted)."""
    s = trainer.settings
    bar = None
    max_seconds = a.minutes * 60 if a.minutes else None
    metric = s.train.metric
    last = None
    try:
        for ev in trainer.train(sources, val=val, max_seconds=max_seconds, continue_saved=a.resume):
            record.add(ev)
            clock.see(ev)
            if isinstance(ev, TrainingStarted):
                _say_started(ev, s)
                bar = progress_bar(ev.epochs * ev.steps_per_epoch or None, quiet)
            elif isinstance(ev, PlanMade):
                write(bar, f"Plan: {ev.message}")
                if ev.warning:
                    write(bar, f"Warning: {ev.warning}")
                if bar is not None and ev.timed:
                    bar.total = ev.steps
                    bar.refresh()
            elif isinstance(ev, IterationEnd) and bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=ev.epoch, loss=f"{ev.loss:.4f}", **{metric: f"{ev.metric:.3f}"}, refresh=False)
            elif isinstance(ev, EpochEnd):
                scores = "" if ev.val_metric is None else \
                    f", validation loss {ev.val_loss:.4f} {metric} {ev.val_metric:.3f}"
                scores += "" if ev.val_objects is None else f" object F1 {ev.val_objects:.3f}"
                scores += " (best)" if ev.best else ""
                write(bar, f"epoch {ev.epoch}: loss {ev.train_loss:.4f} {metric} {ev.train_metric:.3f}{scores}")
            elif isinstance(ev, TrainingFinished):
                last = ev
    except KeyboardInterrupt:
        write(bar, "Interrupted: saving the model.")
    finally:
        close(bar)
    return last


def _say_started(ev: TrainingStarted, s: Settings) -> None:
    if ev.epochs:
        say(f"Training on {ev.num_train} images ({ev.num_val} for validation), {ev.epochs} epochs of "
            f"{ev.steps_per_epoch} steps, on {ev.device}.")
    else:
        say(f"Training on {ev.num_train} images ({ev.num_val} for validation) for {ev.minutes:g} minutes, on "
            f"{ev.device}: the plan follows from the speed of the first steps.")
    if ev.processes > 1:
        say(f"Distributed training: {ev.processes} processes ({ev.backend}), each drawing its share of the "
            f"patches ({s.train.batch_size} per step each).")
    if ev.precision:
        say(f"Mixed precision: {ev.precision}.")
    if ev.note:
        say(ev.note)
    if ev.warning:
        say(f"Warning: {ev.warning}")
