"""Evaluate a folder: a model's scores on labelled images it was not trained on, per image, and their means.

Scores are the application's (``Application.evaluate_item``); every image weighs the same in the means,
whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.applications.base import write_csv
from ..engine.errors import MiaError
from ..engine.evaluate import mean_scores
from ..engine.images import image_frames
from .events import FileDone, FolderStarted, Note
from .formats import for_settings
from .prediction import each_image


@dataclass
class EvaluationReport:
    """One row of scores per image (the columns in order), the application's summary lines, the means."""

    rows: list[dict]
    columns: list[str]
    summary: list[str]
    means: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)


def evaluate_folder(predictor, images: Path, targets: Path, tolerance: float | None = None,
                    channel_axis: int | None = None) -> Iterator[FolderStarted | Note | FileDone | EvaluationReport]:
    """Score the predictions of the images in `images` against `targets` (as the application's training reads
    them); ends with an ``EvaluationReport``. Unreadable or refused images are skipped as in prediction."""
    s = predictor.settings
    app = for_settings(s).app
    items = for_settings(s).read_targets(images, targets)
    if not items:
        raise MiaError(f"No labelled images found in {images}.")
    truth = dict(items)
    rows: list[dict] = []

    def one(f, image):
        row = {"name": f.name, **app.evaluate_item(predictor, image, truth[f], s, tolerance)}
        if predictor.last_diameter is not None:
            row["diameter_px"] = round(predictor.last_diameter, 1)
        rows.append(row)

    skipped: list[tuple[str, str]] = []
    yield FolderStarted(len(truth))
    yield from each_image(list(truth), predictor, one, skipped, channel_axis)
    if not rows:
        raise MiaError("No image could be evaluated (see the messages above).")
    columns = ["name", *app.evaluate_columns, *(["diameter_px"] if "diameter_px" in rows[0] else [])]
    columns += [k for k in rows[0] if k not in columns and not k.startswith("_")]
    means = mean_scores([{k: v for k, v in r.items() if k in columns} for r in rows])
    yield EvaluationReport(rows, columns, app.evaluate_summary(rows, s), means, skipped)


def score_items(predictor, items, tolerance: float | None = None) -> EvaluationReport:
    """Score the predictions of in-memory (name, image, target[, rgb]) items (e.g. the dock's test images), as
    ``evaluate_folder`` scores files; a stack whose labels are a stack of as many frames is scored per frame,
    each frame an image."""
    s = predictor.settings
    app = for_settings(s).app
    rows = [{"name": name, **app.evaluate_item(predictor, image, target, s, tolerance)}
            for name, image, target in _frames(items, s.model.channels)]
    if not rows:
        raise MiaError("There are no test images to score.")
    columns = ["name", *app.evaluate_columns]
    means = mean_scores([{k: v for k, v in r.items() if k in columns} for r in rows])
    return EvaluationReport(rows, columns, app.evaluate_summary(rows, s), means)


def _frames(items, channels: int):
    """Each frame of a stack with its own target (labels of as many frames, or a class per frame; frames
    without a class, -1, are left out), or the item whole."""
    for name, image, target, *rest in items:
        frames = image_frames(image, channels, name, rest[0] if rest else None)
        per_frame = (isinstance(target, np.ndarray) and target.ndim == 3) or isinstance(target, (list, tuple))
        if len(frames) > 1 and per_frame and len(target) == len(frames):
            for i, (frame, truth) in enumerate(zip(frames, target)):
                if not isinstance(truth, np.ndarray) and int(truth) < 0:
                    continue
                yield f"{name} [{i}]", frame[..., 0] if channels == 1 else frame, truth
        elif isinstance(target, (list, tuple)) and len(target) == 1:
            yield name, image, target[0]
        else:
            yield name, image, target


def _csv(v):
    return "" if v is None else round(v, 4) if isinstance(v, float) else v


def write_scores(out: Path, report: EvaluationReport) -> Path:
    """The scores as CSV, one row per image and the means as the last row."""
    columns = report.columns
    table = [[_csv(r.get(c)) for c in columns] for r in report.rows]
    table.append(["mean"] + [_csv(report.means.get(c)) for c in columns[1:]])
    return write_csv(out, columns, table)
