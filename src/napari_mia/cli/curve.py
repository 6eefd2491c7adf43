"""``napari-mia curve``: will more labels help? The same training on nested subsets of the labelled images
(1/8, 1/4, 1/2, all), each run as ``napari-mia train`` runs it and scored on test images as ``napari-mia
evaluate`` scores, then a learning curve fitted through the scores and its forecast for twice the labels
(``workflows.curve``, ``engine.curve``)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from ..engine import applications
from ..engine.errors import MiaError
from ..workflows import formats
from ..workflows.curve import (CurvePoint, fit_points, nested_subsets, plot_curve, subset_sizes, write_curve_csv,
                               write_subset)
from ..workflows.evaluation import write_scores
from ..workflows.prediction import load_model, predictor_for_model
from ..workflows.rounds import score_test_folder
from ..workflows.training_inputs import folder_pairs, training_pairs
from .options import MASKS_HELP, add_channel_axis_option, positive_int
from .output import say

CURVE_EPILOG = """\
Trains one model per subset (nested: each holds the smaller ones' images), for
--minutes each, with the defaults of napari-mia train, and scores each on the
test images. Writes to --out: curve.csv (one row per subset: images, labels,
test scores), curve.png (the scores, the fitted curve and the forecast), and
per subset its images, model and test scores per image (test_scores.csv).
Prints the forecast: what twice the labels would give on the test images, with
an 80% interval from resampling the test images and the curve's residuals.
How far the forecast was right on held-out data: docs/benchmarks.md. Ctrl-C
stops the curve; what the subsets scored until then is written.

Labels are counted as objects (segmentation, detection) or images
(classification). At least 4 labelled images are needed (classification: 4 per
class), and test images that are not among the training images.

examples:
  napari-mia curve --images imgs/ --masks masks/ --test-images test/ \\
      --test-masks test_masks/ --minutes 2 --out curve/
  napari-mia curve --task detection --images imgs/ --points points.csv \\
      --test-images test/ --test-points test_points.csv --minutes 2 --out curve/
  napari-mia curve --from nuclei --images mine/ --masks mine_masks/ \\
      --test-images test/ --test-masks test_masks/ --minutes 1 --out curve/
      (how many labels fine-tuning the nuclei starter needs)
"""

TARGETS = ("masks", "points", "classes")


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("curve", help="will more labels help? train on nested subsets, score each on test images, "
                                     "forecast twice the labels", epilog=CURVE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--task", choices=list(applications.names()),
                   help="segmentation from --masks, detection from --points, classification from --classes "
                        "(default: segmentation, or the --from model's)")
    c.add_argument("--images", required=True, type=Path, help="folder of labelled images")
    c.add_argument("--masks", type=Path, help=MASKS_HELP)
    c.add_argument("--points", type=Path, help="detection: CSV with columns name,y,x[,class]")
    c.add_argument("--classes", type=Path, help="classification: CSV with columns name,class")
    c.add_argument("--test-images", required=True, type=Path, metavar="DIR",
                   help="folder of test images, never trained on (targets: --test-masks, --test-points or "
                        "--test-classes)")
    c.add_argument("--test-masks", type=Path, metavar="DIR", help="segmentation: label masks of the --test-images")
    c.add_argument("--test-points", type=Path, metavar="CSV", help="detection: CSV of the --test-images' points")
    c.add_argument("--test-classes", type=Path, metavar="CSV", help="classification: CSV of the --test-images' "
                                                                     "classes")
    c.add_argument("--minutes", type=float,
                   help="training minutes of each subset, planned as napari-mia train --minutes plans them "
                        "(default: 2 unless --epochs is given; four subsets: about 4x this in all, plus scoring)")
    c.add_argument("--epochs", type=positive_int,
                   help="passes over each subset's images instead (with --minutes too: whichever ends first)")
    c.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="folder for curve.csv, curve.png and the subsets' models")
    c.add_argument("--config", type=Path,
                   help="settings file (YAML/JSON) for every subset's training, as train --config reads it")
    c.add_argument("--from", dest="start_from", type=Path, metavar="MODEL",
                   help="fine-tune this model on each subset, as napari-mia train --from does (nuclei: the "
                        "nuclei starter)")
    c.add_argument("--label-mode", choices=["classes", "instances"],
                   help="segmentation: as napari-mia train (default: guessed once from all the masks)")
    c.add_argument("--channels", type=positive_int, metavar="N", help="channels of the images (as train)")
    add_channel_axis_option(c)
    c.add_argument("--seed", type=int, default=0, help="draws the subsets and seeds each training (default: 0)")
    c.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    return c


def _task(a: argparse.Namespace) -> str:
    """The application: --task, else the --from model's, checked against the targets given."""
    given = [k for k in TARGETS if getattr(a, k)]
    task = a.task
    if a.start_from:
        model_task = load_model(a.start_from).settings.model.task
        if task and task != model_task:
            raise MiaError(f"{a.start_from.name} is a {model_task} model; it cannot be trained for {task}.")
        task = model_task
    task = task or "segmentation"
    wanted = formats.get(task).targets
    wrong = [k for k in given if k != wanted]
    if wrong:
        whose = f"{a.start_from.name} is a {task} model" if a.start_from else f"{task.capitalize()}"
        raise MiaError(f"{whose}: it learns from --{wanted}, not --{wrong[0]}. "
                       f"{'Choose a model of that application, or give' if a.start_from else 'Give'} --{wanted}.")
    return task


def run(a: argparse.Namespace) -> int:
    if a.minutes is not None and a.minutes <= 0:
        raise MiaError(f"--minutes is the training time of each subset: more than 0, not {a.minutes:g}.")
    if a.minutes is None and not a.epochs:
        a.minutes = 2.0
    task = _task(a)
    files = formats.get(task)
    kind = files.targets
    targets = getattr(a, kind)
    pairs = training_pairs(files, a.images, targets)
    tests = folder_pairs(files, a.test_images, {k: getattr(a, f"test_{k}") for k in TARGETS}, "test", "test")
    names = [Path(p[0]).name for p in pairs]
    if {Path(p[0]).resolve() for p in tests} & {Path(p[0]).resolve() for p in pairs}:
        raise MiaError("A test image is also a training image: keep the test images in a folder of their own.")
    groups = [p[1] for p in pairs] if task == "classification" else None
    subsets = _subsets(names, a.seed, groups)
    extra = _fixed_options(a, task, files, pairs)
    key, words = headline_of(task)
    say(f"Learning curve: {len(subsets)} trainings on {', '.join(str(len(s)) for s in subsets)} of the "
        f"{len(names)} labelled images, {_length(a)} each, scored on {len(tests)} test images.")
    a.out.mkdir(parents=True, exist_ok=True)
    points = []
    for i, subset in enumerate(subsets):
        folder = a.out / f"subset_{len(subset):04d}"
        given = write_subset(folder, pairs, subset, targets, kind)
        say(f"Subset {i + 1} of {len(subsets)}: {len(subset)} images.")
        point = _train_and_score(a, folder, given, kind, extra, key)
        if point is None:  # Ctrl-C: the curve stops with what it has
            break
        points.append(point)
        say(f"  {point.images} images, {point.objects or '-'} objects: test {words} {point.score:.3f}")
    return _report(a, points, len(subsets), task, words)


def _report(a, points: list[CurvePoint], planned: int, task: str, words: str) -> int:
    """Fit, write curve.csv and curve.png, print the points and the forecast (or why there is none)."""
    # Objects where every subset counted them (not class-mode segmentation, not classification), else images.
    objects = task != "classification" and bool(points) and all(p.objects for p in points)
    unit = "labelled objects" if objects else "labelled images"
    for p in points:
        p.labels = float(p.objects if objects else p.images)
    fit, said = None, ""
    try:
        fit = fit_points(points, a.seed)
        said = fit.words(words, unit)
    except MiaError as e:  # what was trained is still written
        said = f"No forecast: {e}"
    if points:
        write_curve_csv(a.out / "curve.csv", points, fit, unit)
        plot_curve(a.out / "curve.png", points, fit, words, unit, title=said)
    for p in points:
        print(f"{p.images:5d} images, {p.labels:7g} {unit.split()[1]}: test {words} {p.score:.3f}")
    print(said)
    if fit is not None and fit.flat and a.minutes:  # more labels cannot help a model with no time to learn them
        print(f"Each subset trained for {a.minutes:g} minutes: with more time per training the curve may rise "
              f"further (try --minutes {2 * a.minutes:g}).")
    if points:
        print(f"Wrote {a.out / 'curve.csv'} and {a.out / 'curve.png'}")
    if len(points) < planned:
        print(f"Interrupted: {len(points)} of the {planned} subsets were trained and scored.")
        return 130
    return 0


def headline_of(task: str) -> tuple[str, str]:
    return applications.get(task).headline_scores[-1]


def _subsets(names, seed, groups):
    if groups is None:
        return nested_subsets(names, seed)
    classes = len(set(groups))
    if classes < 2:
        raise MiaError(f"Classification learns to tell classes apart: the images have {classes} class; give "
                       "images of at least 2 classes.")
    # Every subset must hold every class: the smallest subsets are dropped where they would be too small.
    sizes = [k for k in subset_sizes(len(names)) if k >= classes]
    if len(sizes) < 3:
        raise MiaError(f"A classification curve needs every class in each of at least 3 nested subsets: with "
                       f"{classes} classes, at least {4 * classes} labelled images; there are {len(names)}.")
    return nested_subsets(names, seed, groups, fractions=[k / len(names) for k in sizes])


def _length(a) -> str:
    if a.epochs and a.minutes:
        return f"{a.epochs} epochs or {a.minutes:g} minutes"
    return f"{a.epochs} epochs" if a.epochs else f"{a.minutes:g} minutes"


def _fixed_options(a, task, files, pairs) -> list[str]:
    """The train options every subset shares, decided once on all the images (the label mode guessed from all
    the masks, not from each subset's)."""
    out = ["--seed", str(a.seed)]
    for flag, value in (("--device", a.device), ("--channels", a.channels), ("--channel-axis", a.channel_axis),
                        ("--epochs", a.epochs), ("--from", a.start_from), ("--config", a.config)):
        if value is not None:
            out += [flag, str(value)]
    if a.minutes:
        out += ["--minutes", str(a.minutes)]
    if a.start_from:
        return out
    out += ["--task", task]
    mode = a.label_mode
    if task == "segmentation" and mode is None and not a.config:  # a settings file names its label mode
        guessed = files.guess_label_mode(pairs, False)
        mode = guessed[0] if guessed else None
        if guessed:
            say(guessed[1])
    if mode:
        out += ["--label-mode", mode]
    return out


def _train_and_score(a, folder: Path, given: dict, kind: str, extra: list[str], key: str) -> CurvePoint | None:
    """Train one subset as ``napari-mia train`` does and score it on the test images; None after a Ctrl-C (train
    saves an interrupted run and returns, which must stop the curve, not count as a point)."""
    from . import build_parser, train  # the train command itself: each subset trains as the user's train does

    model_path = folder / "model.pt"
    argv = ["train", "--images", str(given["images"]), f"--{kind}", str(given[kind]), "--out", str(model_path),
            *extra, *(["--quiet"] if a.quiet else [])]
    if _interrupted(lambda: train.run(build_parser().parse_args(argv))):
        return None
    model = load_model(model_path, device=a.device)
    report, notes = score_test_folder(predictor_for_model(model), a.test_images, getattr(a, f"test_{kind}"),
                                      a.channel_axis)
    for note in notes:  # skipped or rescaled test images
        say(note)
    write_scores(folder / "test_scores.csv", report)
    last = model.rounds.rounds[-1] if model.rounds.rounds else None
    images = len(list(given["images"].iterdir()))
    per_image = [float("nan") if r.get(key) is None else float(r[key]) for r in report.rows]
    return CurvePoint(images, float(images), float(report.means.get(key, float("nan"))), dict(report.means),
                      per_image, last.seconds if last else 0.0, last.steps if last else 0, str(model_path),
                      objects=last.objects if last is not None else None)


def _interrupted(work) -> bool:
    """work(), telling whether Ctrl-C was pressed during it (caught inside it or not)."""
    pressed = []

    def on_ctrl_c(signum, frame):
        pressed.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        work()
    except KeyboardInterrupt:
        pressed.append(True)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    return bool(pressed)
