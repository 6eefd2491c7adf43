"""An image layer as a model of N channels reads it, in the Train Model dock.

napari shows a multi-channel image either as one layer that holds every channel (a (C, Y, X) TIFF opened as it
is, with a slider over the channels) or as one layer per channel (``add_image(..., channel_axis=0)``, and the
readers that split channels). The dock reads the first with its **Channel axis**, and joins the second from
the **Other channels** chosen for the image. Either way the engine gets the channels last, (Y, X, C), from
copies: the layers are never changed.
"""

from __future__ import annotations

import numpy as np

from ..engine.errors import DataError
from ..engine.images import channel_kind

# The Channel axis combo's choices -> the axis in the layer's data. "first": just before the rows, so that a
# stack (frames, C, Y, X), napari's and ImageJ's order, reads like a single (C, Y, X) image.
AXES = {"first": -3, "last": -1}


class ChannelImage:
    """An image layer read as the model reads it: as it is, with its channel axis moved last, or joined with
    the layers of its other channels. Stands in for the layer wherever the dock's applications read an image
    (``name``, ``data``, ``rgb``, ``scale``, ``translate``, and ``shape`` without copying)."""

    def __init__(self, layer, others=(), axis: int | None = None):
        self.layer, self.others, self.axis = layer, tuple(others), axis
        self.name = layer.name
        self.rgb = bool(layer.rgb) or bool(self.others) or axis is not None
        ndim = np.ndim(layer.data) if axis is not None else None
        # The image's own axes in the viewer: without the channel axis that moves last.
        keep = [i for i in range(len(layer.scale)) if ndim is None or i != axis % ndim]
        self.scale = np.asarray(layer.scale)[keep]
        self.translate = np.asarray(layer.translate)[keep]

    @property
    def plain(self) -> bool:
        """Read as the layer is (Mono, or napari's RGB): nothing moved or joined."""
        return not self.others and self.axis is None

    @property
    def label(self) -> str:
        """How messages name it: 'DAPI', or 'DAPI + GFP' for layers joined as channels."""
        return " + ".join(layer.name for layer in (self.layer, *self.others))

    @property
    def shape(self) -> tuple:
        shape = tuple(np.shape(self.layer.data))
        if self.others:
            return shape + (1 + len(self.others),)
        if self.axis is not None:
            if len(shape) < 3:
                return shape  # no channel axis: said by ``check``
            axis = self.axis % len(shape)
            return shape[:axis] + shape[axis + 1:] + (shape[axis],)
        return shape

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.rgb and len(self.shape) >= 3 else 1

    @property
    def data(self) -> np.ndarray:
        """Channels last: a view of the layer's data, or (joined layers) a new array."""
        if self.others:
            return np.stack([np.asarray(layer.data) for layer in (self.layer, *self.others)], axis=-1)
        if self.axis is not None and np.ndim(self.layer.data) >= 3:
            return np.moveaxis(np.asarray(self.layer.data), self.axis, -1)
        return self.layer.data

    def check(self, channels: int, trained: bool = False) -> None:
        """Raise a DataError, in plain words, unless this image holds `channels` channels: those of the model
        (`trained`), or of the Input chosen for a new one."""
        shape = tuple(np.shape(self.layer.data))
        for other in self.others:
            if other.rgb or tuple(np.shape(other.data)) != shape:
                raise DataError(
                    f"'{other.name}' {tuple(np.shape(other.data))} cannot be a channel of '{self.name}' {shape}: the "
                    "layers of one image's channels must be single-channel images of the same size. Choose other "
                    "layers under Other channels.")
        if self.others and self.layer.rgb:
            raise DataError(f"'{self.name}' is a colour (RGB) layer: it holds its channels itself. Choose no layers "
                            "under Other channels for it.")
        found = self.channels
        if found == channels:
            return
        if self.axis is not None and len(shape) >= 3:
            other = "last" if self.axis == AXES["first"] else "first"
            if shape[AXES[other]] == channels:  # the Channel axis is wrong, not the image: say that first
                axis = "first" if other == "last" else "last"
                raise DataError(
                    f"'{self.label}' has its {channels} channels along its {other} axis (its shape is {shape}): "
                    f"choose Channel axis: {other} (Data). Read along its {axis} axis (Channel axis: {axis}, as "
                    f"now), it would have {found} channels.")
        where = ""
        if self.others:
            where = f" (the layers {', '.join(repr(n) for n in self.label.split(' + '))}, one channel each)"
        elif self.axis is not None:
            axis = "first" if self.axis == AXES["first"] else "last"
            where = f" along its {axis} axis (its shape is {shape}, Channel axis: {axis})"
        text = f"'{self.label}' has {found} channel{'s' if found != 1 else ''}{where}, but "
        if trained:
            text += (f"the model was trained on {channel_kind(channels)}. Predict images of {channel_kind(channels)}"
                     " with it, or press Reset Model to train a new model on images like this one.")
        else:
            text += (f"Input is {channel_kind(channels)}. Choose Input: {channel_kind(found)} (Training parameters) "
                     "to train on images like this one.")
        if self.axis is not None:
            text += " If the channels are along the other axis, change the Channel axis (Data)."
        elif not self.others and channels > 1 and found == 1:
            text += (" If each channel is its own layer, choose the layers of the other channels under Other "
                     "channels (Data).")
        raise DataError(text)


def image_for(layers, name: str, channels: int, others=(), axis: str = "first") -> ChannelImage:
    """Layer `name` as a model of `channels` reads it. Mono models, and napari's RGB layers, read the layer as
    it is; otherwise the layers of its other channels (`others`, names) join it, or, without them, the
    layer's `axis` ("first" or "last") holds its channels."""
    layer = layers[name]
    if channels == 1 or layer.rgb and not others:
        return ChannelImage(layer)
    joined = [layers[n] for n in others if n in layers and n != name]
    if joined:
        return ChannelImage(layer, others=joined)
    if np.ndim(layer.data) >= 3:
        return ChannelImage(layer, axis=AXES[axis])
    return ChannelImage(layer)
