"""napari-mia's engine: training and prediction with no Qt import.

Import from the submodules (``napari_mia.engine.trainer`` ...); this package
itself stays light so that widgets can read settings without importing torch.
"""

from .errors import DataError, MiaError, ModelFileError, OutOfMemoryError, PretrainedWeightsError, SettingsError
from .settings import Settings

__all__ = ["DataError", "MiaError", "ModelFileError", "OutOfMemoryError", "PretrainedWeightsError", "Settings",
           "SettingsError"]
