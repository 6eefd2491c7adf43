"""The Data section's controls for images of several channels: the Channel axis of a layer that holds them
all, and the Other channels of an image whose channels are layers of their own. Shown while Input is more
than one channel."""

from __future__ import annotations

from typing import Callable

from magicgui.widgets import ComboBox, Select

from .._channels import image_for
from .._layers import is_kind


class ChannelControls:
    """Channel axis and Other channels, and which layers are another image's channels."""

    def __init__(self, viewer, controls: dict, chosen_image: Callable[[], str | None]):
        self.viewer, self.controls, self._chosen_image = viewer, controls, chosen_image
        self.channel_axis = ComboBox(
            label="Channel axis", choices=[("first (C, Y, X)", "first"), ("last (Y, X, C)", "last")],
            value="first",
            tooltip="For an image layer that holds all its channels (napari shows a slider over them): the axis "
                    "of the channels. first: (channels, height, width), as ImageJ and most microscopes save "
                    "them; a stack (frames, channels, height, width). last: (height, width, channels). Colour "
                    "(RGB) layers hold their channels themselves.")
        self.channel_layers = Select(
            label="Other channels", choices=[],
            tooltip="When each channel is its own layer (e.g. napari opened the file with one layer per "
                    "channel): select the layers of the Image's other channels. The Image is the first channel, "
                    "then these, in the order of this list. Training, Predict and Evaluate read the Image with "
                    "them; the layers are not changed.")
        # A few rows: the list scrolls, the Data section stays short.
        rows = self.channel_layers.native
        rows.setMaximumHeight(5 * rows.fontMetrics().height() + 4 * rows.frameWidth() + 8)
        # image layer name -> the layers of its other channels, in order (chosen under Other channels)
        self.channel_groups: dict[str, tuple[str, ...]] = {}
        self._showing_channels = False

    def image_for(self, name: str, channels: int):
        """Image layer `name` as a model of `channels` reads it (a ``ChannelImage``, widgets/_channels.py)."""
        return image_for(self.viewer.layers, name, channels, self.channel_groups.get(name, ()),
                         self.channel_axis.value)

    def show_controls(self) -> None:
        """Channel axis and Other channels: shown while Input is several channels, unless the Image is a colour
        (RGB) layer, which holds its channels itself (neither applies to it)."""
        name = self._chosen_image()
        rgb = name is not None and name in self.viewer.layers and bool(self.viewer.layers[name].rgb)
        self.channel_axis.visible = self.channel_layers.visible = int(self.controls["channels"].value) > 1 \
            and not rgb

    def show_layers(self, *_) -> None:
        """Other channels: the image layers (not RGB) other than the Image, those chosen for it selected."""
        self.show_controls()
        image = self._chosen_image()
        names = [layer.name for layer in self.viewer.layers
                 if is_kind(layer, "Image") and not layer.rgb and layer.name != image]
        self._showing_channels = True
        try:
            if list(self.channel_layers.choices) != names:
                self.channel_layers.choices = names
            self.channel_layers.value = [n for n in self.channel_groups.get(image, ()) if n in names]
        finally:
            self._showing_channels = False

    def take_chosen(self) -> str | None:
        """The layers chosen under Other channels become the Image's other channels, in the list's order.
        Returns the Image whose channels changed (None: nothing changed)."""
        image = self._chosen_image()
        if self._showing_channels or image is None:
            return None
        chosen = set(self.channel_layers.value)
        others = tuple(n for n in self.channel_layers.choices if n in chosen)
        if others:
            self.channel_groups[image] = others
        else:
            self.channel_groups.pop(image, None)
        return image

    def forget_removed(self, names: set[str]) -> set[str]:
        """Drop the layers no longer in `names`; returns the images that lost a channel's layer (or their own)."""
        lost = set()
        for image, others in list(self.channel_groups.items()):
            if image not in names or any(o not in names for o in others):
                lost.add(image)
                kept_channels = tuple(o for o in others if o in names)
                if image in names and kept_channels:
                    self.channel_groups[image] = kept_channels
                else:
                    del self.channel_groups[image]
        return lost
