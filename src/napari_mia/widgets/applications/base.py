"""The interface between the Train Model dock and one application.

The dock holds what every application shares (the Data section's image combo and pair list, the model,
parameters and settings, the actions); an adapter holds what one application means: which layers it
reads, which of the dock's controls it shows and which it adds, how layers become training items, the
layer its predictions become and how a corrected prediction goes back into the training set.

One adapter per application and dock (``Adapter(dock)``); ``dock.app`` is the chosen one, but every
adapter lives as long as the dock, since a loaded model or a running prediction may belong to another.
The defaults serve the applications that learn from an image and a target layer drawn on it (the dock's
pairs); an application with its own training set (classification's table) overrides them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ...engine.samples import sparse_from_full
from .._layers import digest, is_prediction
from .._messages import notify

if TYPE_CHECKING:
    from ..training import TrainingWidget


class DockApplication:
    #: the engine's name of the application (``Settings.model.task``)
    task: ClassVar[str]
    #: its name in the Application combo, and the combo's tooltip while it is chosen
    title: ClassVar[str]
    tooltip: ClassVar[str]
    #: the layer type the user draws the targets in ("Labels", "Points"), None: no target layer (no pairs)
    target_kind: ClassVar[str | None] = None
    #: texts of the dock's common controls while this application is chosen
    target_tooltip: ClassVar[str] = "The labels layer drawn on that image (0 = background)."
    add_text: ClassVar[str] = "Add to training set"
    add_tooltip: ClassVar[str] = ""
    predict_tooltip: ClassVar[str]
    add_prediction_tooltip: ClassVar[str]
    #: Start Training's message when the training set is empty
    empty_message: ClassVar[str]
    #: the dock's optional widgets (controls, dock attributes, ``section_*``) this application shows;
    #: a widget some application lists is hidden while another is chosen
    shows: ClassVar[tuple[str, ...]] = ()
    #: names the dock lends from this adapter (``dock.points_of`` ...), for scripts and tests
    lends: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dock: TrainingWidget):
        self.dock = dock
        self.viewer = dock.viewer

    # -- the dock's sections --------------------------------------------------------------
    def data_sections(self) -> list[tuple[str, object, bool]]:
        """(title, widget, expanded) sections this application adds after Data; locked during training."""
        return []

    def prediction_sections(self) -> list[tuple[str, object, bool]]:
        """(title, widget, expanded) sections this application adds last, for its predictions."""
        return []

    def chosen(self) -> None:
        """The user picked this application: fix settings that do not fit it (the losses are the dock's)."""

    def close(self) -> None:
        """The dock is gone: let go of the viewer's events."""

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict:
        """Settings this application adds to the controls' while it is chosen."""
        return {}

    def kept_settings(self) -> dict:
        """Settings of this adapter's own controls that every model keeps, whichever application it serves."""
        return {}

    def write_settings(self, settings) -> None:
        """A loaded model's settings reach this adapter's controls (called on every adapter)."""

    def post_process(self):
        """What the predictor is given as `post` for this application's models (None: nothing)."""
        return None

    def prediction_options(self, diameter, tta: bool) -> dict:
        """The predictor's options for this application's models, from the Prediction section: the objects'
        diameter in the image (a number, "auto", or None for the model's own scale) and test-time augmentation."""
        return {"diameter": diameter, "tta": tta}

    # -- training set ---------------------------------------------------------------------
    def check_target(self, image, target) -> None:
        """Raise a DataError saying why `target` cannot train with `image` (the image as the model reads it,
        ``dock.image_for``: like its layer, with ``name``, ``data``, ``rgb``, ``scale``, ``translate``, and
        ``shape``, the data's shape without reading it; the channels of a multi-channel image last)."""
        raise NotImplementedError

    def check_labelled(self, target, region) -> None:
        """Raise a DataError if `target` (with the reviewed regions' mask `region`, or None) teaches nothing, so
        that Add refuses it rather than Start, after the libraries have loaded."""

    def target_added(self, name: str, target) -> None:
        """A pair with the target layer `target` (named `name`) joined the training set."""

    def target_of(self, image, target):
        """A copy of a pair's target as the engine takes it."""
        return np.array(target.data)

    def on_add(self) -> None:
        """The Add button: the chosen image with the chosen target layer; a prediction chosen as the target
        becomes training labels, said plainly."""
        dock = self.dock
        if dock.image_combo.value is None or dock.labels_combo.value is None:
            dock._notify(f"Choose an image layer and the {self.target_kind.lower()} layer drawn on it.")
            return
        name = dock.labels_combo.value
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        prediction = layer is not None and is_prediction(layer)
        if not dock.add_pair(dock.image_combo.value, name, regions=self._regions()):
            return
        if prediction:
            dock.prediction_pairs.add((dock.image_combo.value, name))
        if prediction:
            # From now on these are training labels: no prediction writes over them.
            layer.metadata["napari_mia"] = "training labels"
            dock._refresh_layers()
            message = (f"'{name}' is the model's prediction, now used as training labels. Correct its mistakes "
                       "first: the model learns from it as it is.")
            notify(message, "info")
            dock.status.value = message

    def layers_changed(self, names: set[str]) -> None:
        """The viewer's layers are now `names` (every adapter is told): forget what was removed."""

    def has_training_data(self) -> bool:
        return bool(self.dock.pairs)

    def show_classes(self) -> None:
        """Say what the training set holds (the Classes line, or the class table's tooltip)."""

    def _regions(self) -> str | None:
        """The Shapes layer chosen under Reviewed regions, if this application shows that control."""
        return self.dock.regions_combo.value if "regions_combo" in self.shows else None

    def training_items(self) -> list:
        """Copies of the layers' data: (image, target, name, target name, rgb, reviewed regions or
        None) for the session; the pairs
        marked for validation or test are not among them."""
        return self._items([p for p in self.dock.pairs if p not in self.dock.validation and p not in self.dock.test])

    def validation_items(self) -> list:
        """The pairs marked for validation, as ``training_items`` copies them ([]: none is marked)."""
        return self._items([p for p in self.dock.pairs if p in self.dock.validation])

    def test_items(self) -> list:
        """The pairs kept aside as test images, as ``training_items`` copies them ([]: none is marked)."""
        return self._items([p for p in self.dock.pairs if p in self.dock.test])

    def corrected_pairs(self) -> set:
        """Pairs made from a prediction that train in this round (``Round.corrected`` counts the new ones)."""
        return {p for p in self.dock.prediction_pairs if p in self.dock.pairs and p not in self.dock.validation
                and p not in self.dock.test}

    def validation_count(self) -> int:
        """How many images are marked for validation (0: the validation split holds images out)."""
        return len(self.dock.validation)

    def _items(self, pairs) -> list:
        dock, out = self.dock, []
        for pair in pairs:
            img_name, lab_name = pair
            # as the model reads it: the layers of its other channels joined, or its channel axis moved last
            img, lab = dock.image_for(img_name), self.viewer.layers[lab_name]
            target = self.target_of(img, lab)
            shapes = dock.pair_regions.get(pair)
            region = None if shapes is None or shapes not in self.viewer.layers else dock.region_of(img, lab, shapes)
            if pair in dock.prediction_pairs and dock.controls["sparse"].value:
                # A corrected prediction says 0 = background: in a sparse set, only its reviewed regions (or the
                # whole image) are labelled.
                target, region = sparse_from_full(target, region), None
            out.append((np.array(img.data), target, img_name, lab_name, bool(img.rgb), region))
        return out

    # -- predictions ----------------------------------------------------------------------
    def show_prediction(self, image_layer, result) -> None:
        """The predictor's result for `image_layer` becomes a layer (or a table) in the viewer."""
        raise NotImplementedError

    def add_prediction(self, image: str | None) -> bool:
        """Add Prediction: the corrected prediction of `image` joins the training set."""
        dock = self.dock
        ours = self.prediction_layers(image)
        if image is None or not ours:
            dock._notify(f"Predict '{image}' first, correct the prediction, then add it to the training set.")
            return False
        active = self.viewer.layers.selection.active
        layer = active if active in ours else ours[-1]
        regions = self._regions()
        if not dock.add_pair(image, layer.name, regions=regions):
            return False
        dock.prediction_pairs.add((image, layer.name))
        # From now on these are the user's training labels: no prediction writes over them.
        layer.metadata["napari_mia"] = "training labels"
        dock._refresh_layers()
        where = f", only inside the regions drawn in '{regions}' (what you checked)" if regions else \
            " (all of it: draw the part you checked in a Shapes layer and choose it under Reviewed regions to " \
            "train on that part only)"
        dock.status.value = f"'{layer.name}' added to the training set{where}. Start Training continues from " \
                            "the current weights."
        return True

    # -- evaluation (the Prediction section's Evaluate) --------------------------------------
    def in_training_set(self, image: str, target: str) -> bool:
        """Whether the model learnt from `image` (with any target): its scores would flatter the model. A pair
        marked for validation or test was held out: it may be evaluated."""
        return any(p[0] == image for p in self.dock.pairs if p not in self.dock.validation and p not in self.dock.test)

    def scores(self, result, truth, diameter: float | None) -> dict:
        """Shown name -> value of a prediction (`result`, as the predictor gave it) against `truth` (as
        ``target_of`` copies it); `diameter`: the objects' diameter the prediction used (None: the model's)."""
        raise NotImplementedError

    @classmethod
    def after_training(cls, trainer) -> None:
        """After a run's last event, in the training worker (detection settles its peak threshold)."""

    def prediction_layers(self, image_name) -> list:
        """Our prediction layers of this image, oldest first (found by metadata: the user may rename them)."""
        return [layer for layer in self.viewer.layers if layer.metadata.get("napari_mia") == "prediction"
                and layer.metadata.get("napari_mia_image") == image_name]

    def reusable(self, image_name):
        """Our latest prediction layer of this image if the user has not edited it, else None: a later
        prediction updates it in place; an edited one, or a user's layer of that name, is never touched."""
        ours = self.prediction_layers(image_name)
        if ours and ours[-1].metadata.get("napari_mia_digest") == digest(ours[-1].data):
            return ours[-1]
        return None

    def mark(self, layer, image_layer, data) -> None:
        layer.metadata.update(napari_mia="prediction", napari_mia_image=image_layer.name,
                              napari_mia_digest=digest(data))
        self.dock.status.value = f"Predicted {image_layer.name}"
