"""The "Train Model" dock: MIA's Training Window over the engine.

Thin on purpose: it turns layers into copied arrays, controls into a
``Settings``, and hands both to the viewer's ``TrainingSession``. What differs
between applications is asked of their adapters (widgets/applications); the
actions and what the session reports back are in _actions.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, Select, Table
from qtpy.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..engine.errors import MiaError
from ..engine.models import valid_encoders
from ..engine.settings import Settings
from ..engine.tasks import default_loss, task_losses
from . import _forms as F, _remembered
from ._actions import DockActions
from ._channels import ChannelImage, image_for
from ._layers import is_kind, is_prediction
from ._session import explain, session_for
from .applications import ADAPTERS
from .export import export_dialog

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

# shown name -> the engine's task
APPLICATIONS = {a.title: task for task, a in ADAPTERS.items()}
# The Prediction section's options when the dock opens for the first time, and after Reset to defaults.
# Auto: each image's objects are measured and brought to the model's size (where the model knows it).
PREDICTION_DEFAULTS = {"diameter": 0.0, "diameter_auto": True, "tta": False}


class TrainingWidget(DockActions, QWidget):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.pairs: list[tuple[str, str]] = []  # (image layer name, labels layer name)
        # Pairs the user chose to hold out: the validation set instead of a random split. A mark belongs to its
        # pair: it leaves with the pair (Remove selected, a deleted layer), and a pair added again trains.
        self.validation: set[tuple[str, str]] = set()
        self._epoch_text = ""  # the last epoch's result, kept in the status line during the next epoch
        self.controls = {f: F.make_control(f) for f in F.SPECS}
        c = self.controls

        # -- data -------------------------------------------------------------
        self.application = ComboBox(label="Application", choices=list(APPLICATIONS),
                                    tooltip=next(iter(ADAPTERS.values())).tooltip)
        self.image_combo = ComboBox(label="Image", choices=self._layer_names("Image"),
                                    tooltip="An image layer to train on.")
        # Multi-channel images (issue #16): shown while Input is more than one channel.
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
        self.labels_combo = ComboBox(label="Labels", choices=self._layer_names("Labels"),
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
        self.pair_buttons = Container(widgets=[self.remove_button, self.validation_button], layout="horizontal",
                                      labels=False)
        self.pair_buttons.margins = (0, 0, 0, 0)
        self.classes_label = Label(label="Classes", value="(add labels)")
        self.regions_combo = ComboBox(
            label="Reviewed regions", choices=self._region_choices(),
            tooltip="A Shapes layer whose rectangles or polygons mark the parts you labelled completely: there, "
                    "every unpainted pixel is background; outside them nothing is learned. Used by Add and by "
                    "Add prediction to training set (train only on the part of a prediction you checked).")
        self.labelled_label = Label(label="Labelled", value="")
        # pair -> the Shapes layer of its reviewed regions; pairs made from a prediction (0 = background)
        self.pair_regions: dict[tuple[str, str], str] = {}
        self.prediction_pairs: set[tuple[str, str]] = set()
        data = Container(widgets=[self.application, self.image_combo, self.channel_axis, self.channel_layers,
                                  self.labels_combo, self.regions_combo, self.add_button, self.pair_list,
                                  self.pair_buttons, c["label_mode"], c["sparse"], c["object_size"],
                                  c["object_intensity"], self.classes_label, self.labelled_label])
        # Every application's adapter lives as long as the dock: a loaded model or a prediction still
        # arriving may belong to another application than the one chosen now.
        self.apps = {task: adapter(self) for task, adapter in ADAPTERS.items()}
        self._data_sections = [s for a in self.apps.values() for s in a.data_sections()]
        # -- model and parameters --------------------------------------------------
        # Exported once per model, so it sits with the model's section rather than in the pinned actions,
        # which must fit napari's default window height beside the Training Data dock.
        self.export_button = PushButton(text="Export (bioimage.io)", tooltip="Save the model as a bioimage.io "
                                        "package for Fiji, QuPath, ilastik and BiaPy (tested before it is saved).")
        model = Container(widgets=[*(c[f] for f in F.MODEL_FIELDS), self.export_button])
        params = Container(widgets=[c[f] for f in F.PARAM_FIELDS])
        self.find_devices_button = PushButton(text="Find GPUs", tooltip="Look for CUDA and Apple GPUs.")
        self.device_label = Label(value="GPU search not run yet")
        # Training elsewhere (issue #18): the other machine's devices, so with this machine's.
        self.export_job_button = PushButton(
            text="Export training job…",
            tooltip="Write the training set (with the images marked for validation and the reviewed regions) and "
                    "these settings into a new folder, to train on another machine, e.g. a GPU server: "
                    "napari-mia train --job FOLDER (the folder's README.md gives the command). Layers are not "
                    "changed.")
        self.import_model_button = PushButton(
            text="Import model…",
            tooltip="Load a model trained on another machine (napari-mia train) with its settings, and show its "
                    "training record (the _record.csv beside it) in the Training Data dock.")
        self.elsewhere_row = Container(widgets=[self.export_job_button, self.import_model_button],
                                       layout="horizontal", labels=False, label="Other machine")
        self.elsewhere_row.margins = (0, 0, 0, 0)
        device = Container(widgets=[c["device"], c["precision"], self.find_devices_button, self.device_label, self.elsewhere_row])
        self.defaults_button = PushButton(
            text="Reset to defaults",
            tooltip="Put every setting of this window (all sections, also Augmentations and Prediction) back to "
                    "its default. The training set and the model's weights stay; so do the settings they fix "
                    "(input channels, label mode, and the network of a trained model).")
        settings = Container(widgets=[self.defaults_button, *(c[f] for f in F.SETTINGS_FIELDS)])
        augment = Container(widgets=[c[f] for f in F.AUGMENT_FIELDS])
        prediction = self._prediction_section()
        # -- actions ----------------------------------------------------------------
        self.start_button = PushButton(text="Start Training",
                                       tooltip="Train on the training set, continuing from the current weights.")
        self.stop_button = PushButton(text="Stop", tooltip="Stop after the current step; the weights are kept.")
        self.resume_button = PushButton(text="Resume", tooltip="Continue the stopped training where it stopped.")
        self.reset_button = PushButton(text="Reset Model", tooltip="Forget the trained weights and start over.")
        self.save_button = PushButton(text="Save Model", tooltip="Save weights and settings in one file.")
        self.load_button = PushButton(text="Load Model", tooltip="Load a model file and its settings.")
        self.predict_combo = ComboBox(label="Predict image", choices=self._layer_names("Image"),
                                      tooltip="The image to predict (a new labels layer appears).")
        self.predict_button = PushButton(text="Predict", tooltip="Predict the chosen image with the current model.")
        self.predict_all_button = PushButton(text="Predict all",
                                             tooltip="Predict every image layer (each frame of a stack).")
        self.add_prediction_button = PushButton(
            text="Add prediction to training set",
            tooltip="After correcting '<image> prediction' with napari's label tools, train on it too: it joins "
                    "the training set with its image, and Start Training continues from the current weights.")
        self.status = Label(value="No model yet.")
        actions = Container(widgets=[
            Container(widgets=[self.start_button, self.stop_button, self.resume_button], layout="horizontal",
                      labels=False),
            Container(widgets=[self.reset_button, self.save_button, self.load_button], layout="horizontal",
                      labels=False),
            self.predict_combo,
            Container(widgets=[self.predict_button, self.predict_all_button], layout="horizontal", labels=False),
            self.add_prediction_button, self.status])

        # Layout (widgets/_layout.py, issue #13): the sections scroll, the actions stay pinned below them
        # (in reach also when the Training Data dock halves the column), long texts are elided or wrapped.
        from ._layout import build_dock, caption_out_of_the_toasts

        self.scroll = build_dock(self, [("Data", data, True), *self._data_sections,
                                        ("Deep learning model", model, True), ("Training parameters", params, True),
                                        ("Device", device, False), ("Settings", settings, False),
                                        ("Augmentations", augment, False), ("Prediction", prediction, True),
                                        *(s for a in self.apps.values() for s in a.prediction_sections())],
                                 actions, wrapped=[self.status, self.classes_label, self.device_label,
                                                   self.labelled_label])
        caption_out_of_the_toasts(self.viewer)
        # widgets that must not change while a training runs
        self._locked = [self.application, self.add_button, self.remove_button, self.validation_button,
                        self.pair_list, self.reset_button, self.defaults_button,
                        self.load_button, self.start_button, *c.values(), self.find_devices_button,
                        self.import_model_button]

        # -- wiring -----------------------------------------------------------------
        self.add_button.changed.connect(self._on_add)
        self.remove_button.changed.connect(self._on_remove)
        self.validation_button.changed.connect(self._on_validation)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.session.stop)
        self.resume_button.changed.connect(self.session.resume)
        self.reset_button.changed.connect(self._on_reset)
        self.defaults_button.changed.connect(self.reset_settings)
        self.save_button.changed.connect(self._on_save)
        self.load_button.changed.connect(self._on_load)
        self.export_button.changed.connect(lambda *_: export_dialog(self))
        self.predict_button.changed.connect(self.predict)
        self.predict_all_button.changed.connect(self.predict_all)
        self.add_prediction_button.changed.connect(self.add_prediction)
        self.find_devices_button.changed.connect(self.find_devices)
        self.export_job_button.changed.connect(self._on_export_job)
        self.import_model_button.changed.connect(self._on_import_model)
        self.estimate_button.changed.connect(self.estimate_diameter)
        self.diameter_auto.changed.connect(self._on_diameter_auto)
        self._on_diameter_auto()
        self.evaluate_button.changed.connect(self.evaluate)
        c["architecture"].changed.connect(self._on_architecture)
        c["channels"].changed.connect(self._on_channels)
        self.image_combo.changed.connect(self._show_channel_layers)
        self.channel_layers.changed.connect(self._on_channel_layers)
        c["sparse"].changed.connect(self._update_classes)
        self.application.changed.connect(self._on_application)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                   self.viewer.layers.events.moved):
            ev.connect(self._refresh_layers)
        self.session.connect_widget(self, [(self.session.state_changed, self._update_buttons),
                                           (self.session.event, self._on_event),
                                           (self.session.failed, self._show_failure),
                                           (self.session.predict_progress, self._on_predict_progress)])
        # Closing the viewer (or this dock) stops the training: nothing would show its progress.
        session, apps = self.session, list(self.apps.values())

        def closed(*_):
            self._closed = True
            session.stop()
            for app in apps:
                app.close()

        self._closed = False
        self.destroyed.connect(closed)
        self._on_architecture()
        self._on_application()
        self._on_channels()
        self._restore_settings()  # the last session's, if any
        self._update_buttons()

    def _prediction_section(self) -> Container:
        """How Predict reads the images (the objects' size, test-time augmentation), and Evaluate."""
        self.diameter = FloatSpinBox(
            value=0.0, min=0.0, max=5000.0, step=1.0,
            tooltip="The typical diameter of the objects, in pixels, in the image you predict. The model rescales "
                    "the image so that its objects have the size it was trained on, and gives the result at the "
                    "image's own size. 0 = predict at the model's own scale (images like its training images).")
        self.estimate_button = PushButton(
            text="Estimate", tooltip="Measure the objects' typical diameter in the image chosen under Predict image "
                                     "(the frame on screen) and put it in the field.")
        self.diameter.native.setDecimals(1)
        self.diameter_row = Container(widgets=[self.diameter, self.estimate_button], layout="horizontal",
                                      labels=False, label="Object diameter (px)")
        self.diameter_row.margins = (0, 0, 0, 0)
        self.diameter_auto = CheckBox(
            text="Estimate it for each image", value=PREDICTION_DEFAULTS["diameter_auto"],
            tooltip="Measure the objects' diameter in every image (every frame of a stack) before predicting it, "
                    "and bring it to the size the model learned: images of another magnification work as they "
                    "are. Images where nothing is found, or whose objects are close to the model's size, are "
                    "predicted at the model's own scale. Untick to type a diameter, or 0 for the model's scale.")
        self.tta = CheckBox(
            text="Test-time augmentation", value=False,
            tooltip="Predict each image 8 times, flipped and rotated, and average: often a little more accurate "
                    "and smoother, but 8 times slower.")
        self.evaluate_combo = ComboBox(
            choices=[], tooltip="Your own labels of the image chosen under Predict image. Evaluate on images that "
                                "are not in the training set: the model has learnt those.")
        self.evaluate_button = PushButton(
            text="Evaluate", tooltip="Predict the image chosen under Predict image and score the prediction "
                                     "against the labels chosen here (the table below).")
        self.evaluate_row = Container(widgets=[self.evaluate_combo, self.evaluate_button], layout="horizontal",
                                      labels=False, label="Evaluate with")
        self.evaluate_row.margins = (0, 0, 0, 0)
        self.scores_table = Table(value=[], tooltip="Scores of the model's prediction against your labels, per "
                                                    "image (a stack: the mean over its frames).")
        self.scores_table.read_only = True
        from qtpy.QtWidgets import QStyledItemDelegate

        # Qt's own display of the texts: magicgui's delegate would show 0.009 as 9.000e-03
        self.scores_table.native.setItemDelegate(QStyledItemDelegate(self.scores_table.native))
        self.scores_table.visible = False
        self.scores: dict[str, dict] = {}  # image name -> scores of its last evaluation
        return Container(widgets=[self.diameter_row, self.diameter_auto, self.tta, self.evaluate_row,
                                  self.scores_table])

    def _on_diameter_auto(self, *_):
        self.diameter.enabled = self.estimate_button.enabled = not self.diameter_auto.value

    # -- application --------------------------------------------------------------
    @property
    def task(self) -> str:
        return APPLICATIONS[self.application.value]

    @property
    def app(self):
        """The adapter of the chosen application (widgets/applications)."""
        return self.apps[self.task]

    def _model_app(self):
        """The adapter of the model's application: its predictions take that application's form."""
        trainer = self.session.trainer
        return self.apps[trainer.settings.model.task] if trainer is not None else self.app

    def __getattr__(self, name: str):
        # What the adapters lend the dock (class_table, points_of, ...), for scripts and tests.
        for app in self.__dict__.get("apps", {}).values():
            if name in app.lends:
                return getattr(app, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _on_application(self, *_):
        """Show the controls of the chosen application; pairs of another kind leave the training set."""
        app, task, c = self.app, self.task, self.controls
        self.application.tooltip = app.tooltip
        # a widget that some application shows is shown only for the applications that list it
        for name in dict.fromkeys(n for a in self.apps.values() for n in a.shows):
            w = c[name] if name in c else getattr(self, name)
            if isinstance(w, QWidget):
                w.setVisible(name in app.shows)
            else:
                w.visible = name in app.shows
        if "evaluate_row" not in app.shows:
            self.scores_table.visible = False
        self.labels_combo.label = app.target_kind or "Labels"
        self.labels_combo.tooltip = app.target_tooltip
        self.add_button.text, self.add_button.tooltip = app.add_text, app.add_tooltip
        self.predict_combo.tooltip = app.predict_tooltip
        self.add_prediction_button.tooltip = app.add_prediction_tooltip
        # Losses and metrics that fit the task; a choice that does not fit falls back to the task's default.
        losses = task_losses(task)
        current = c["loss"].value
        c["loss"].choices = losses
        c["loss"].value = current if current in losses else default_loss(task)
        app.chosen()
        if self.pairs and task != getattr(self, "_pairs_task", task):
            self.pairs = []
            self._update_pairs()
        self._pairs_task = task
        self._refresh_layers()
        self._update_classes()

    # -- layers ---------------------------------------------------------------------
    def _layer_names(self, kind: str) -> list[str]:
        return [layer.name for layer in self.viewer.layers if is_kind(layer, kind)]

    def _target_choices(self, kind: str) -> list[tuple[str, str]]:
        """(shown text, layer name) for the Labels/Points combo: the model's own predictions last and marked,
        so that a prediction is not taken for the user's labels without notice."""
        layers = [layer for layer in self.viewer.layers if is_kind(layer, kind)]
        drawn = [(layer.name, layer.name) for layer in layers if not is_prediction(layer)]
        return drawn + [(f"{layer.name} (prediction)", layer.name) for layer in layers if is_prediction(layer)]

    def _refresh_layers(self, *_):
        target = self.app.target_kind or "Labels"
        for combo, kind in [(self.image_combo, "Image"), (self.labels_combo, target), (self.predict_combo, "Image"),
                            (self.evaluate_combo, target)]:
            current = combo.value
            combo.choices = self._target_choices(kind) if combo in (self.labels_combo, self.evaluate_combo) \
                else self._layer_names(kind)
            if current in combo.choices:
                combo.value = current
        current = self.regions_combo.value
        self.regions_combo.choices = self._region_choices()
        if current in self.regions_combo.choices:
            self.regions_combo.value = current
        # pairs whose layers were deleted leave the training set, and so do those of an image that lost the
        # layer of one of its channels (it would train on fewer channels than it has); a deleted Shapes layer
        # leaves its pairs whole
        names = {layer.name for layer in self.viewer.layers}
        lost = set()
        for image, others in list(self.channel_groups.items()):
            if image not in names or any(o not in names for o in others):
                lost.add(image)
                kept_channels = tuple(o for o in others if o in names)
                if image in names and kept_channels:
                    self.channel_groups[image] = kept_channels
                else:
                    del self.channel_groups[image]
        self._show_channel_layers()
        kept = [p for p in self.pairs if p[0] in names and p[1] in names and p[0] not in lost]
        gone = [p for p, r in self.pair_regions.items() if r not in names or p not in kept]
        for p in gone:
            del self.pair_regions[p]
        if kept != self.pairs or gone:
            self.pairs = kept
            self._update_pairs()
        for app in self.apps.values():
            app.layers_changed(names)

    def _region_choices(self) -> list[tuple[str, str | None]]:
        return [("(whole image)", None)] + [(n, n) for n in self._layer_names("Shapes")]

    def add_pair(self, image_name: str, labels_name: str, regions: str | None = None) -> bool:
        """Add an image with its labels (or points); refuse layers that do not fit, saying why. `regions`: a
        Shapes layer marking the parts labelled completely (``region_of``), None: the whole image."""
        try:
            layer, target = self.viewer.layers[image_name], self.viewer.layers[labels_name]
            # The first image of a new model sets Input; later ones, and any with a model, must fit it.
            first = not self.pairs and not self.session.has_model
            channels = self._first_channels(layer) if first else self.input_channels()
            image = self.image_for(image_name, channels)
            image.check(channels, trained=self.session.has_model)
            self.app.check_target(image, target)
            region = None if regions is None else self.region_of(image, target, regions)  # refused now, not at Start
            self.app.check_labelled(target, region)
        except (MiaError, KeyError) as e:
            self._notify(explain(e) if isinstance(e, MiaError) else f"Layer {e} not found.")
            return False
        if (image_name, labels_name) not in self.pairs:
            self.pairs.append((image_name, labels_name))
        if regions is None:
            self.pair_regions.pop((image_name, labels_name), None)
        else:
            self.pair_regions[(image_name, labels_name)] = regions
        if first:
            self._set_input(channels)
        self._update_pairs()
        n = len(self.pairs)
        # A successful add replaces an older error in the status line.
        self.status.value = f"'{image.label}' with '{labels_name}' is in the training set ({n} pair" \
                            f"{'s' if n != 1 else ''})."
        self.app.target_added(labels_name, target)
        return True

    def _take_channels(self, layer) -> None:
        """The first image of a training set sets Input (``_first_channels``)."""
        self._set_input(self._first_channels(layer))

    def _first_channels(self, layer) -> int:
        """The channels a new model takes from its first image: the Input chosen, if the image reads as that
        many channels, or if several were chosen (a mismatch is then explained); else as napari shows the
        layer, RGB (its colours) or not (Mono)."""
        chosen = int(self.controls["channels"].value)
        if chosen > 1 and (self.image_for(layer.name, chosen).channels == chosen or chosen != 3
                           or self.channel_groups.get(layer.name)):
            return chosen
        return layer.data.shape[-1] if layer.rgb else 1

    def _set_input(self, channels: int) -> None:
        F.write_settings({"channels": self.controls["channels"]}, Settings().update(channels=channels))

    # -- channels (issue #16) ----------------------------------------------------------
    def input_channels(self) -> int:
        """The channels images are read with: the model's, or Input's before a model exists."""
        if self.session.has_model:
            return self.session.trainer.settings.model.channels
        return int(self.controls["channels"].value)

    def image_for(self, name: str, channels: int | None = None):
        """Image layer `name` as the model reads it (a ``ChannelImage``, widgets/_channels.py): with the Other
        channels chosen for it, or its Channel axis moved last; as it is for Mono and RGB."""
        channels = self.input_channels() if channels is None else channels
        return image_for(self.viewer.layers, name, channels, self.channel_groups.get(name, ()),
                         self.channel_axis.value)

    def channel_members(self) -> set[str]:
        """Layers that are another image's channel (not images of their own) while Input has several."""
        if self.input_channels() == 1:
            return set()
        return {n for others in self.channel_groups.values() for n in others}

    def _on_channels(self, *_):
        self._show_channel_controls()
        if self.pairs:
            self._update_pairs()  # joined layers show in the pairs only while they are read

    def _show_channel_controls(self) -> None:
        """Channel axis and Other channels: shown while Input is several channels, unless the Image is a colour
        (RGB) layer, which holds its channels itself (neither applies to it)."""
        name = self.image_combo.value
        rgb = name is not None and name in self.viewer.layers and bool(self.viewer.layers[name].rgb)
        self.channel_axis.visible = self.channel_layers.visible = int(self.controls["channels"].value) > 1 \
            and not rgb

    def _show_channel_layers(self, *_):
        """Other channels: the image layers (not RGB) other than the Image, those chosen for it selected."""
        self._show_channel_controls()
        image = self.image_combo.value
        names = [layer.name for layer in self.viewer.layers
                 if is_kind(layer, "Image") and not layer.rgb and layer.name != image]
        self._showing_channels = True
        try:
            if list(self.channel_layers.choices) != names:
                self.channel_layers.choices = names
            self.channel_layers.value = [n for n in self.channel_groups.get(image, ()) if n in names]
        finally:
            self._showing_channels = False

    def _on_channel_layers(self, *_):
        """The layers chosen under Other channels become the Image's other channels, in the list's order."""
        image = self.image_combo.value
        if self._showing_channels or image is None:
            return
        chosen = set(self.channel_layers.value)
        others = tuple(n for n in self.channel_layers.choices if n in chosen)
        if others:
            self.channel_groups[image] = others
        else:
            self.channel_groups.pop(image, None)
        if any(p[0] == image for p in self.pairs):
            self._update_pairs()

    def _on_add(self, *_):
        self.app.on_add()

    def _on_remove(self, *_):
        chosen = set(self.pair_list.value)
        self.pairs = [p for p in self.pairs if self._pair_text(p) not in chosen]
        for p in [p for p in self.pair_regions if p not in self.pairs]:
            del self.pair_regions[p]
        self._update_pairs()
        self.status.value = f"{len(self.pairs)} pair{'s' if len(self.pairs) != 1 else ''} in the training set."

    def region_of(self, image, target, regions: str):
        """The mask of the reviewed regions in the Shapes layer `regions`, in the target's pixels (points: the
        image's)."""
        from ._layers import is_kind, region_mask

        shapes = self.viewer.layers[regions]
        if not is_kind(shapes, "Shapes"):
            raise MiaError(f"'{regions}' is not a Shapes layer: draw the reviewed regions as rectangles or "
                           "polygons in a Shapes layer.")
        # `image`: a layer, or as the model reads it (``image_for``): the regions are drawn over its layer
        dims = image.shape if isinstance(image, ChannelImage) else image.data.shape
        shape = target.data.shape if is_kind(target, "Labels") else (dims[:-1] if image.rgb else dims)
        return region_mask(shapes, getattr(image, "layer", image), tuple(shape))

    def _on_validation(self, *_):
        chosen = set(self.pair_list.value)
        self.mark_validation([p for p in self.pairs if self._pair_text(p) in chosen])

    def mark_validation(self, pairs: list[tuple[str, str]]) -> bool:
        """Use for validation: mark `pairs` as validation, or train on them again if all of them are marked.
        Marking every pair is refused: nothing would be left to train on."""
        pairs = [p for p in pairs if p in self.pairs]
        if not pairs:
            self._notify("Select pairs in the training set first, then press Use for validation.")
            return False
        if all(p in self.validation for p in pairs):
            self.validation -= set(pairs)
        elif set(self.pairs) <= self.validation | set(pairs):
            self._notify("Not every pair can be for validation: nothing would be left to train on. Keep at "
                         "least one pair for training.")
            return False
        else:
            self.validation |= set(pairs)
        self._update_pairs()
        n = len(self.validation)
        self.status.value = (f"{n} pair{'s' if n != 1 else ''} for validation, {len(self.pairs) - n} for training "
                             "(the Validation split is not used)." if n else
                             "No pair is marked for validation: the Validation split holds images out.")
        return True

    def _pair_text(self, p) -> str:
        region = self.pair_regions.get(p)
        others = self.channel_groups.get(p[0], ()) if self.input_channels() > 1 else ()
        return f"{' + '.join((p[0], *others))}  ←  {p[1]}" + (f"  [only in {region}]" if region else "") + \
            ("  (validation)" if p in self.validation else "")

    def _update_pairs(self):
        self.validation &= set(self.pairs)
        self.pair_list.choices = [self._pair_text(p) for p in self.pairs]
        self._update_classes()

    def _update_classes(self, *_):
        self.app.show_classes()
        self._update_validation()

    def _update_validation(self) -> None:
        """Marked validation pairs replace the random split: the Validation split control says so."""
        from ._session import IDLE

        marked = self.app.validation_count()
        control = self.controls["val_split"]
        control.enabled = not marked and self.session.state == IDLE
        control.tooltip = F.SPECS["val_split"][1] + (" Not used now: the images marked for validation are held "
                                                     "out." if marked else "")

    # -- settings -------------------------------------------------------------------
    def _on_architecture(self, *_):
        enc = self.controls["encoder"]
        current = enc.value
        enc.choices = valid_encoders(self.controls["architecture"].value)
        if current in enc.choices:
            enc.value = current

    def read_settings(self) -> Settings:
        return F.read_settings(self.controls, task=self.task, **self.app.settings(), **self._kept_settings())

    def _kept_settings(self) -> dict:
        """What the model takes of the controls also after training: the weights to use, and the adapters' own
        controls that every model keeps (segmentation's Post-processing)."""
        return {"keep": self.controls["keep"].value,
                **{k: v for app in self.apps.values() for k, v in app.kept_settings().items()}}

    def write_settings(self, settings: Settings) -> None:
        self.application.value = self.apps[settings.model.task].title
        F.write_settings(self.controls, settings)
        for app in self.apps.values():
            app.write_settings(settings)

    # -- remembered between sessions (widgets/_remembered.py) ---------------------------
    def prediction_section_options(self) -> dict:
        """The Prediction section's options (not model settings), as remembered."""
        return {"diameter": float(self.diameter.value), "diameter_auto": bool(self.diameter_auto.value),
                "tta": bool(self.tta.value)}

    def _write_prediction_options(self, options: dict) -> None:
        self.diameter.value = min(max(options["diameter"], self.diameter.min), self.diameter.max)
        self.diameter_auto.value, self.tta.value = options["diameter_auto"], options["tta"]

    def remember_settings(self, settings: Settings | None = None) -> bool:
        """Remember `settings` (default: the controls') for the dock of the next napari session."""
        if settings is None:
            try:
                settings = self.read_settings()
            except MiaError as e:  # a value being typed (e.g. class weights): the last good ones stay remembered
                log.info("napari-mia: settings not remembered: %s", e)
                return False
        return _remembered.save(settings, self.prediction_section_options())

    def _restore_settings(self) -> None:
        """The settings remembered by the last session reach the controls; if they do not fit, the defaults."""
        settings, prediction = _remembered.load()
        try:
            if settings is not None:
                self.write_settings(settings)
            self._write_prediction_options({**PREDICTION_DEFAULTS, **prediction})
        except Exception as e:  # noqa: BLE001 - a convenience: never a reason for the dock not to open
            log.warning("napari-mia: the remembered settings do not fit the Train Model dock (%s); it opens with "
                        "its defaults.", e)
            self.reset_settings(remember=False)
            self.status.value = "The settings of the last session did not fit this version: the defaults are used."

    def reset_settings(self, *_, remember: bool = True) -> None:
        """Reset to defaults: every control back to its default for the chosen application. The training set and
        the model stay, with the settings they fix (channels and label mode of the training set; the network
        of a trained model, whose controls are locked)."""
        from ..engine import applications

        task = self.task
        app = applications.get(task)
        defaults = F.dock_settings()
        defaults.model.task, defaults.train.loss = task, app.default_loss
        defaults.train.metric = app.default_metric or defaults.train.metric
        fixed = ["architecture", "encoder", "pretrained", "channels", "label_mode"] if self.session.has_model \
            else ["channels", "label_mode"] if self.app.has_training_data() else []
        for f in fixed:
            defaults.update(**{f: F.to_value(f, self.controls[f])})
        # Classification's class names belong to its table (the training set), not to the settings.
        defaults.model.class_names = self.app.settings().get("class_names", defaults.model.class_names)
        self.write_settings(defaults)
        self._write_prediction_options(PREDICTION_DEFAULTS)
        self.app.chosen()
        shown = [F.SPECS[f][0] for f in fixed
                 if f in self.app.shows or all(f not in a.shows for a in self.apps.values())]
        self.status.value = "Settings back to their defaults" + (
            f" (kept: {', '.join(shown)}, which the {'model' if self.session.has_model else 'training set'} "
            "needs)." if shown else ".")
        if remember:
            self.remember_settings()

    def hideEvent(self, event):  # noqa: N802 - Qt's name
        # Closing the dock or the viewer hides the dock first, while its controls still exist.
        try:
            self.remember_settings()
        except Exception:  # noqa: BLE001 - e.g. Qt deleted the controls already: remembering is a convenience
            log.warning("napari-mia: the Train Model settings were not remembered", exc_info=True)
        super().hideEvent(event)

    def find_devices(self, *_) -> bool:
        """Look for GPUs in a worker: the first look imports torch (seconds), the viewer stays live."""
        def work():
            from ..engine.models import available_devices
            from ._session import import_engine_libraries

            import_engine_libraries()
            return available_devices()

        def found(devices):
            dev = self.controls["device"]
            current = dev.value
            dev.choices = devices
            if current in devices:
                dev.value = current
            gpus = [d for d in devices if d not in ("auto", "cpu")]
            self.device_label.value = f"Found: {', '.join(gpus)}" if gpus else \
                "No GPU found: training runs on the CPU."
            self.status.value = self.device_label.value

        if not self.session.run_task(work, found):
            return False
        self.device_label.value = "Looking for GPUs…"
        self.status.value = "Looking for GPUs (the first time takes a few seconds)…"
        return True

    # -- actions --------------------------------------------------------------------
    def training_items(self) -> list:
        """Copies of the layers' data: training never sees (or touches) the live layers.

        (image, target, name, target name, rgb): the target is labels, (N, 3) points or a class per frame.
        The pairs marked for validation are not among them (``validation_items``).
        """
        return self.app.training_items()

    def validation_items(self) -> list:
        """Copies of the pairs marked for validation, as ``training_items``; [] when none is marked."""
        return self.app.validation_items()

    def _on_reset(self, *_):
        if self.session.has_model:
            answer = QMessageBox.question(self, "Reset model",
                                          "Forget the trained weights and start a new model?")
            if answer != QMessageBox.Yes:
                return
        self.session.reset()

    def _on_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", "napari-mia model (*.pt)")
        if path:
            self.save_model(path)

    def _on_load(self, *_):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "napari-mia model (*.pt *.zip);;All files (*)")
        if path:
            self.load_model(path)

    def _on_export_job(self, *_):
        folder = QFileDialog.getExistingDirectory(self, "Export training job: choose or create an empty folder")
        if folder:
            self.export_job(folder)

    def _on_import_model(self, *_):
        path, _ = QFileDialog.getOpenFileName(self, "Import model trained elsewhere", "",
                                              "napari-mia model (*.pt);;All files (*)")
        if path:
            self.import_model(path)
