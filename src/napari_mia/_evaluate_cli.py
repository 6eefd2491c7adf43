"""``napari-mia evaluate``: a model's scores on labelled images it was not trained on, per image.

Scores are the application's (``Application.evaluate_item``): segmentation fg IoU, object F1 at
IoU 0.5 and AP over IoU 0.5-0.95; detection point F1 and count error; classification accuracy and
the confusion matrix. Every image weighs the same in the means, whatever its size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EVALUATE_EPILOG = """\
Prints one row per image and the means, and writes them as CSV to --out (the last row is the mean).

examples:
  napari-mia evaluate --model nuclei.pt --images test/images --masks test/masks
  napari-mia evaluate --model nuclei.pt --images big/images --masks big/masks --diameter auto
  napari-mia evaluate --model cells.pt --images test/ --points test/points.csv
  napari-mia evaluate --model treated.pt --images test/ --classes test/classes.csv --out scores.csv
"""


def diameter_value(text: str):
    """--diameter: a number of pixels, 'auto', or 'off' (the model's own scale)."""
    if text.strip().lower() in ("auto", "off"):
        return text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the diameter must be positive, got {text}")
    return value


def tile_value(text: str):
    """--tile: 'auto', or a number of pixels as it always was (0: the whole image in one pass)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', got '{text}'") from None


TILE_HELP = ("tile size for large images: 'auto' predicts an image whole when the network's memory for it fits (a "
             "quarter of the free RAM, at most 4 GiB, or half the free GPU memory), else in as few tiles as fit; "
             "N: N x N tiles overlapping by 128 px; 0: always whole (default: auto)")


def add_prediction_options(p: argparse.ArgumentParser) -> None:
    """--diameter, --tta, --keep and --channel-axis: shared by predict and evaluate."""
    from .cli import add_channel_axis_option

    add_channel_axis_option(p)
    p.add_argument("--diameter", type=diameter_value, metavar="D|auto|off",
                   help="the objects' typical diameter in these images, in pixels: each image is rescaled so its "
                        "objects have the size the model was trained on (results keep the image's size); 'auto' "
                        "estimates it per image; 'off': the model's own scale (default: 'auto' for segmentation "
                        "models that know their objects' size, else the model's own scale)")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the predictions of the 8 flips and 90-degree rotations "
                        "(smoother results, 8x the time)")
    add_precision_option(p)
    p.add_argument("--keep", choices=["best", "last"],
                   help="which weights to use when the file holds both: the best validation epoch's (default) or "
                        "the last epoch's")


def add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "on", "off"],
                   help="mixed precision: auto = on CUDA GPUs (bfloat16, or float16 with loss scaling), off "
                        "elsewhere; on = also on the CPU (bfloat16, where it has the instructions for it: "
                        "AVX-512 or newer; float32 otherwise, said) and Apple GPUs; off = float32 (default: the "
                        "model's setting, auto)")


def add_evaluate_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="score a model on labelled images, per image (segmentation, detection, "
                                        "classification)", epilog=EVALUATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, type=Path, help="model file written by train or the napari widget")
    e.add_argument("--images", required=True, type=Path, help="folder of images the model was not trained on")
    e.add_argument("--masks", type=Path, help="segmentation: folder of label masks, same file names as the images")
    e.add_argument("--points", type=Path, help="detection: CSV with columns name,y,x[,class]")
    e.add_argument("--classes", type=Path, help="classification: CSV with columns name,class")
    e.add_argument("--out", type=Path, default=Path("evaluation.csv"),
                   help="CSV of the scores per image (default: evaluation.csv)")
    e.add_argument("--tolerance", type=float,
                   help="detection: how close (px) a point found must be to a true one to match it (default: "
                        "half the objects' diameter)")
    e.add_argument("--tile", type=tile_value, default="auto", metavar="N|auto", help=TILE_HELP)
    e.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the model's, else auto)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    add_prediction_options(e)


def _load(a):
    """The model, on the asked device, with the asked weights kept."""
    from .engine.trainer import Trainer

    trainer = Trainer.load(a.model)
    if a.keep:
        trainer.settings.train.keep = a.keep
    if getattr(a, "precision", None):
        trainer.settings.train.precision = a.precision
    if getattr(a, "device", None):
        from .engine.models import pick_device

        trainer.device = pick_device(a.device)
        trainer.model.to(trainer.device)
    return trainer


def predictor_for(a):
    """(trainer, predictor) from the predict/evaluate options."""
    trainer = _load(a)
    diameter = trainer.app.default_diameter(trainer.settings) if a.diameter is None else a.diameter
    return trainer, trainer.predictor(tile=a.tile or None, diameter=None if diameter == "off" else diameter,
                                      tta=a.tta)


def evaluate(a) -> int:
    from .cli import _predict_each, _skipped_exit
    from .engine.applications.base import write_csv
    from .engine.errors import MiaError

    trainer, predictor = predictor_for(a)
    app, s = trainer.app, trainer.settings
    path = getattr(a, app.cli_input)
    if not path:
        raise MiaError(f"This {s.model.task} model is evaluated against --{app.cli_input}: "
                       f"{app.cli_missing_input.split(' needs ', 1)[-1]}")
    items = app.cli_read_targets(a.images, path)
    if not items:
        raise MiaError(f"No labelled images found in {a.images}.")
    rows = []
    targets = dict(items)

    def one(f, image):
        row = {"name": f.name, **app.evaluate_item(predictor, image, targets[f], s, a.tolerance)}
        if predictor.last_diameter is not None:
            row["diameter_px"] = round(predictor.last_diameter, 1)
        rows.append(row)

    # Read, predict and skip unreadable or refused images as predict does.
    _predict_each(list(targets), predictor, a, one)
    if not rows:
        raise MiaError("No image could be evaluated (see the messages above).")
    columns = ["name", *app.evaluate_columns, *(["diameter_px"] if "diameter_px" in rows[0] else [])]
    extra = [k for k in rows[0] if k not in columns and not k.startswith("_")]
    columns += extra
    width = max(len(r["name"]) for r in rows)
    print(f"{'image':<{width}}  " + "  ".join(f"{c:>8}" for c in columns[1:]))
    for r in rows:
        print(f"{r['name']:<{width}}  " + "  ".join(_cell(r.get(c), 8) for c in columns[1:]))
    for line in app.evaluate_summary(rows, s):
        print(line)
    from .engine.evaluate import mean_scores

    means = mean_scores([{k: v for k, v in r.items() if k in columns} for r in rows])
    table = [[_csv(r.get(c)) for c in columns] for r in rows] + [["mean"] + [_csv(means.get(c)) for c in columns[1:]]]
    out = write_csv(a.out, columns, table)
    print(f"Wrote the scores of {len(rows)} image(s) to {out}")
    return _skipped_exit(a)


def _cell(v, width: int) -> str:
    if isinstance(v, float):
        return f"{v:>{width}.3f}"
    return f"{'' if v is None else v!s:>{width}}"


def _csv(v):
    return "" if v is None else round(v, 4) if isinstance(v, float) else v
