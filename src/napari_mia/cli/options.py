"""Options and value parsers that several commands share, each defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.errors import DataError
from ..workflows.prediction import load_model, predictor_for_model

TILE_HELP = ("tile size for large images: 'auto' predicts an image whole when the network's memory for it fits (a "
             "quarter of the free RAM, at most 4 GiB, or half the free GPU memory), else in as few tiles as fit; "
             "N: N x N tiles overlapping by 128 px; 0: always whole (default: auto)")
MODEL_HELP = ("model file written by train or the napari widget, a bioimage.io package exported by napari-mia, "
              "or nuclei: the fluorescence nuclei starter that ships with napari-mia")
PREDICT_DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default: the model's, else auto)"
QUIET_HELP = "no progress bar"
MASKS_HELP = "segmentation: folder of label masks, same file names as the images"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    """--tile: 'auto', or a number of pixels (0: the whole image in one pass)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', got '{text}'") from None


def add_channel_axis_option(p: argparse.ArgumentParser) -> None:
    """--channel-axis: train, predict and evaluate."""
    p.add_argument("--channel-axis", type=int, metavar="A",
                   help="multi-channel images: the axis of the files that holds the channels, 0 for (C, H, W), "
                        "-1 for (H, W, C) (default: last, or first when the first axis has as many entries as "
                        "the channels and the last does not)")


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """--precision: train, predict and evaluate."""
    p.add_argument("--precision", choices=["auto", "on", "off"],
                   help="mixed precision: auto = on CUDA GPUs (bfloat16, or float16 with loss scaling), off "
                        "elsewhere; on = also on the CPU (bfloat16, where it has the instructions for it: "
                        "AVX-512 or newer; float32 otherwise, said) and Apple GPUs; off = float32 (default: the "
                        "model's setting, auto)")


def add_tile_option(p: argparse.ArgumentParser) -> None:
    """--tile: predict and evaluate."""
    p.add_argument("--tile", type=tile_value, default="auto", metavar="N|auto", help=TILE_HELP)


def add_prediction_options(p: argparse.ArgumentParser) -> None:
    """--channel-axis, --diameter, --tta, --precision and --keep: predict and evaluate."""
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


def add_predictor_run_options(p: argparse.ArgumentParser) -> None:
    """--tile, --device, --quiet and the prediction options, in this order: evaluate and rank."""
    add_tile_option(p)
    p.add_argument("--device", help=PREDICT_DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    add_prediction_options(p)


def predictor_for(a: argparse.Namespace):
    """(model, predictor) from the prediction options of predict and evaluate."""
    model = load_model(a.model, keep=a.keep, precision=getattr(a, "precision", None),
                       device=getattr(a, "device", None))
    return model, predictor_for_model(model, tile=a.tile, diameter=a.diameter, tta=a.tta)


def add_pixel_size_options(p: argparse.ArgumentParser, with_images: bool) -> None:
    """--pixel-size and --unit: measure and predict --measure."""
    p.add_argument("--pixel-size", type=float, nargs="+", metavar="SIZE",
                   help="size of one pixel in --unit: one number, or two (y x) for rectangular pixels "
                        "(default: 1, lengths in pixels)" if with_images else
                        "with --measure: size of one pixel in --unit (one number, or y x)")
    p.add_argument("--unit", default=None,
                   help="unit of --pixel-size, e.g. um, nm, mm (default: px); it ends the column names, "
                        "e.g. area_um2")


def pixel_spacing(pixel_size: list[float] | None, unit: str | None) -> tuple[float, float]:
    """(y, x) size of a pixel from --pixel-size and --unit."""
    size = pixel_size or [1.0]
    if len(size) > 2 or min(size) <= 0:
        raise DataError(f"--pixel-size takes one positive number, or two (y x); got {' '.join(map(str, size))}.")
    if pixel_size and not unit:
        raise DataError("--pixel-size needs its unit: add --unit, e.g. --unit um.")
    return (size[0], size[-1])


def add_model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, help=MODEL_HELP)
