"""Segmentation's files: masks with the images' names in, label TIFFs out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine.task_data import sources_from_files
from ...engine.errors import DataError, OutputError
from ...engine.images import check_labels, guess_label_mode, pair_files, read_image
from ...engine.targets import PostProcess
from .base import PredictionWriter, TargetFiles

# Training without a label mode reads this many masks at most (spread over the folder) to guess it.
GUESS_FILES = 16


def _instances(settings) -> bool:
    return settings.model.label_mode == "instances"


class _LabelWriter(PredictionWriter):
    """One label TIFF per image, with the image's name: uint16 instance ids, or class ids."""

    def __init__(self, predictor, out: Path, post):
        self.predictor, self.out = predictor, out
        self.instances = _instances(predictor.settings)
        self.post = PostProcess(min_size=post.min_size, fill_holes=post.fill_holes,
                                split_touching=post.split_touching)
        self.written: list[str] = []

    def add(self, f, image) -> None:
        import tifffile  # lazy, as in the engine's readers: a third of a second to import, for writing only

        labels = self.predictor.predict(image, post=self.post, name=f.name)
        labels = labels.astype(np.uint16 if self.instances and labels.max() < 2**16 else labels.dtype)
        name = f.name if f.suffix.lower() in (".tif", ".tiff") else f.stem + ".tif"
        try:
            tifffile.imwrite(self.out / name, labels, compression="zlib")
        except OSError as e:
            raise OutputError(f"Cannot write {self.out / name}: {e.strerror}.") from e
        self.written.append(name)

    def finish(self) -> str:
        return f"Wrote {len(self.written)} label image(s) to {self.out}"


class SegmentationFiles(TargetFiles):
    name = "segmentation"
    targets = "masks"
    missing_targets = "Segmentation needs --masks DIR (label images with the same file names as the images)."
    measured = "labels"

    def read_targets(self, images, path):
        return pair_files(images, path)

    def guess_label_mode(self, pairs, sparse):
        """The dock's guess (``images.guess_label_mode``) on the masks; the default, classes, where they cannot
        tell."""
        picked = pairs if len(pairs) <= GUESS_FILES else \
            [pairs[i] for i in np.linspace(0, len(pairs) - 1, GUESS_FILES).astype(int)]
        seen: dict[str, tuple[str, int]] = {}  # mode -> (an example mask, its number of values)
        for pair in picked:
            labels = check_labels(read_image(pair[1]), pair[1].name)
            mode = guess_label_mode(labels, sparse)
            if mode is not None and mode not in seen:
                values = np.unique(labels[labels > (1 if sparse else 0)])
                seen[mode] = (pair[1].name, len(values))
        what = {"instances": "each object has its own number, e.g. {1} separate objects in {0}",
                "classes": "each number is a kind of object, e.g. {1} value(s) painted as several separate "
                           "regions in {0}"}
        if len(seen) > 1:
            raise DataError(f"The masks do not agree on the label mode: in {seen['instances'][0]} each object has "
                            f"its own number (instances), in {seen['classes'][0]} each number is a kind of object "
                            "(classes). All masks of one model use one label mode: give --label-mode instances or "
                            "--label-mode classes, or remove the masks that do not fit.")
        if seen:
            mode = next(iter(seen))
            other = "classes" if mode == "instances" else "instances"
            return mode, f"Label mode: {mode} (in the masks {what[mode].format(*seen[mode])}); give --label-mode " \
                         f"{other} if that is wrong."
        return "classes", "Label mode: classes, the default (the masks do not show whether each object has its " \
                          "own number); give --label-mode instances if it has."

    def sources(self, pairs, settings, read, notes, channel_axis=None):
        # Read here rather than through `read`: a source not kept in memory reads its files again at each use.
        return sources_from_files(pairs, settings, notes, channel_axis)

    def _validation_what(self, settings) -> str:
        return " (foreground)" if _instances(settings) else ""

    def prediction_writer(self, predictor, out, post):
        return _LabelWriter(predictor, out, post)

    def written_labels(self, settings, out, images):
        written = {p.stem: p for p in out.iterdir() if p.suffix.lower() in (".tif", ".tiff")}
        pairs = [(written[f.stem], f) for f in images if f.stem in written]
        mode = settings.model.label_mode
        return pairs, mode, settings.model.class_names if mode == "classes" else None
