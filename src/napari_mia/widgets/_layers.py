"""What the docks ask of napari layers: their kind, and whether napari-mia made them."""

from __future__ import annotations

import hashlib

import napari.layers
import numpy as np

from ..engine.errors import DataError


def is_kind(layer, kind: str) -> bool:
    """Whether a layer is an Image / Labels / Points layer. isinstance, not the type's name: a dock opened by
    `add_plugin_dock_widget` gets napari's PublicOnlyProxy layers, whose type is the proxy."""
    return isinstance(layer, getattr(napari.layers, kind))


def is_prediction(layer) -> bool:
    """One of our prediction layers the user has not turned into training labels."""
    return layer.metadata.get("napari_mia") == "prediction"


def digest(data) -> str:
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).hexdigest()


def region_mask(shapes, image, shape: tuple) -> np.ndarray:
    """The reviewed regions drawn in a Shapes layer as a mask of `shape` (the labels' or the image's pixels).

    The shapes are drawn in world coordinates: brought into `image`'s pixels first, so that an image with a
    scale (micrometres) or a shift gets the regions where they are seen. A 2D Shapes layer over a stack marks
    every frame. Raises DataError when no region lies on the image."""
    if not len(shapes.data):
        raise DataError(f"'{shapes.name}' holds no shapes: draw a rectangle or polygon around the part you "
                        "labelled completely, or choose '(whole image)'.")
    spatial = shape[-2:]
    data = []
    for verts in shapes.data:
        world = np.asarray([shapes.data_to_world(v) for v in np.asarray(verts)])
        # 2D shapes over a stack: the frame axis does not matter (padded with 0)
        pad = np.zeros(max(image.ndim - world.shape[1], 0))
        data.append(np.asarray([image.world_to_data(np.concatenate([pad, w])) for w in world])[:, -2:])
    flat = napari.layers.Shapes(data, shape_type=list(shapes.shape_type)).to_masks(mask_shape=spatial)
    mask = np.asarray(flat).any(axis=0)
    if not mask.any():
        raise DataError(f"None of the regions in '{shapes.name}' lies on '{image.name}': draw them over the image.")
    return np.broadcast_to(mask, shape) if len(shape) > 2 else mask


def layer_names(layers, kind: str) -> list[str]:
    return [layer.name for layer in layers if is_kind(layer, kind)]


def target_choices(layers, kind: str) -> list[tuple[str, str]]:
    """(shown text, layer name) for a Labels/Points combo: the model's own predictions last and marked,
    so that a prediction is not taken for the user's labels without notice."""
    layers = [layer for layer in layers if is_kind(layer, kind)]
    drawn = [(layer.name, layer.name) for layer in layers if not is_prediction(layer)]
    return drawn + [(f"{layer.name} (prediction)", layer.name) for layer in layers if is_prediction(layer)]


def region_choices(layers) -> list[tuple[str, str | None]]:
    return [("(whole image)", None)] + [(n, n) for n in layer_names(layers, "Shapes")]


def refill(combo, choices) -> None:
    """New `choices` for a combo box, keeping its value where it is still among them."""
    current = combo.value
    combo.choices = choices
    if current in combo.choices:
        combo.value = current
