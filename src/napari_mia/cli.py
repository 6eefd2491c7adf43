"""Command line: ``napari-mia train | predict | measure | export | demo``.

The ``train`` and ``predict`` options are a contract that scripts rely on:
add options, never change or remove one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine.errors import MiaError, OutputError

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
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_channel_axis_option(p: argparse.ArgumentParser) -> None:
    """--channel-axis: shared by train, predict and evaluate."""
    p.add_argument("--channel-axis", type=int, metavar="A",
                   help="multi-channel images: the axis of the files that holds the channels, 0 for (C, H, W), "
                        "-1 for (H, W, C) (default: last, or first when the first axis has as many entries as "
                        "the channels and the last does not)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="napari-mia", description="Train and apply napari-mia models without a GUI.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on images and masks", epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    from .engine.applications import names

    t.add_argument("--task", choices=list(names()),
                   help="what to learn: segmentation from --masks, detection from --points, classification (one "
                        "class per image) from --classes (default: segmentation, or the --from model's)")
    # Required unless --job gives it (checked in main, with argparse's own words).
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
    t.add_argument("--channels", type=_positive_int, metavar="N",
                   help="channels of the images: 1 (Mono), 3 (Color) or any other count, e.g. 2 for two "
                        "fluorescence channels (default: 3 for RGB files, else 1)")
    add_channel_axis_option(t)
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
    t.add_argument("--seed", type=int, help="random seed (default: 0)")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    from ._evaluate_cli import add_precision_option

    add_precision_option(t)
    t.add_argument("--resume", action="store_true",
                   help="continue the training saved in --out after a crash or kill (it is saved after every "
                        "epoch, with its settings: only --epochs and --minutes apply)")
    from ._from_cli import add_train_options

    add_train_options(t)
    from ._labels_cli import add_label_options

    add_label_options(t)

    pr = sub.add_parser("predict", help="predict label images with a trained model")
    pr.add_argument("--model", required=True, type=Path, help="model file written by train or the napari widget")
    pr.add_argument("--images", required=True, type=Path, help="folder of images to predict")
    pr.add_argument("--out", required=True, type=Path,
                    help="folder for the label TIFFs (same names as the images; uint16 instance ids in instance "
                         "mode, class ids otherwise); a detection model writes points.csv there, a classification "
                         "model classes.csv (name,class,probability,p_<class>...)")
    from ._evaluate_cli import TILE_HELP, tile_value

    pr.add_argument("--tile", type=tile_value, default="auto", metavar="N|auto", help=TILE_HELP)
    pr.add_argument("--min-size", type=int, default=0, help="remove objects smaller than this many pixels")
    pr.add_argument("--fill-holes", action="store_true", help="fill holes inside predicted objects")
    pr.add_argument("--no-split", action="store_true",
                    help="instance mode: keep touching objects together (one object per connected blob)")
    pr.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the model's, else auto)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    from ._evaluate_cli import add_evaluate_parser, add_prediction_options

    add_prediction_options(pr)
    from ._results_cli import add_measure_parser, add_predict_flag  # Results (issue #19): in its own module

    add_predict_flag(pr)
    add_measure_parser(sub)

    from ._export_cli import add_export_parser

    add_export_parser(sub)
    add_evaluate_parser(sub)

    p.train_parser = t  # main() says what train is missing in argparse's words
    d = sub.add_parser("demo", help="train briefly on the bundled sample data and show or print the result")
    d.add_argument("--headless", action="store_true", help="do not open napari even if a display is available")
    d.add_argument("--minutes", type=float, default=1.0, help="training time of the headless demo (default: 1)")
    d.add_argument("--out", type=Path, default=Path("demo_output"), help="folder for the headless demo's files")
    return p


def _settings_from_args(a):
    from .engine import applications
    from .engine.settings import Settings

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
    return s


def _time_budget(a, s) -> None:
    """--minutes alone: the time sets the plan (as many steps as fit, validated along the way); with
    --epochs too, whichever ends first."""
    if a.minutes:
        s.train.minutes = a.minutes
        if not a.epochs:
            s.train.epochs = 0
    elif s.train.epochs == 0 and not s.train.minutes:
        s.train.epochs = 10


def _training_pairs(a, app):
    """[(image file, targets)]: the application reads its own input option (--masks, --points, --classes)."""
    path = getattr(a, app.cli_input)
    if not path:
        raise MiaError(app.cli_missing_input)
    return app.cli_read_targets(a.images, path)


# The validation counterpart of each application's input option (Application.cli_input).
_VAL_INPUTS = {"masks": "--val-masks", "points": "--val-points", "classes": "--val-classes"}


def _validation_pairs(a, app) -> list[tuple] | None:
    """[(image file, targets)] of --val-images, read as the training ones are; None: a random split."""
    given = [flag for key, flag in _VAL_INPUTS.items() if getattr(a, f"val_{key}", None)]
    wanted = _VAL_INPUTS[app.cli_input]
    if a.val_images is None:
        if given:
            raise MiaError(f"{given[0]} needs --val-images DIR: the folder of the validation images.")
        return None
    other = [flag for flag in given if flag != wanted]
    if other:
        raise MiaError(f"{other[0]} does not fit {app.name}: its validation targets are given with {wanted}.")
    path = getattr(a, f"val_{app.cli_input}")
    if not path:
        raise MiaError(f"--val-images needs {wanted} for {app.name}: the validation images' targets, given as "
                       f"for --{app.cli_input}.")
    pairs = app.cli_read_targets(a.val_images, path)
    if not pairs:  # a CSV that names none of the images
        raise MiaError(f"No validation image in {a.val_images} has targets in {path}.")
    if a.val_split is not None:
        print("--val-split is not used: the --val-images are the validation set.", file=sys.stderr)
    return pairs


def _colour(image, s):
    """RGBA files lose their alpha for a 3-channel model."""
    return image[..., :3] if s.model.channels == 3 and image.ndim == 3 and image.shape[-1] == 4 else image


def _read_fit(f, s, quiet: bool = False, channel_axis: int | None = None):
    """A training image as the model reads it (channels last, opaque alpha dropped, said on stderr unless
    `quiet`)."""
    from .engine.images import fit_channels, read_image

    image, notes = fit_channels(read_image(f), s.model.channels, f.name, channel_axis)
    for note in notes if not quiet else ():
        print(note, file=sys.stderr)
    return _colour(image, s)


def _guess_channels(image) -> int:
    return image.shape[-1] if image.ndim == 3 and image.shape[-1] in (3, 4) else 1


def _train_channels(a, first) -> int:
    """The model's channels: --channels, else the size of --channel-axis in the first image, else 1 or 3."""
    from .engine.images import channels_last, fit_channels, read_image

    if a.channels:
        return a.channels
    image = read_image(first)
    if a.channel_axis is not None:
        return int(channels_last(image, a.channel_axis, first.name).shape[-1])
    # An opaque alpha carries nothing: an RGBA file is a colour image.
    return _guess_channels(fit_channels(image, 3)[0])


def train(a) -> int:
    """Train in this process, or as one of several started by torchrun (only rank 0 prints and writes)."""
    import contextlib
    import os

    from .engine import distributed

    group = distributed.init_from_env(a.device or "auto")
    quiet = contextlib.ExitStack()
    if group is not None and not group.main:
        # The other processes train silently: rank 0 says everything once. Errors still reach the terminal
        # (``main`` prints them after this returns or raises).
        devnull = quiet.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - closed by the ExitStack
        quiet.enter_context(contextlib.redirect_stdout(devnull))
        quiet.enter_context(contextlib.redirect_stderr(devnull))
        a.quiet = True
    with quiet:
        rc = _train(a, group)
    if group is not None:
        distributed.finish()
    return rc


def _train(a, group) -> int:
    from .engine import applications
    from .engine.events import EpochEnd, IterationEnd, PlanMade, TrainingFinished, TrainingStarted
    from .engine.record import TrainingRecord, record_path
    from .engine.trainer import Trainer

    pairs = None if a.start_from else _training_pairs(a, applications.get(a.task or "segmentation"))
    said: list[str] = []  # settings chosen here, said once the images have been read
    if a.start_from:  # a saved model's weights and settings, new data, a new run
        from ._from_cli import start_from

        trainer, pairs = start_from(a, _training_pairs)
        s = trainer.settings
        _time_budget(a, s)
    elif a.resume:
        if not a.out.is_file():
            raise MiaError(f"--resume: {a.out} does not exist yet, so there is nothing to continue. "
                           "Train without --resume.")
        trainer = Trainer.load(a.out)
        s = trainer.settings
        s.update(epochs=a.epochs, precision=a.precision, keep=a.keep)
        if a.minutes and not a.epochs and s.train.epochs == 0:
            s.train.minutes = a.minutes
        done = trainer.saved_run.get("epoch", 0) if trainer.saved_run else 0
        print(f"Resuming {a.out.name} after epoch {done} of {s.train.epochs}.", file=sys.stderr)
    else:
        s = _settings_from_args(a)
        if not a.config or a.channels:
            s.model.channels = _train_channels(a, pairs[0][0])
        app = applications.get(s.model.task)
        if not a.label_mode and not a.config:  # a settings file names its label mode
            guessed = app.cli_label_mode(pairs, bool(s.data.sparse))
            if guessed is not None:
                s.update(label_mode=guessed[0])
                said.append(guessed[1])
        app.cli_prepare_settings(s, pairs, given_config=bool(a.config))
        # Every option is in `s` by now: the trainer keeps its own copy, which is what it trains and saves.
        trainer = Trainer(s)
        s = trainer.settings
    from ._labels_cli import with_regions

    app = applications.for_settings(s)
    pairs = with_regions(a, pairs, app)
    val_pairs = _validation_pairs(a, app)
    notes: list[str] = said
    axis = a.channel_axis
    sources = app.cli_sources(pairs, s, lambda f: _read_fit(f, s, channel_axis=axis), notes, channel_axis=axis)
    if a.start_from:
        from ._from_cli import to_model_scale

        sources = to_model_scale(a, trainer, pairs, sources, lambda f: _read_fit(f, s, True, axis))
    # After the training images' scale is settled: the validation images are read at the same one.
    val = None if val_pairs is None else app.cli_sources(val_pairs, s, lambda f: _read_fit(f, s, channel_axis=axis),
                                                         notes, channel_axis=axis)
    for note in notes:
        print(note, file=sys.stderr)
    main = group is None or group.main
    trainer.autosave_path = a.out if main else None
    record = TrainingRecord()
    bar = None
    max_seconds = a.minutes * 60 if a.minutes else None
    metric = s.train.metric
    last = None
    try:
        for ev in trainer.train(sources, val=val, max_seconds=max_seconds, continue_saved=a.resume):
            record.add(ev)
            if isinstance(ev, TrainingStarted):
                if ev.epochs:
                    print(f"Training on {ev.num_train} images ({ev.num_val} for validation), {ev.epochs} epochs of "
                          f"{ev.steps_per_epoch} steps, on {ev.device}.", file=sys.stderr)
                else:
                    print(f"Training on {ev.num_train} images ({ev.num_val} for validation) for {ev.minutes:g} "
                          f"minutes, on {ev.device}: the plan follows from the speed of the first steps.",
                          file=sys.stderr)
                if ev.processes > 1:
                    print(f"Distributed training: {ev.processes} processes ({ev.backend}), each drawing its share "
                          f"of the patches ({s.train.batch_size} per step each).", file=sys.stderr)
                if ev.precision:
                    print(f"Mixed precision: {ev.precision}.", file=sys.stderr)
                if ev.note:
                    print(ev.note, file=sys.stderr)
                if ev.warning:
                    print(f"Warning: {ev.warning}", file=sys.stderr)
                bar = _bar(ev.epochs * ev.steps_per_epoch or None, a.quiet)
            elif isinstance(ev, PlanMade):
                _write(bar, f"Plan: {ev.message}")
                if ev.warning:
                    _write(bar, f"Warning: {ev.warning}")
                if bar is not None and ev.timed:
                    bar.total = ev.steps
                    bar.refresh()
            elif isinstance(ev, IterationEnd) and bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=ev.epoch, loss=f"{ev.loss:.4f}", **{metric: f"{ev.metric:.3f}"}, refresh=False)
            elif isinstance(ev, EpochEnd):
                val = "" if ev.val_metric is None else f", validation loss {ev.val_loss:.4f} {metric} {ev.val_metric:.3f}"
                val += "" if ev.val_objects is None else f" object F1 {ev.val_objects:.3f}"
                val += " (best)" if ev.best else ""
                _write(bar, f"epoch {ev.epoch}: loss {ev.train_loss:.4f} {metric} {ev.train_metric:.3f}{val}")
            elif isinstance(ev, TrainingFinished):
                last = ev
    except KeyboardInterrupt:
        _write(bar, "Interrupted: saving the model.")
    finally:
        if bar is not None:
            bar.close()
    if not main:  # rank 0 writes the model, its record and the report
        return 0
    if trainer.model is not None:
        for line in app.cli_after_training(trainer):
            print(line, file=sys.stderr)
    if trainer.model is not None:
        trainer.save(a.out)
        record.write_csv(record_path(a.out))
    if last is not None and last.reason == "time_limit":
        print(f"Time limit of {a.minutes or s.train.minutes:g} minutes reached after {last.iteration} steps.",
              file=sys.stderr)
    if trainer.has_validation:
        for line in app.cli_validation_report(trainer, val_pairs or pairs, lambda f: _read_fit(f, s, True, axis)):
            print(line)
    print(f"Model saved to {a.out}")
    return 0


def predict(a) -> int:
    from ._evaluate_cli import predictor_for
    from .engine.images import list_images

    trainer, predictor = predictor_for(a)
    files = list_images(a.images)
    try:
        a.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MiaError(f"Cannot create the output folder {a.out}: {e.strerror}.") from e
    # What is written (label TIFFs, points.csv, classes.csv) is the application's.
    print(trainer.app.cli_predict(predictor, a, lambda work: _predict_each(files, predictor, a, work)))
    return _skipped_exit(a)


# The output folder cannot be written: fatal for the whole folder, not a reason to skip one image.
_OutputError = OutputError


def _predict_each(files, predictor, a, work) -> None:
    """work(file, image) for each file; one that cannot be read or predicted is skipped, not fatal.

    An empty or damaged file, or an image the model refuses (NaN, wrong channels)
    must not cost the rest of the folder. The skipped files and why are kept in
    ``a.skipped`` for ``_skipped_exit``. Errors writing the output stay fatal
    (every later file would fail the same way).
    """
    from .engine.images import fit_channels, read_image

    a.skipped = []
    bar = _bar(len(files), a.quiet)
    try:
        for f in files:
            try:
                image, notes = fit_channels(read_image(f), predictor.settings.model.channels, f.name,
                                            getattr(a, "channel_axis", None))
                for note in notes:
                    _write(bar, note)
                image = _colour(image, predictor.settings)
            except MiaError as e:
                image = None
                a.skipped.append((f.name, str(e)))
                _write(bar, f"Skipped {f.name}: {e}")
            if image is not None:
                try:
                    work(f, image)
                    if predictor.diameter == "auto":
                        found, scale = predictor.last_diameter, predictor.last_scale
                        own = scale == predictor.settings.data.downscale
                        _write(bar, f"{f.name}: no objects to measure; predicted at the model's own scale" if not found
                               else f"{f.name}: objects about {found:.0f} px across (estimated): " + (
                                   "the model's own scale" if own else f"scaled by {scale:.3g} for the model"))
                except _OutputError:
                    raise
                except MiaError as e:
                    a.skipped.append((f.name, str(e)))
                    _write(bar, f"Skipped {f.name}: {e}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _skipped_exit(a) -> int:
    """0 if every image was predicted; otherwise list the skipped ones and return 2 (the error code)."""
    if not a.skipped:
        return 0
    print(f"napari-mia: error: {len(a.skipped)} image(s) were skipped, the others were predicted:", file=sys.stderr)
    for name, why in a.skipped:
        print(f"  {name}: {why}", file=sys.stderr)
    return 2


def _bar(total: int, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def _write(bar, text: str) -> None:
    if bar is not None:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _check_train_required(t: argparse.ArgumentParser, a) -> None:
    """--images and --out are required, unless --job gives them (the error is argparse's own)."""
    missing = [] if a.job else [flag for flag, given in (("--images", a.images), ("--out", a.out)) if given is None]
    if missing:
        t.error(f"the following arguments are required: {', '.join(missing)}")


def _fill_from_job(a) -> None:
    """--job DIR: the job's images, targets, validation images and settings fill the options not given here,
    so the job trains through the same path as the options would (its README shows them)."""
    from .engine.job import MODEL_FILE, job_arguments

    for dest, value in job_arguments(a.job).items():
        if getattr(a, dest, None) is None:
            setattr(a, dest, value)
    if a.out is None:
        a.out = a.job / MODEL_FILE


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if a.command == "train":
        _check_train_required(p.train_parser, a)
    try:
        if a.command == "train":
            if a.job:
                _fill_from_job(a)
            return train(a)
        if a.command == "predict":
            rc = predict(a)
            if a.measure:  # also when some images were skipped (rc 2): the others are measured
                from ._results_cli import measure_predictions

                rc = max(rc, measure_predictions(a))
            return rc
        if a.command == "measure":
            from ._results_cli import measure

            return measure(a)
        if a.command == "export":
            from ._export_cli import export

            return export(a)
        if a.command == "evaluate":
            from ._evaluate_cli import evaluate

            return evaluate(a)
        from .demo import run_demo

        return run_demo(headless=a.headless, minutes=a.minutes, out=a.out)
    except MiaError as e:
        print(f"napari-mia: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
