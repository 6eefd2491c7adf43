"""The Train Model dock's Data section: the application, the training set (image / labels pairs, those held
out for validation, their reviewed regions) and how images are read (Input channels)."""

from __future__ import annotations

from typing import Callable

from magicgui.widgets import ComboBox, Container, Label, PushButton, Select

from ...engine.errors import MiaError
from ...engine.settings import Settings
from .. import _forms as F
from .._annotation import AnnotationClock
from .._channels import ChannelImage
from .._layers import is_kind, layer_names, region_choices, region_mask
from .._session import IDLE, explain
from ..applications import ADAPTERS
from .channels import ChannelControls

# shown name -> the engine's task
APPLICATIONS = {a.title: task for task, a in ADAPTERS.items()}

Pair = tuple[str, str]  # (image layer name, labels layer name)


class DataSection:
    """The Data section's widgets and the training set. ``apps`` (the adapters, one per application) is set by
    the dock once they exist: they are made with the dock, which lends them this section's widgets."""

    def __init__(self, viewer, session, controls: dict, status: Label, notify: Callable[[str], None]):
        self.viewer, self.session, self.controls, self.status, self.notify = viewer, session, controls, status, \
            notify
        self.apps: dict = {}
        self.pairs: list[Pair] = []
        # Pairs the user chose to hold out: the validation set instead of a random split. A mark belongs to its
        # pair: it leaves with the pair (Remove selected, a deleted layer), and a pair added again trains.
        self.validation: set[Pair] = set()
        # Pairs kept aside for good: never trained on, never choosing an epoch; every round is scored on them.
        self.test: set[Pair] = set()
        # Pairs made from a prediction that a round has already counted as "corrected" (Round.corrected).
        self.counted_predictions: set[Pair] = set()
        # pair -> the Shapes layer of its reviewed regions; pairs made from a prediction (0 = background)
        self.pair_regions: dict[Pair, str] = {}
        self.prediction_pairs: set[Pair] = set()
        # The user's editing time of the training set's layers since the last round (Round.human_minutes).
        self.annotation = AnnotationClock(viewer)
        self.application = ComboBox(label="Application", choices=list(APPLICATIONS),
                                    tooltip=next(iter(ADAPTERS.values())).tooltip)
        self.image_combo = ComboBox(label="Image", choices=layer_names(viewer.layers, "Image"),
                                    tooltip="An image layer to train on.")
        self.channels = ChannelControls(viewer, controls, lambda: self.image_combo.value)
        self.channel_axis, self.channel_layers = self.channels.channel_axis, self.channels.channel_layers
        self.channel_groups = self.channels.channel_groups
        self.labels_combo = ComboBox(label="Labels", choices=layer_names(viewer.layers, "Labels"),
                                     tooltip="The labels layer drawn on that image (0 = background).")
        self.add_button = PushButton(text="Add to training set",
                                     tooltip="Add this image with its labels to the training set.")
        self.pair_list = Select(label="Training set", choices=[], tooltip="Image / labels pairs used for training.")
        self.remove_button = PushButton(text="Remove selected", tooltip="Take the selected pairs out.")
        self.validation_button = PushButton(
            text="Use for validation",
            tooltip="Hold the selected pairs out of training to check the model on them (marked '(validation)'); "
                    "press again to train on them. When pairs are marked, they are the validation set and the "
                    "Validation split is not used.")
        self.test_button = PushButton(
            text="Use for test",
            tooltip="Keep the selected pairs aside for good (marked '(test)'): never trained on and never choosing "
                    "an epoch. At the end of every training, the model is scored on them, and the Rounds view of "
                    "the Training Data dock compares the rounds. Press again to train on them.")
        # Use for test on a row of its own: three buttons side by side would widen the dock.
        self.pair_buttons = Container(widgets=[self.remove_button, self.validation_button], layout="horizontal",
                                      labels=False)
        self.pair_buttons.margins = (0, 0, 0, 0)
        self.test_row = Container(widgets=[self.test_button], labels=False)  # under them, in the same column
        self.test_row.margins = (0, 0, 0, 0)
        self.classes_label = Label(label="Classes", value="(add labels)")
        self.regions_combo = ComboBox(
            label="Reviewed regions", choices=region_choices(viewer.layers),
            tooltip="A Shapes layer whose rectangles or polygons mark the parts you labelled completely: there, "
                    "every unpainted pixel is background; outside them nothing is learned. Used by Add and by "
                    "Add prediction to training set (train only on the part of a prediction you checked).")
        self.labelled_label = Label(label="Labelled", value="")
        c = controls
        self.box = Container(widgets=[self.application, self.image_combo, self.channel_axis, self.channel_layers,
                                      self.labels_combo, self.regions_combo, self.add_button, self.pair_list,
                                      self.pair_buttons, self.test_row, c["label_mode"], c["sparse"], c["object_size"],
                                      c["object_intensity"], self.classes_label, self.labelled_label])
        # widgets that must not change while a training runs
        self.locked = [self.application, self.add_button, self.remove_button, self.validation_button,
                       self.test_button, self.pair_list]

    def connect(self) -> None:
        self.add_button.changed.connect(lambda *_: self.app.on_add())
        self.remove_button.changed.connect(self._on_remove)
        self.validation_button.changed.connect(self._on_validation)
        self.test_button.changed.connect(self._on_test)
        self.controls["channels"].changed.connect(self.on_channels)
        self.image_combo.changed.connect(self.channels.show_layers)
        self.channel_layers.changed.connect(self._on_channel_layers)
        self.controls["sparse"].changed.connect(self.update_classes)

    # -- application ----------------------------------------------------------------
    @property
    def task(self) -> str:
        return APPLICATIONS[self.application.value]

    @property
    def app(self):
        """The adapter of the chosen application (widgets/applications)."""
        return self.apps[self.task]

    def show_application(self, app) -> None:
        """This section's texts for the application `app`."""
        self.labels_combo.label = app.target_kind or "Labels"
        self.labels_combo.tooltip = app.target_tooltip
        self.add_button.text, self.add_button.tooltip = app.add_text, app.add_tooltip

    # -- channels -------------------------------------------------------------------
    def input_channels(self) -> int:
        """The channels images are read with: the model's, or Input's before a model exists."""
        if self.session.has_model:
            return self.session.trainer.settings.model.channels
        return int(self.controls["channels"].value)

    def image_for(self, name: str, channels: int | None = None):
        """Image layer `name` as the model reads it (a ``ChannelImage``, widgets/_channels.py): with the Other
        channels chosen for it, or its Channel axis moved last; as it is for Mono and RGB."""
        return self.channels.image_for(name, self.input_channels() if channels is None else channels)

    def channel_members(self) -> set[str]:
        """Layers that are another image's channel (not images of their own) while Input has several."""
        if self.input_channels() == 1:
            return set()
        return {n for others in self.channel_groups.values() for n in others}

    def on_channels(self, *_):
        self.channels.show_controls()
        if self.pairs:
            self.update_pairs()  # joined layers show in the pairs only while they are read

    def _on_channel_layers(self, *_):
        image = self.channels.take_chosen()
        if image is not None and any(p[0] == image for p in self.pairs):
            self.update_pairs()

    def first_channels(self, layer) -> int:
        """The channels a new model takes from its first image: the Input chosen, if the image reads as that
        many channels, or if several were chosen (a mismatch is then explained); else as napari shows the
        layer, RGB (its colours) or not (Mono)."""
        chosen = int(self.controls["channels"].value)
        if chosen > 1 and (self.image_for(layer.name, chosen).channels == chosen or chosen != 3
                           or self.channel_groups.get(layer.name)):
            return chosen
        return layer.data.shape[-1] if layer.rgb else 1

    def set_input(self, channels: int) -> None:
        F.write_settings({"channels": self.controls["channels"]}, Settings().update(channels=channels))

    # -- the training set -------------------------------------------------------------
    def add_pair(self, image_name: str, labels_name: str, regions: str | None = None) -> bool:
        """Add an image with its labels (or points); refuse layers that do not fit, saying why. `regions`: a
        Shapes layer marking the parts labelled completely (``region_of``), None: the whole image."""
        try:
            layer, target = self.viewer.layers[image_name], self.viewer.layers[labels_name]
            # The first image of a new model sets Input; later ones, and any with a model, must fit it.
            first = not self.pairs and not self.session.has_model
            channels = self.first_channels(layer) if first else self.input_channels()
            image = self.image_for(image_name, channels)
            image.check(channels, trained=self.session.has_model)
            self.app.check_target(image, target)
            region = None if regions is None else self.region_of(image, target, regions)  # refused now, not at Start
            self.app.check_labelled(target, region)
        except (MiaError, KeyError) as e:
            self.notify(explain(e) if isinstance(e, MiaError) else f"Layer {e} not found.")
            return False
        if (image_name, labels_name) not in self.pairs:
            self.pairs.append((image_name, labels_name))
        if regions is None:
            self.pair_regions.pop((image_name, labels_name), None)
        else:
            self.pair_regions[(image_name, labels_name)] = regions
        if first:
            self.set_input(channels)
        self.update_pairs()
        n = len(self.pairs)
        # A successful add replaces an older error in the status line.
        self.status.value = f"'{image.label}' with '{labels_name}' is in the training set ({n} pair" \
                            f"{'s' if n != 1 else ''})."
        self.app.target_added(labels_name, target)
        return True

    def region_of(self, image, target, regions: str):
        """The mask of the reviewed regions in the Shapes layer `regions`, in the target's pixels (points: the
        image's)."""
        shapes = self.viewer.layers[regions]
        if not is_kind(shapes, "Shapes"):
            raise MiaError(f"'{regions}' is not a Shapes layer: draw the reviewed regions as rectangles or "
                           "polygons in a Shapes layer.")
        # `image`: a layer, or as the model reads it (``image_for``): the regions are drawn over its layer
        dims = image.shape if isinstance(image, ChannelImage) else image.data.shape
        shape = target.data.shape if is_kind(target, "Labels") else (dims[:-1] if image.rgb else dims)
        return region_mask(shapes, getattr(image, "layer", image), tuple(shape))

    def _on_remove(self, *_):
        chosen = set(self.pair_list.value)
        self.pairs = [p for p in self.pairs if self.pair_text(p) not in chosen]
        for p in [p for p in self.pair_regions if p not in self.pairs]:
            del self.pair_regions[p]
        self.update_pairs()
        self.status.value = f"{len(self.pairs)} pair{'s' if len(self.pairs) != 1 else ''} in the training set."

    def _on_validation(self, *_):
        chosen = set(self.pair_list.value)
        self.mark_validation([p for p in self.pairs if self.pair_text(p) in chosen])

    def mark_validation(self, pairs: list[Pair]) -> bool:
        """Use for validation: mark `pairs` as validation, or train on them again if all of them are marked.
        Marking every pair is refused: nothing would be left to train on."""
        if not self._mark(pairs, self.validation, self.test, "Use for validation", "for validation"):
            return False
        n = len(self.validation)
        self.status.value = (f"{n} pair{'s' if n != 1 else ''} for validation, {len(self.pairs) - n} for training "
                             "(the Validation split is not used)." if n else
                             "No pair is marked for validation: the Validation split holds images out.")
        return True

    def _on_test(self, *_):
        chosen = set(self.pair_list.value)
        self.mark_test([p for p in self.pairs if self.pair_text(p) in chosen])

    def mark_test(self, pairs: list[Pair]) -> bool:
        """Use for test: keep `pairs` aside as test images, or train on them again if all of them are marked.
        Marking every pair is refused: nothing would be left to train on."""
        if not self._mark(pairs, self.test, self.validation, "Use for test", "a test image"):
            return False
        n = len(self.test)
        self.status.value = (f"{n} test pair{'s' if n != 1 else ''}: never trained on; every training is scored on "
                             "them." if n else "No test pair: trainings are not scored on images kept aside.")
        return True

    def _mark(self, pairs: list[Pair], marked: set, other: set, button: str, what: str) -> bool:
        """Mark `pairs` in `marked` (and out of `other`), or unmark them if all of them are marked; True if done."""
        pairs = [p for p in pairs if p in self.pairs]
        if not pairs:
            self.notify(f"Select pairs in the training set first, then press {button}.")
            return False
        if all(p in marked for p in pairs):
            marked -= set(pairs)
        elif set(self.pairs) <= self.validation | self.test | set(pairs):
            self.notify(f"Not every pair can be {what}: nothing would be left to train on. Keep at least one pair "
                        "for training.")
            return False
        else:
            marked |= set(pairs)
            other -= set(pairs)
        self.update_pairs()
        return True

    def pair_text(self, p) -> str:
        region = self.pair_regions.get(p)
        others = self.channel_groups.get(p[0], ()) if self.input_channels() > 1 else ()
        return f"{' + '.join((p[0], *others))}  ←  {p[1]}" + (f"  [only in {region}]" if region else "") + \
            ("  (validation)" if p in self.validation else "") + ("  (test)" if p in self.test else "")

    def update_pairs(self):
        self.validation &= set(self.pairs)
        self.test &= set(self.pairs)
        self.pair_list.choices = [self.pair_text(p) for p in self.pairs]
        self.update_classes()

    def update_classes(self, *_):
        self.app.show_classes()
        self.update_validation()

    def update_validation(self) -> None:
        """Marked validation pairs replace the random split: the Validation split control says so."""
        marked = self.app.validation_count()
        control = self.controls["val_split"]
        control.enabled = not marked and self.session.state == IDLE
        control.tooltip = F.SPECS["val_split"][1] + (" Not used now: the images marked for validation are held "
                                                     "out." if marked else "")

    def forget_removed(self, names: set[str]) -> None:
        """Pairs whose layers were deleted leave the training set, and so do those of an image that lost the
        layer of one of its channels (it would train on fewer channels than it has); a deleted Shapes layer
        leaves its pairs whole."""
        lost = self.channels.forget_removed(names)
        self.channels.show_layers()
        kept = [p for p in self.pairs if p[0] in names and p[1] in names and p[0] not in lost]
        gone = [p for p, r in self.pair_regions.items() if r not in names or p not in kept]
        for p in gone:
            del self.pair_regions[p]
        if kept != self.pairs or gone:
            self.pairs = kept
            self.update_pairs()

    def round_facts(self) -> dict:
        """What a round records of the user's work since the last one: the corrected predictions newly in the
        training set, and the active minutes spent editing the training set's layers (targets and regions).
        Called at Start; the next round counts from then (``new_round``)."""
        corrected = self.app.corrected_pairs()
        layers = {n for p in self.pairs for n in p} | set(self.pair_regions.values())
        return {"corrected": len(corrected - self.counted_predictions),
                "human_minutes": round(self.annotation.minutes(layers), 2)}

    def new_round(self) -> None:
        self.counted_predictions |= self.app.corrected_pairs()
        self.annotation.new_round()
