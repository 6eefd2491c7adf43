"""Typed errors whose message is written for the person at the microscope.

Every error the engine raises on purpose is a ``MiaError``: the widgets show
``str(error)`` as a notification and the CLI prints it as one line, so the
message must say what is wrong and what to do, in plain words.
"""


class MiaError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class SettingsError(MiaError, ValueError):
    """A setting has a value the engine cannot use."""


class DataError(MiaError, ValueError):
    """Training or prediction data that cannot be used as it is."""


class ModelFileError(MiaError, OSError):
    """A model file that cannot be read or written."""


class PretrainedWeightsError(MiaError, OSError):
    """ImageNet encoder weights that are not available on this machine."""


class OutOfMemoryError(MiaError, MemoryError):
    """A training or prediction step ran out of (GPU) memory."""


class OutputError(MiaError):
    """A prediction's output cannot be written: fatal for the whole folder, not a reason to skip one image."""


class JobFolderError(MiaError, OSError):
    """A training job folder (engine.job) that cannot be written, or read as a job."""
