"""``napari-mia predict``: a model's predictions for a folder of images; with --measure, their measurements."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine import modelfile
from ..engine.images import list_images
from ..workflows import formats
from ..workflows.measurement import count_detections, measure_files
from ..workflows.prediction import PostOptions, predict_folder
from .options import (PREDICT_DEVICE_HELP, QUIET_HELP, add_model_option, add_pixel_size_options,
                      add_prediction_options, add_tile_option, pixel_spacing, predictor_for)
from .output import follow, skipped_exit


def add_parser(sub) -> argparse.ArgumentParser:
    pr = sub.add_parser("predict", help="predict label images with a trained model")
    add_model_option(pr)
    pr.add_argument("--images", required=True, type=Path, help="folder of images to predict")
    pr.add_argument("--out", required=True, type=Path,
                    help="folder for the label TIFFs (same names as the images; uint16 instance ids in instance "
                         "mode, class ids otherwise); a detection model writes points.csv there, a classification "
                         "model classes.csv (name,class,probability,p_<class>...)")
    add_tile_option(pr)
    pr.add_argument("--min-size", type=int, default=0, help="remove objects smaller than this many pixels")
    pr.add_argument("--fill-holes", action="store_true", help="fill holes inside predicted objects")
    pr.add_argument("--no-split", action="store_true",
                    help="instance mode: keep touching objects together (one object per connected blob)")
    pr.add_argument("--device", help=PREDICT_DEVICE_HELP)
    pr.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    add_prediction_options(pr)
    pr.add_argument("--measure", action="store_true",
                    help="also measure the predictions: a segmentation model writes objects.csv (one row per "
                         "object: class, area, perimeter, diameter, axes, skeleton length, centroid, min/mean/max "
                         "intensity) and counts.csv (objects per class per image) into --out; a detection model "
                         "counts.csv from its points; a classification model's classes.csv already holds every "
                         "image's class")
    add_pixel_size_options(pr, with_images=False)
    return pr


def run(a: argparse.Namespace) -> int:
    _, predictor = predictor_for(a)
    post = PostOptions(min_size=a.min_size, fill_holes=a.fill_holes, split_touching=not a.no_split)
    # What is written (label TIFFs, points.csv, classes.csv) is the application's.
    report = follow(predict_folder(predictor, a.images, a.out, post, a.channel_axis), a.quiet)
    print(report.written)
    rc = skipped_exit(report.skipped)
    if a.measure:  # also when some images were skipped: the others are measured
        rc = max(rc, _measure_predictions(a))
    return rc


def _measure_predictions(a: argparse.Namespace) -> int:
    """--measure: measure what was written into --out."""
    s = modelfile.load(a.model)["settings"]
    images = list_images(a.images)  # the folder just predicted
    files = formats.for_settings(s)
    if files.measured == "labels":
        pairs, mode, names = files.written_labels(s, a.out, images)
        r = follow(measure_files(pairs, a.out, pixel_spacing(a.pixel_size, a.unit), a.unit, mode, names), a.quiet)
        print(f"Measured {r.num_objects} object(s) in {r.num_images} image(s): {r.objects}, {r.counts}")
        return 0
    if files.measured == "points":
        return _count_detections(a, images, s.model.class_names)
    print(files.nothing_to_measure)
    return 0


def _count_detections(a: argparse.Namespace, images: list[Path], class_names: list[str]) -> int:
    """The points of points.csv in --out counted per class per image, into counts.csv there."""
    r = count_detections(a.out, images, class_names)
    print(f"Counted {r.num_objects} object(s) in {r.num_images} image(s): {r.counts}")
    return 0
