"""``napari-mia evaluate``: a model's scores on labelled images it was not trained on, per image.

Scores are the application's (``Application.evaluate_item``): segmentation fg IoU, object F1 at
IoU 0.5 and AP over IoU 0.5-0.95; detection point F1 and count error; classification accuracy and
the confusion matrix. Every image weighs the same in the means, whatever its size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.errors import MiaError
from ..workflows import formats
from ..workflows.evaluation import evaluate_folder, write_scores
from .options import MASKS_HELP, add_model_option, add_predictor_run_options, predictor_for
from .output import follow, print_table, skipped_exit

EVALUATE_EPILOG = """\
Prints one row per image and the means, and writes them as CSV to --out (the last row is the mean).

examples:
  napari-mia evaluate --model nuclei.pt --images test/images --masks test/masks
  napari-mia evaluate --model nuclei.pt --images big/images --masks big/masks --diameter auto
  napari-mia evaluate --model cells.pt --images test/ --points test/points.csv
  napari-mia evaluate --model treated.pt --images test/ --classes test/classes.csv --out scores.csv
"""


def add_parser(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("evaluate", help="score a model on labelled images, per image (segmentation, detection, "
                                        "classification)", epilog=EVALUATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_option(e)
    e.add_argument("--images", required=True, type=Path, help="folder of images the model was not trained on")
    e.add_argument("--masks", type=Path, help=MASKS_HELP)
    e.add_argument("--points", type=Path, help="detection: CSV with columns name,y,x[,class]")
    e.add_argument("--classes", type=Path, help="classification: CSV with columns name,class")
    e.add_argument("--out", type=Path, default=Path("evaluation.csv"),
                   help="CSV of the scores per image (default: evaluation.csv)")
    e.add_argument("--tolerance", type=float,
                   help="detection: how close (px) a point found must be to a true one to match it (default: "
                        "half the objects' diameter)")
    add_predictor_run_options(e)
    return e


def run(a: argparse.Namespace) -> int:
    model, predictor = predictor_for(a)
    s = model.settings
    files = formats.for_settings(s)
    targets = getattr(a, files.targets)
    if not targets:
        raise MiaError(f"This {s.model.task} model is evaluated against --{files.targets}: "
                       f"{files.missing_targets.split(' needs ', 1)[-1]}")
    report = follow(evaluate_folder(predictor, a.images, targets, a.tolerance, a.channel_axis), a.quiet)
    print_table(report.rows, report.columns)
    for line in report.summary:
        print(line)
    out = write_scores(a.out, report)
    print(f"Wrote the scores of {len(report.rows)} image(s) to {out}")
    return skipped_exit(report.skipped)
