"""Each application's files (targets in, predictions out), found by the application's name.

    from napari_mia.workflows import formats
    files = formats.for_settings(settings)     # or formats.get("detection")
    pairs = files.read_targets(images_folder, targets_path)
"""

from __future__ import annotations

from ...engine import applications
from .base import PredictionWriter, TargetFiles
from .classification import ClassificationFiles
from .detection import DetectionFiles
from .segmentation import SegmentationFiles

_REGISTRY: dict[str, TargetFiles] = {f.name: f for f in (SegmentationFiles(), DetectionFiles(),
                                                          ClassificationFiles())}


def get(name: str) -> TargetFiles:
    """The files of the application called `name`; SettingsError if there is no such application."""
    applications.get(name)  # the engine's words for an unknown name
    return _REGISTRY[name]


def for_settings(settings) -> TargetFiles:
    """The files of the application a model's settings are for."""
    return get(settings.model.task)


__all__ = ["PredictionWriter", "TargetFiles", "for_settings", "get"]
