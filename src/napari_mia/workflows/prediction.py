"""Predict a folder: load a model for prediction, read each image as the model takes it, write the results.

Files that cannot be read or that the model refuses are skipped (and reported), not fatal; an output that
cannot be written stops the folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.errors import MiaError, OutputError
from ..engine.images import fit_channels, list_images, read_image
from ..engine.trained_model import TrainedModel, damaged
from .events import FileDone, FolderStarted, Note
from .formats import for_settings


@dataclass
class PredictionReport:
    """The end of a folder: what was written, in a sentence, and the files skipped with why."""

    written: str
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PostOptions:
    """The post-processing of label images: see ``engine.predictor.PostProcess``."""

    min_size: int = 0
    fill_holes: bool = False
    split_touching: bool = True


def load_model(path: Path, keep: str | None = None, precision: str | None = None,
               device: str | None = None) -> TrainedModel:
    """The model in `path`, with the weights to `keep` and the `precision` asked, on `device` (else its own)."""
    model = TrainedModel.load(path, device=device)
    if keep:
        model.settings.train.keep = keep
        if keep == "last" and model.last_state is not None:
            # The file holds the best epoch's weights and, to continue its run, the latest ones.
            try:
                model.network.load_state_dict(model.last_state)
            except (RuntimeError, KeyError) as e:
                raise damaged(path) from e
    if precision:
        model.settings.train.precision = precision
    return model


def predictor_for_model(model, tile="auto", diameter=None, tta: bool = False):
    """The model's predictor: `tile` 'auto', N or 0 (whole); `diameter` D, 'auto', 'off' or None (the model's
    default)."""
    if diameter is None:
        diameter = model.app.default_diameter(model.settings)
    return model.predictor(tile=tile or None, diameter=None if diameter == "off" else diameter, tta=tta)


def drop_alpha(image, channels: int):
    """RGBA files lose their alpha for a 3-channel model."""
    return image[..., :3] if channels == 3 and image.ndim == 3 and image.shape[-1] == 4 else image


def read_for_model(f: Path, settings, channel_axis: int | None = None):
    """(image as the model reads it: channels last, opaque alpha dropped; what was changed, in words)."""
    image, notes = fit_channels(read_image(f), settings.model.channels, f.name, channel_axis)
    return drop_alpha(image, settings.model.channels), notes


def each_image(files: list[Path], predictor, work: Callable, skipped: list[tuple[str, str]],
               channel_axis: int | None = None) -> Iterator[Note | FileDone]:
    """work(file, image) for each file; one that cannot be read or predicted is skipped and added to `skipped`
    as (name, why). An ``OutputError`` stops the folder: every later file would fail the same way."""
    for f in files:
        try:
            image, notes = read_for_model(f, predictor.settings, channel_axis)
            for note in notes:
                yield Note(note)
        except MiaError as e:
            image = None
            skipped.append((f.name, str(e)))
            yield Note(f"Skipped {f.name}: {e}")
        if image is not None:
            try:
                work(f, image)
            except OutputError:
                raise
            except MiaError as e:
                skipped.append((f.name, str(e)))
                yield Note(f"Skipped {f.name}: {e}")
            else:
                if predictor.diameter == "auto":
                    yield Note(_estimated_size(f, predictor))
        yield FileDone(f.name)


def _estimated_size(f: Path, predictor) -> str:
    found, scale = predictor.last_diameter, predictor.last_scale
    own = scale == predictor.settings.data.downscale
    if not found:
        return f"{f.name}: no objects to measure; predicted at the model's own scale"
    return f"{f.name}: objects about {found:.0f} px across (estimated): " + (
        "the model's own scale" if own else f"scaled by {scale:.3g} for the model")


def predict_folder(predictor, images: Path, out: Path, post: PostOptions | None = None,
                   channel_axis: int | None = None) -> Iterator[FolderStarted | Note | FileDone | PredictionReport]:
    """Predict every image of `images` into `out` (label TIFFs, points.csv or classes.csv, as the model's
    application writes them); ends with a ``PredictionReport``."""
    files = list_images(images)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MiaError(f"Cannot create the output folder {out}: {e.strerror}.") from e
    writer = for_settings(predictor.settings).prediction_writer(predictor, out, post or PostOptions())
    skipped: list[tuple[str, str]] = []
    yield FolderStarted(len(files))
    yield from each_image(files, predictor, writer.add, skipped, channel_axis)
    yield PredictionReport(writer.finish(), skipped)
