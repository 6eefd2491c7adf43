"""The Train Model dock's model sections: the network, the training parameters, the device, the settings and
the augmentations (the controls of widgets/_forms.py), with Export, Find GPUs and Reset to defaults."""

from __future__ import annotations

from magicgui.widgets import Container, Label, PushButton

from ...engine.models import available_devices, valid_encoders
from .. import _forms as F
from .._session import LOADING, import_engine_libraries


class ModelSection:
    """`elsewhere_row`: the Other machine buttons (sections/elsewhere.py), shown in the Device section."""

    def __init__(self, session, controls: dict, status: Label, elsewhere_row: Container):
        self.session, self.controls, self.status = session, controls, status
        c = controls
        # Exported once per model, so it sits with the model's section rather than in the pinned actions,
        # which must fit napari's default window height beside the Training Data dock.
        self.export_button = PushButton(text="Export (bioimage.io)", tooltip="Save the model as a bioimage.io "
                                        "package for Fiji, QuPath, ilastik and BiaPy (tested before it is saved).")
        self.model_box = Container(widgets=[*(c[f] for f in F.MODEL_FIELDS), self.export_button])
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

    def connect(self) -> None:
        self.find_devices_button.changed.connect(self.find_devices)
        self.controls["architecture"].changed.connect(self.on_architecture)

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
