"""Training data for the settings' application: the sources and validation items of a model's task.

The functions of ``engine.samples`` and ``engine.data`` are told which application makes the targets; these
look it up from the settings, for callers that hold settings only (the trainer, the dock, scripts).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import applications
from .images import channels_last
from .samples import SampleSource, array_sources, file_sources
from .settings import Settings


def sources_from_arrays(pairs: Sequence[tuple], settings: Settings, rgb: Sequence[bool | None] | None = None,
                        regions: Sequence[np.ndarray | None] | None = None,
                        sparse: bool | None = None) -> list[SampleSource]:
    """(image, labels[, name[, labels name]]) arrays -> one source per labelled frame (``samples.array_sources``)."""
    return array_sources(applications.for_settings(settings), pairs, settings, rgb=rgb, regions=regions,
                         sparse=sparse)


def sources_from_files(pairs: Sequence[tuple], settings: Settings, notes: list[str] | None = None,
                       channel_axis: int | None = None) -> list[SampleSource]:
    """(image file, mask file[, region file or None]) -> sources (``samples.file_sources``)."""
    return file_sources(applications.for_settings(settings), pairs, settings, notes=notes,
                        channel_axis=channel_axis)


def sources_for_task(items: Sequence[tuple], settings: Settings, rgb: Sequence[bool | None] | None = None,
                     regions: Sequence[np.ndarray | None] | None = None,
                     channel_axis: int | Sequence[int | None] | None = None) -> list[SampleSource]:
    """Array items -> sources for the settings' application: (image, labels[, name[, labels name]]) for
    segmentation, (image, points[, name]) for detection, (image, class ids[, name]) for classification.
    `rgb`: per item, whether the image's last axis is channels (napari's ``layer.rgb``; None guesses).
    `regions`: per item, its reviewed regions or None (segmentation, detection; ``supervision``).
    `channel_axis`: where the channels of multi-channel images are when not last (e.g. 0 for (C, H, W),
    1 for a stack (N, C, H, W)), one for all items or one per item (None: channels last, or Mono)."""
    if channel_axis is not None:
        axes = [channel_axis] * len(items) if isinstance(channel_axis, (int, np.integer)) else list(channel_axis)
        moved, flags = [], []
        for k, (item, axis) in enumerate(zip(items, axes)):
            if axis is None:
                moved.append(item)
                flags.append(None if rgb is None else rgb[k])
                continue
            name = item[2] if len(item) > 2 else f"image {k + 1}"
            moved.append((channels_last(item[0], axis, name), *item[1:]))
            flags.append(True)
        items, rgb = moved, flags
    return applications.for_settings(settings).sources(items, settings, rgb=rgb, regions=regions)


def validation_items(sources: list[SampleSource], settings: Settings):
    """What the validation loop scores, as the application says: patches, or whole images."""
    return applications.for_settings(settings).validation_items(sources, settings)
