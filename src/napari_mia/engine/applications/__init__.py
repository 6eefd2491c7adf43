"""The applications napari-mia trains, one module each, behind one interface (``base.Application``).

    from napari_mia.engine import applications
    app = applications.for_settings(settings)      # or applications.get("detection")
    sources = app.sources(items, settings)

Adding one: docs/adding-an-application.md. Importing this package imports no
torch or Qt (the dock lists the applications before anything trains). What the
settings must know of a task (losses, output count) is in ``engine.tasks``.
"""

from __future__ import annotations

from ..errors import SettingsError
from ..settings import Settings
from .base import Application
from .classification import Classification
from .detection import Detection
from .segmentation import Segmentation


# The order of the command line's --task choices and of the dock's list.
_REGISTRY: dict[str, Application] = {app.name: app for app in (Segmentation(), Detection(), Classification())}


def names() -> tuple[str, ...]:
    """Every application's name, as ``model.task`` holds it."""
    return tuple(_REGISTRY)


def get(name: str) -> Application:
    """The application called `name`; SettingsError if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SettingsError(f"task must be one of {', '.join(_REGISTRY)}; got '{name}'.") from None


def for_settings(settings: Settings) -> Application:
    """The application a model's settings are for."""
    return get(settings.model.task)


__all__ = ["Application", "for_settings", "get", "names"]
