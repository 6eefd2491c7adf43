"""What the docks ask of napari layers: their kind, and whether napari-mia made them."""

from __future__ import annotations

import numpy as np


def is_kind(layer, kind: str) -> bool:
    """Whether a layer is an Image / Labels / Points layer. isinstance, not the type's name: a dock opened by
    `add_plugin_dock_widget` gets napari's PublicOnlyProxy layers, whose type is the proxy."""
    import napari.layers

    return isinstance(layer, getattr(napari.layers, kind))


def is_prediction(layer) -> bool:
    """One of our prediction layers the user has not turned into training labels."""
    return layer.metadata.get("napari_mia") == "prediction"


def digest(data) -> str:
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()
