"""The dock's adapters, one per application (see ``base.DockApplication`` and
docs/adding-an-application-dock.md). Their order is the Application combo's."""

from __future__ import annotations

from .base import DockApplication
from .classification import Classification
from .detection import Detection
from .segmentation import Segmentation

ADAPTERS: dict[str, type[DockApplication]] = {a.task: a for a in (Segmentation, Detection, Classification)}


def adapter_for(task: str) -> type[DockApplication]:
    """The dock adapter of the engine's application `task`."""
    return ADAPTERS[task]


__all__ = ["ADAPTERS", "DockApplication", "adapter_for"]
