"""Start from: Nuclei (fluorescence) starter, in a real viewer: loaded without a label, it predicts a field it
never saw; Reset Model frees the choice again."""

import numpy as np
import tifffile
from qtpy.QtWidgets import QMessageBox

import napari_mia.widgets.sections.actions as actions
from napari_mia.engine import starters
from napari_mia.widgets.sections.model import NEW_NETWORK
from tests.conftest import DSB, _dsb_names
from tests.widgets.conftest import wait_free, wait_idle

STARTER = "Nuclei (fluorescence) starter"


def test_start_from_the_nuclei_starter_predicts_before_any_label(widget, nuclei_viewer, qtbot, monkeypatch):
    session = widget.session
    # A field of a kind the starter was never trained on (benchmarks/heldout_sets.py holds 520x696 fields out).
    (name,) = _dsb_names(1, (520, 696))
    nuclei_viewer.add_image(tifffile.imread(DSB / "images" / f"{name}.tif"), name="field")
    truth = tifffile.imread(DSB / "masks" / f"{name}.tif")
    assert widget.start_from.value == NEW_NETWORK and widget.start_from.enabled
    assert STARTER in widget.start_from.choices

    # An installation without the starter's file: said in plain words, nothing loaded, the layers untouched.
    layers = [(layer.name, np.array(layer.data)) for layer in nuclei_viewer.layers]
    with monkeypatch.context() as m:
        m.setitem(starters.STARTERS, "nuclei", starters.Starter("nuclei", STARTER, "gone.pt"))
        widget.start_from.value = STARTER
    assert "not in this installation of napari-mia" in widget.status.value and not session.has_model
    assert widget.start_from.value == NEW_NETWORK
    assert len(nuclei_viewer.layers) == len(layers)
    assert all(la.name == n and np.array_equal(la.data, d) for la, (n, d) in zip(nuclei_viewer.layers, layers))

    widget.start_from.value = STARTER
    assert "Loading the Nuclei (fluorescence) starter" in widget.status.value
    wait_free(qtbot, session)
    assert session.has_model and "starter loaded: press Predict" in widget.status.value
    assert widget.start_from.value == STARTER and not widget.start_from.enabled
    assert not widget.controls["architecture"].enabled and widget.controls["label_mode"].value == "instances"

    widget.predict_combo.value = "field"
    assert widget.predict()
    qtbot.waitUntil(lambda: "field prediction" in nuclei_viewer.layers, timeout=60_000)
    wait_idle(qtbot, session)
    found = len(np.unique(nuclei_viewer.layers["field prediction"].data)) - 1
    drawn = len(np.unique(truth)) - 1
    assert 0.7 * drawn < found < 1.3 * drawn, (found, drawn)
    assert "(model: " in widget.status.value  # diameter auto: the field was rescaled to the starter's nuclei

    monkeypatch.setattr(actions.QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.Yes))
    widget.reset_button.native.click()
    assert not session.has_model
    assert widget.start_from.value == NEW_NETWORK and widget.start_from.enabled
