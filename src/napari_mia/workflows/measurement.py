"""Measure a folder: the objects of label images (objects.csv) and their counts per class (counts.csv);
and the counts of the points a detection model found (points.csv)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.errors import DataError
from ..engine.images import list_images, read_image
from ..engine.measure import count_objects, count_points, measure_objects, read_table, write_table
from .events import FileDone, FolderStarted


@dataclass
class MeasureReport:
    objects: Path
    counts: Path
    num_objects: int
    num_images: int


@dataclass
class CountReport:
    counts: Path
    num_objects: int
    num_images: int


def label_pairs(labels: Path, images: Path | None = None) -> list[tuple[Path, Path | None]]:
    """[(label file, image file of the same name or None)]; every label image needs its image when `images`
    is given."""
    files = list_images(labels)
    if not images:
        return [(f, None) for f in files]
    by_stem = {p.stem: p for p in list_images(images)}
    missing = [f.name for f in files if f.stem not in by_stem]
    if missing:
        raise DataError(f"{len(missing)} label image(s) have no image of the same name in {images}, "
                        f"e.g. {missing[0]}.")
    return [(f, by_stem[f.stem]) for f in files]


def measure_files(pairs: list[tuple[Path, Path | None]], out: Path, spacing: tuple[float, float] = (1.0, 1.0),
                  unit: str | None = None, mode: str = "instances", class_names: list[str] | None = None,
                  ) -> Iterator[FolderStarted | FileDone | MeasureReport]:
    """Measure (label file, image file or None) pairs into out/objects.csv and out/counts.csv; ends with a
    ``MeasureReport``."""
    import pandas as pd  # lazy: pandas is slow to import and only needed here

    tables, frames = [], {}
    yield FolderStarted(len(pairs))
    for lab_file, img_file in pairs:
        labels = read_image(lab_file)
        if labels.ndim == 3 and labels.shape[-1] in (3, 4):
            raise DataError(f"{lab_file.name} is a colour image, not labels (whole numbers, 0 = background). "
                            "Check that --labels is the folder of label images.")
        image = read_image(img_file) if img_file is not None else None
        name = (img_file or lab_file).name
        tables.append(measure_objects(labels, image, mode=mode, class_names=class_names, spacing=spacing,
                                      unit=unit, name=name))
        frames[name] = labels.shape[0] if labels.ndim == 3 else None
        yield FileDone(name)
    objects = pd.concat(tables, ignore_index=True)
    classes = sorted(set(objects["class"])) or [1]
    if mode == "classes" and class_names:
        classes = list(range(1, len(class_names)))  # every named class, found or not
    counts = count_objects(objects, images=frames, classes=classes,
                           class_names=class_names if mode == "classes" else None)
    out.mkdir(parents=True, exist_ok=True)
    yield MeasureReport(write_table(objects, out / "objects.csv"), write_table(counts, out / "counts.csv"),
                        len(objects), len(pairs))


def count_detections(out: Path, images: list[Path], class_names: list[str]) -> CountReport:
    """The points in out/points.csv counted per class per image into out/counts.csv (0 for an image without
    points)."""
    import pandas as pd  # lazy: pandas is slow to import and only needed here

    points = read_table(out / "points.csv")
    classes = list(range(1, len(class_names))) or [1]
    tables = []
    for f in images:
        mine = points[points["name"] == f.name]
        tables.append(count_points(mine[["y", "x"]].to_numpy(float).reshape(-1, 2),
                                   mine["class"].to_numpy(int), name=f.name, class_names=class_names,
                                   classes=classes))
    counts = write_table(pd.concat(tables, ignore_index=True), out / "counts.csv")
    return CountReport(counts, int(np.sum([t["count"].sum() for t in tables])), len(images))
