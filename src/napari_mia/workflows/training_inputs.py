"""Training inputs from files: images paired with their targets, a validation folder, reviewed regions, and
the guesses a new model takes from its files (channels, label mode)."""

from __future__ import annotations

from pathlib import Path

from ..engine.errors import MiaError
from ..engine.images import channels_last, fit_channels, list_images, read_image
from .formats import TargetFiles


def training_pairs(files: TargetFiles, images: Path, targets: Path | None) -> list[tuple]:
    """[(image file, targets)] of the training images; `targets` is the application's (masks, points,
    classes)."""
    if not targets:
        raise MiaError(files.missing_targets)
    return files.read_targets(images, targets)


def validation_pairs(files: TargetFiles, val_images: Path | None, val_targets: dict[str, Path | None],
                     val_split_given: bool = False) -> tuple[list[tuple] | None, str | None]:
    """([(image file, targets)] of the validation folder, read as the training ones are, or None for a random
    split; a note for the user or None). `val_targets`: {what holds them ("masks", "points", "classes"): path or
    None}, for every application, so that targets of another application are refused."""
    pairs = folder_pairs(files, val_images, val_targets, "val", "validation")
    note = "--val-split is not used: the --val-images are the validation set." if pairs and val_split_given else None
    return pairs, note


def test_pairs(files: TargetFiles, test_images: Path | None, test_targets: dict[str, Path | None],
               training: list[tuple]) -> list[tuple] | None:
    """[(image file, targets)] of the test folder (``--test-images``), or None; refused when a test image is
    also a training image (same name in the same folder, or the same file): it would flatter the test."""
    pairs = folder_pairs(files, test_images, test_targets, "test", "test")
    if pairs:
        trained = {Path(p[0]).resolve() for p in training}
        both = [Path(p[0]).name for p in pairs if Path(p[0]).resolve() in trained]
        if both:
            raise MiaError(f"{both[0]} is both a training image and a test image: a test image must never be "
                           "trained on. Keep the test images in a folder of their own.")
    return pairs


def folder_pairs(files: TargetFiles, images: Path | None, targets: dict[str, Path | None], prefix: str,
                 words: str) -> list[tuple] | None:
    """[(image file, targets)] of a folder given with --<prefix>-images and --<prefix>-<targets>, or None."""
    flag = {kind: f"--{prefix}-{kind}" for kind in targets}
    given = [flag[kind] for kind, path in targets.items() if path]
    wanted = flag[files.targets]
    if images is None:
        if given:
            raise MiaError(f"{given[0]} needs --{prefix}-images DIR: the folder of the {words} images.")
        return None
    other = [f for f in given if f != wanted]
    if other:
        raise MiaError(f"{other[0]} does not fit {files.name}: its {words} targets are given with {wanted}.")
    path = targets[files.targets]
    if not path:
        raise MiaError(f"--{prefix}-images needs {wanted} for {files.name}: the {words} images' targets, given as "
                       f"for --{files.targets}.")
    pairs = files.read_targets(images, path)
    if not pairs:  # a CSV that names none of the images
        raise MiaError(f"No {words} image in {images} has targets in {path}.")
    return pairs


def with_regions(pairs: list[tuple], regions: Path | None, files: TargetFiles) -> tuple[list[tuple], str | None]:
    """[(image file, targets)] -> ([(image file, targets, region file or None)], a note or None) when a folder of
    reviewed-region masks is given: images without a region file are fully labelled."""
    if not regions:
        return pairs, None
    if files.app.whole_image:
        raise MiaError(f"--regions: {files.name} learns one answer per whole image; reviewed regions do not apply.")
    by_stem = {p.stem: p for p in list_images(regions)}
    out = [(pair[0], pair[1], by_stem.get(Path(pair[0]).stem)) for pair in pairs]
    missing = [Path(p[0]).name for p in out if p[2] is None]
    if len(missing) == len(out):
        raise MiaError(f"No file in {regions} has the name of a training image (e.g. {missing[0]}): region "
                       "masks need the images' file names (the extension may differ).")
    note = None
    if missing:
        note = (f"{len(missing)} image(s) have no region file in {regions} and are taken as fully labelled "
                f"(e.g. {missing[0]}).")
    return out, note


def guess_channels(first: Path, channels: int | None = None, channel_axis: int | None = None) -> int:
    """A new model's channels: `channels`, else the size of `channel_axis` in the first image, else 1 or 3."""
    if channels:
        return channels
    image = read_image(first)
    if channel_axis is not None:
        return int(channels_last(image, channel_axis, first.name).shape[-1])
    # An opaque alpha carries nothing: an RGBA file is a colour image.
    image = fit_channels(image, 3)[0]
    return image.shape[-1] if image.ndim == 3 and image.shape[-1] in (3, 4) else 1
