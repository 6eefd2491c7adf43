"""Object detection in the Train Model dock: Points layers in, '<image> detections' out, corrected, retrained."""

import numpy as np
import pytest

from tests.engine.test_detection import MBM, _crop
from tests.widgets.conftest import docked, snapshot, unchanged, wait_idle, wait_free


@pytest.fixture
def cells_viewer(make_napari_viewer):
    """Four real H&E crops with a person's dots, each image with its Points layer, as napari users have them."""
    if not MBM.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from napari_mia.engine.images import read_image
    from napari_mia.engine.applications.heatmaps import read_points_csv

    viewer = make_napari_viewer()
    rows = read_points_csv(MBM / "points.csv", MBM / "images")
    for k, (f, pts) in enumerate([rows[0], rows[1], rows[2], rows[20]]):
        image, points = _crop((read_image(f)[..., :3], pts), 256)
        viewer.add_image(image, name=f"cells {k}", rgb=True)
        viewer.add_points(points[:, :2], name=f"cells {k} points")
    return viewer


@pytest.fixture
def det_widget(cells_viewer):
    return docked(cells_viewer, "Object detection", steps=3, patch=128)


def shown(control) -> bool:
    """Not hidden by the dock (the test viewer's window itself is never shown)."""
    return not control.native.isHidden()


def _held_out_loss(widget, viewer):
    image, points = viewer.layers["cells 3"], viewer.layers["cells 3 points"]
    return widget.session.trainer.evaluate([(np.array(image.data), widget.points_of(image, points))])["loss"]


def test_the_dock_offers_points_and_detection_controls(det_widget, cells_viewer, warnings_shown):
    w = det_widget
    assert w.labels_combo.label == "Points"
    assert set(w.labels_combo.choices) == {f"cells {k} points" for k in range(4)}
    assert shown(w.controls["object_size"]) and not shown(w.controls["label_mode"])
    assert set(w.controls["loss"].choices) == {"mse", "rmse", "msle", "mae"} and w.controls["loss"].value == "mse"
    s = w.read_settings()
    assert s.model.task == "detection" and s.data.object_size == 10
    # A stack is refused with a way out; the pair list stays empty.
    cells_viewer.add_image(np.zeros((3, 64, 64), np.uint8), name="stack")
    assert not w.add_pair("stack", "cells 0 points")
    assert "stack" in warnings_shown[-1] and "2D" in warnings_shown[-1] and w.pairs == []
    assert w.add_pair("cells 0", "cells 0 points")
    assert "objects" in w.classes_label.value
    # An RGB image holds its channels itself: Channel axis and Other channels do not apply to it.
    assert w.controls["channels"].value == 3 and w.image_combo.value == "cells 0"
    assert not shown(w.channel_axis) and not shown(w.channel_layers)
    w.application.value = "Semantic segmentation"  # points cannot train a segmentation: the pairs go
    assert w.pairs == [] and w.labels_combo.label == "Labels" and w.controls["loss"].value == "dice"


def test_train_predict_correct_add_retrain_from_points(det_widget, cells_viewer, qtbot, tmp_path, monkeypatch):
    from napari_mia.engine.trainer import Trainer

    w, viewer = det_widget, cells_viewer
    calibrations, calibrate = [], Trainer.calibrate_detection
    monkeypatch.setattr(Trainer, "calibrate_detection", lambda self: calibrations.append(calibrate(self))
                        or calibrations[-1])
    snap = snapshot(viewer)
    for k in range(2):
        assert w.add_pair(f"cells {k}", f"cells {k} points")
    # Learning itself is measured in tests/engine/test_detection.py (held-out loss); here, the dock's cycle.
    w.controls["preview_every"].value = 1  # watch it learn: the chosen image's detections after each epoch
    w.predict_combo.value = "cells 2"
    assert w.start()
    wait_idle(qtbot, w.session)
    assert w.session.last_event.reason == "completed" and np.isfinite(_held_out_loss(w, viewer))
    assert type(viewer.layers["cells 2 detections"]).__name__ == "Points"
    w.controls["preview_every"].value = 0
    assert calibrations  # the peak threshold was set from the training images when the run ended

    # Predict an image that is not in the training set: a Points layer over it.
    w.predict_combo.value = "cells 2"
    assert w.predict()
    wait_idle(qtbot, w.session)
    det = viewer.layers["cells 2 detections"]
    assert type(det).__name__ == "Points" and det.metadata["napari_mia"] == "prediction"
    assert list(det.features.columns) == ["class", "score"] and len(det.data) == len(det.features)
    assert unchanged(viewer, snap)

    # The person corrects it to the true cells (deleting, adding, moving points), adds it and retrains.
    truth = np.array(viewer.layers["cells 2 points"].data)
    det.data = truth
    assert w.add_prediction()
    assert ("cells 2", "cells 2 detections") in w.pairs and det.metadata["napari_mia"] == "training labels"
    total = sum(len(viewer.layers[p].data) for _, p in w.pairs)
    assert w.classes_label.value == f"{total} objects"  # every pair's points, the corrected ones included
    steps = w.session.trainer.history[-1]
    assert w.start()
    wait_idle(qtbot, w.session)
    assert w.session.last_event.reason == "completed" and w.session.trainer.history[-1] != steps
    # A new prediction never writes over the corrected points.
    assert w.predict()
    wait_idle(qtbot, w.session)
    assert np.array_equal(det.data, truth)
    assert "cells 2 detections [1]" in viewer.layers
    assert unchanged(viewer, snap)

    # The model file keeps the application: a new dock opens it as a detection model.
    path = tmp_path / "cells.pt"
    assert w.save_model(path)
    w.session.reset()
    w.application.value = "Semantic segmentation"
    assert w.load_model(path)
    wait_free(qtbot, w.session)  # the file is read in a worker
    assert w.application.value == "Object detection" and w.controls["loss"].value == "mse"
    assert shown(w.controls["object_size"])


@pytest.mark.parametrize("how", ["menu", "plugin"])
def test_points_are_accepted_however_the_dock_was_opened(cells_viewer, how, warnings_shown):
    """`make demo` and scripts open the dock with add_plugin_dock_widget, which hands it napari's proxy
    layers: their Points layers must be accepted as from the Plugins menu (issue #13, defect 1)."""
    w = docked(cells_viewer, "Object detection", steps=3, patch=128, how=how)
    assert set(w.labels_combo.choices) == {f"cells {k} points" for k in range(4)}
    w.image_combo.value, w.labels_combo.value = "cells 0", "cells 0 points"
    w.add_button.native.click()
    assert w.pairs == [("cells 0", "cells 0 points")], warnings_shown
    assert w.add_pair("cells 1", "cells 1 points") and "objects" in w.classes_label.value
    assert not any("is not a Points layer" in m for m in warnings_shown)
