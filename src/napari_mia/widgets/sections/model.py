"""The Train Model dock's model sections: the network, the training parameters, the device, the settings and
the augmentations (the controls of widgets/_forms.py), with Export, Find GPUs and Reset to defaults."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, Label, PushButton

from ...engine.errors import MiaError
from ...engine.models import available_devices, valid_encoders
from ...engine.starters import STARTERS, starter_named, starter_path
from .. import _forms as F
from .._messages import notify
from .._session import LOADING, explain, import_engine_libraries

NEW_NETWORK = "New network (below)"
CURRENT_MODEL = "The current model"  # offered only while a model that is not a starter is loaded
START_CHOICES = [NEW_NETWORK, *(st.title for st in STARTERS.values())]


class ModelSection:
    """`elsewhere_row`: the Other machine buttons (sections/elsewhere.py), shown in the Device section."""

    def __init__(self, session, controls: dict, status: Label, elsewhere_row: Container):
        self.session, self.controls, self.status = session, controls, status
        c = controls
        # Exported once per model, so it sits with the model's section rather than in the pinned actions,
        # which must fit napari's default window height beside the Training Data dock.
        self.export_button = PushButton(text="Export (bioimage.io)", tooltip="Save the model as a bioimage.io "
                                        "package for Fiji, QuPath, ilastik and BiaPy (tested before it is saved).")
        # A trained generalist to predict with before labelling anything (engine/starters.py). With a model, Start
        # continues from it: the choice shows where the model came from, and Reset Model makes it free again.
        self.start_from = ComboBox(
            label="Start from", choices=START_CHOICES, value=NEW_NETWORK,
            tooltip="New network: the architecture and encoder below, trained from your labels.\nNuclei "
                    "(fluorescence) starter: a model trained on 2D fluorescence nuclei (DSB 2018) that ships with "
                    "napari-mia. Press Predict to see its nuclei before labelling anything, then correct them, add "
                    "them to the training set and Start Training to fine-tune it.")
        self.model_box = Container(widgets=[self.start_from, *(c[f] for f in F.MODEL_FIELDS), self.export_button])
        self.params_box = Container(widgets=[c[f] for f in F.PARAM_FIELDS])
        self.find_devices_button = PushButton(text="Find GPUs", tooltip="Look for CUDA and Apple GPUs.")
        self.device_label = Label(value="GPU search not run yet")
        self.device_box = Container(widgets=[c["device"], c["precision"], self.find_devices_button,
                                             self.device_label, elsewhere_row])
        self.defaults_button = PushButton(
            text="Reset to defaults",
            tooltip="Put every setting of this window (all sections, also Augmentations and Prediction) back to "
                    "its default. The training set and the model's weights stay; so do the settings they fix "
                    "(input channels, label mode, and the network of a trained model).")
        self.settings_box = Container(widgets=[self.defaults_button, *(c[f] for f in F.SETTINGS_FIELDS)])
        self.augment_box = Container(widgets=[c[f] for f in F.AUGMENT_FIELDS])
        # widgets that must not change while a training runs
        self.locked = [self.defaults_button, *c.values(), self.find_devices_button]

    def sections(self) -> list[tuple[str, Container, bool]]:
        """(title, box, expanded) of the sections between the applications' data sections and Prediction."""
        return [("Deep learning model", self.model_box, True), ("Training parameters", self.params_box, True),
                ("Device", self.device_box, False), ("Settings", self.settings_box, False),
                ("Augmentations", self.augment_box, False)]

    def connect(self, load) -> None:
        """`load(path)`: Load Model's load (sections/actions.py), True if it started."""
        self.load = load
        self.find_devices_button.changed.connect(self.find_devices)
        self.controls["architecture"].changed.connect(self.on_architecture)
        self.start_from.changed.connect(self.on_start_from)

    def on_start_from(self, *_) -> bool:
        """Load the starter chosen (in a worker, as Load Model); True if the load started."""
        choice = self.start_from.value
        starter = next((st for st in STARTERS.values() if st.title == choice), None)
        if starter is None or self.session.has_model:
            return False
        try:
            started = self.load(starter_path(starter.name))
        except MiaError as e:
            notify(explain(e))
            self.status.value = explain(e)
            started = False
        if not started:
            self.show_start()
        return started

    def show_start(self) -> None:
        """The choice as the model stands: none (a new network), a starter, or another model."""
        loaded = self.session.loaded_from
        starter = starter_named(loaded) if loaded is not None else None
        value = starter.title if starter else CURRENT_MODEL if self.session.has_model else NEW_NETWORK
        with self.start_from.changed.blocked():
            self.start_from.choices = START_CHOICES + ([CURRENT_MODEL] if value == CURRENT_MODEL else [])
            self.start_from.value = value

    def on_architecture(self, *_):
        enc = self.controls["encoder"]
        current = enc.value
        enc.choices = valid_encoders(self.controls["architecture"].value)
        if current in enc.choices:
            enc.value = current

    def find_devices(self, *_) -> bool:
        """Look for GPUs in a worker: the first look imports torch (seconds), the viewer stays live."""
        def work():
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

    def lock(self, running: bool) -> None:
        """The network's shape can only change through Reset Model; the model is exported between runs."""
        loading = self.session.state == LOADING
        self.export_button.enabled = self.session.has_model and not running and not loading
        for f in ("architecture", "encoder", "channels", "label_mode", "pretrained"):
            self.controls[f].enabled = not running and not self.session.has_model
        if self.session.state != LOADING:  # a starter being loaded stays shown
            self.show_start()
        self.start_from.enabled = not running and not loading and not self.session.has_model
