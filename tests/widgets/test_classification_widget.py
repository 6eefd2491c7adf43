"""Image classification in the Train Model dock: a class per frame in the table, predictions shown and corrected."""

import csv

import numpy as np
import pytest
from qtpy.QtCore import Qt

from tests.conftest import DSB
from tests.widgets.conftest import docked, snapshot, unchanged, wait_idle, wait_free


def _frames(sparse: bool, n: int, skip: int = 0):
    """Real 256x256 fluorescence frames with few (<= 8) or many (>= 40) nuclei."""
    import tifffile

    if not DSB.is_dir():
        pytest.skip("../shared/data/dsb2018_fluo is not available")
    rows = [r for r in csv.DictReader((DSB / "index.csv").open())
            if (int(r["height"]), int(r["width"])) == (256, 256)
            and (int(r["n_nuclei"]) <= 8 if sparse else int(r["n_nuclei"]) >= 40)]
    return [tifffile.imread(DSB / "images" / f"{r['name']}.tif") for r in rows[skip:skip + n]]


@pytest.fixture
def cls_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    # frames alternate: sparse, dense, sparse, ...
    train = [f for pair in zip(_frames(True, 4), _frames(False, 4)) for f in pair]
    viewer.add_image(np.stack(train), name="train stack")
    viewer.add_image(np.stack([_frames(True, 1, skip=10)[0], _frames(False, 1, skip=10)[0]]), name="new stack")
    return docked(viewer, "Image classification", steps=3, patch=64)


def test_classify_frames_predict_correct_and_retrain(cls_widget, qtbot, tmp_path, warnings_shown):
    w, viewer = cls_widget, cls_widget.viewer
    table = w.class_table
    assert not w.section_classes.isHidden() and w.labels_combo.native.isHidden()
    assert set(w.controls["loss"].choices) == {"cross_entropy", "focal", "kl_divergence"}
    assert w.controls["metric"].value == "accuracy"
    snap = snapshot(viewer)

    assert not w.start()  # nothing classified yet
    assert "give at least one frame a class" in warnings_shown[-1]
    table.set_class_names(["sparse", "dense"])
    assert w.add_class_image("train stack") and len(table.rows()) == 8
    # As in MIA: a number key gives the selected frame its class and goes to the next one.
    table.table.setFocus()
    for k in range(8):
        qtbot.keyClick(table.table, Qt.Key_1 if k % 2 == 0 else Qt.Key_2)
    assert table.truth["train stack"] == [0, 1] * 4
    assert table.table.item(1, 2).text() == "dense"
    assert viewer.dims.current_step[0] == 7  # the viewer followed the selection

    assert w.start()
    wait_idle(qtbot, w.session)
    assert w.session.last_event.reason == "completed"
    assert w.session.trainer.settings.model.class_names == ["sparse", "dense"]

    w.predict_combo.value = "new stack"
    assert w.predict()
    wait_idle(qtbot, w.session)
    pred = table.predicted["new stack"]
    assert len(pred) == 2 and all(0.5 <= p <= 1 for _, p in pred)  # the winning class's probability
    rows = [r for r, (n, _) in enumerate(table.rows()) if n == "new stack"]
    assert table.table.item(rows[0], 3).text() in ("sparse", "dense") and table.table.item(rows[0], 4).text()
    viewer.layers.selection.active = viewer.layers["new stack"]
    viewer.dims.set_current_step(0, 1)
    overlay = viewer.canvas.overlays.text
    assert overlay.visible and overlay.text.startswith("new stack: ")
    assert unchanged(viewer, snap)

    # Correct the first frame by hand, accept the prediction of the other, retrain with both.
    table.table.clearSelection()
    table.select("new stack", 0)
    table.assign(0)
    assert w.add_prediction()
    assert table.truth["new stack"][0] == 0 and table.truth["new stack"][1] == pred[1][0]
    seen = []
    w.session.event.connect(seen.append)
    assert w.start()
    wait_idle(qtbot, w.session)
    assert w.session.last_event.reason == "completed"
    assert [e.num_train for e in seen if type(e).__name__ == "TrainingStarted"] == [10]
    assert unchanged(viewer, snap)

    path = tmp_path / "groups.pt"
    assert w.save_model(path)
    w.session.reset()
    w.application.value = "Semantic segmentation"
    table.set_class_names(["a", "b", "c"])
    assert w.load_model(path)
    wait_free(qtbot, w.session)  # the file is read in a worker
    assert w.application.value == "Image classification" and table.class_names() == ["sparse", "dense"]


def test_a_single_image_gets_one_class_and_a_removed_layer_leaves_the_table(cls_widget):
    w, viewer = cls_widget, cls_widget.viewer
    viewer.add_image(_frames(True, 1, skip=12)[0], name="one")
    assert w.add_class_image("one")
    assert w.class_table.rows() == [("one", 0)] and w.class_table.table.item(0, 1).text() == ""
    w.class_table.assign(1)
    items = w.training_items()
    assert items[0][1] == 1 and items[0][2] == "one"  # a 2D image: one class, not a list
    del viewer.layers["one"]
    assert w.class_table.rows() == []


def test_test_images_are_kept_aside_and_score_each_round(cls_widget, qtbot):
    w = cls_widget
    table = w.class_table
    table.set_class_names(["sparse", "dense"])
    assert w.add_class_image("train stack") and w.add_class_image("new stack")
    table.truth["train stack"] = [0, 1] * 4
    table.truth["new stack"] = [0, 1]
    table._fill()
    assert w.apps["classification"].mark_test(["new stack"])
    assert any("(test)" in table.table.item(r, 0).text() for r in range(table.table.rowCount()))
    seen = []
    w.session.event.connect(seen.append)
    assert w.start()
    wait_idle(qtbot, w.session)
    assert [e.num_train + e.num_val for e in seen if type(e).__name__ == "TrainingStarted"] == [8]
    (r1,) = w.session.trainer.rounds.rounds
    assert r1.test["images"] == 2 and 0 <= r1.test["correct"] <= 1  # each test frame scored, as evaluate does
    assert "Test, 2 images: accuracy" in w.session.plot_widget.rounds.message.value
