"""Sparse labels, reviewed regions and a prediction added by region, through the real dock (issue #16)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mia.engine.targets import IGNORE
from tests.conftest import load_dsb
from tests.widgets.conftest import docked, snapshot, unchanged, wait_idle


@pytest.fixture
def two_nuclei(make_napari_viewer):
    pairs = load_dsb(2)
    viewer = make_napari_viewer()
    for k, (image, mask, _) in enumerate(pairs):
        viewer.add_image(image, name=f"cells {k}")
    return viewer, pairs


def _sparse_paint(mask):
    """What a person paints in sparse mode: 3 whole nuclei (2, 3, 4) and background (1) around them."""
    from scipy.ndimage import binary_dilation

    ids = np.unique(mask[mask > 0])[:3]
    out = np.zeros(mask.shape, np.uint8)
    for k, v in enumerate(ids, start=2):
        out[mask == v] = k
    out[binary_dilation(np.isin(mask, ids), iterations=4) & (mask == 0)] = 1
    return out, ids


def _sources(w):
    from napari_mia.engine.task_data import sources_for_task

    items = w.training_items()
    return sources_for_task(items, w.read_settings(), rgb=[it[4] for it in items], regions=[it[5] for it in items])


def test_sparse_painting_trains_on_what_was_painted_only(two_nuclei, qtbot):
    viewer, pairs = two_nuclei
    w = docked(viewer, "Semantic segmentation", steps=2, patch=64)
    w.controls["label_mode"].value = "instances"
    w.controls["sparse"].value = True
    painted = []
    for k, (_, mask, _) in enumerate(pairs):
        paint, ids = _sparse_paint(mask)
        painted.append((paint, ids))
        viewer.add_labels(paint, name=f"cells {k} labels")
        w.image_combo.value, w.labels_combo.value = f"cells {k}", f"cells {k} labels"
        w.add_button.native.click()
    assert len(w.pairs) == 2
    # Background painted with 1 in several strokes is not taken for a class painted in many places.
    assert w.controls["label_mode"].value == "instances"
    # The dock says which value paints background, and how much is labelled.
    assert "1 = background" in w.classes_label.value or "background with 1" in w.classes_label.value
    assert "not labelled (ignored)" in w.labelled_label.value and "px background" in w.labelled_label.value
    first = w.labelled_label.value
    # More painting is counted as it happens.
    layer = viewer.layers["cells 0 labels"]
    layer.paint((10, 10), 1)
    qtbot.waitUntil(lambda: w.labelled_label.value != first, timeout=5000)
    # The other nuclei are not taught as background: they are ignored.
    (src0, src1) = _sources(w)
    t = src0.get().target
    mask0, ids0 = pairs[0][1], painted[0][1]
    others = (mask0 > 0) & ~np.isin(mask0, ids0)
    assert (t[others] == IGNORE).all()
    snap = snapshot(viewer)
    w.start_button.native.click()
    wait_idle(qtbot, w.session)
    assert type(w.session.last_event).__name__ == "TrainingFinished" and w.session.trainer.settings.data.sparse
    assert unchanged(viewer, snap)


def test_reviewed_box_and_a_prediction_added_by_region_only(two_nuclei, qtbot, warnings_shown):
    viewer, pairs = two_nuclei
    w = docked(viewer, "Semantic segmentation", steps=2, patch=64)
    image, mask, _ = pairs[0]
    viewer.add_labels(mask.astype(np.uint16), name="cells 0 labels")
    box = viewer.add_shapes([np.array([[0, 0], [100, 120]])], shape_type="rectangle", name="checked")
    w.image_combo.value, w.labels_combo.value = "cells 0", "cells 0 labels"
    w.regions_combo.value = "checked"
    w.add_button.native.click()
    assert w.pair_regions[("cells 0", "cells 0 labels")] == "checked"
    assert "[only in checked]" in w.pair_list.choices[0]
    (src,) = _sources(w)
    t = src.get().target
    assert (t[101:, :] == IGNORE).all() and (t[:, 121:] == IGNORE).all() and (t[:100, :120] != IGNORE).all()

    # A corrected prediction of the other image: only the box the user checked joins the training set.
    pred = pairs[1][1].astype(np.uint16)
    layer = viewer.add_labels(pred, name="cells 1 prediction")
    layer.metadata.update(napari_mia="prediction", napari_mia_image="cells 1")
    box.data = [np.array([[50, 50], [150, 150]])]
    w.controls["label_mode"].value = "instances"
    w.controls["sparse"].value = True  # a sparse set: the prediction's 0 becomes background inside the box
    snap = snapshot(viewer)
    assert w.app.add_prediction("cells 1")
    assert "only inside the regions drawn in 'checked'" in w.status.value
    items = {it[2]: it for it in w.training_items()}
    target = items["cells 1"][1]
    inside = np.zeros(pred.shape, bool)
    inside[50:151, 50:151] = True
    assert (target[~inside] == 0).all()  # outside the box: not labelled
    assert (target[inside] >= 1).all() and np.array_equal(target[inside] > 1, pred[inside] > 0)
    assert unchanged(viewer, snap)

    # Bad regions get a plain message and change nothing.
    viewer.add_shapes(name="empty")
    w.regions_combo.value = "empty"
    w.image_combo.value, w.labels_combo.value = "cells 0", "cells 0 labels"
    w.add_button.native.click()
    assert any("holds no shapes" in m for m in warnings_shown)
    far = viewer.add_shapes([np.array([[900, 900], [950, 950]])], shape_type="rectangle", name="far")
    w.regions_combo.value = far.name
    w.add_button.native.click()
    assert any("None of the regions in 'far' lies on 'cells 0'" in m for m in warnings_shown)
    assert unchanged(viewer, snap)


def test_label_one_as_background_without_sparse_is_explained(two_nuclei, qtbot, warnings_shown):
    viewer, pairs = two_nuclei
    w = docked(viewer, "Semantic segmentation", steps=2, patch=64)
    w.controls["label_mode"].value = "instances"
    paint, _ = _sparse_paint(pairs[0][1])
    viewer.add_labels(paint, name="cells 0 labels")
    w.image_combo.value, w.labels_combo.value = "cells 0", "cells 0 labels"
    w.add_button.native.click()
    assert any("label 1 is painted as" in m and "Sparse labels" in m for m in warnings_shown)
    # The label mode is not guessed from the mistake; in instance mode Start refuses it, in the same words.
    assert w.controls["label_mode"].value == "instances"
    snap = snapshot(viewer)
    w.start_button.native.click()
    wait_idle(qtbot, w.session)
    assert "Sparse labels" in w.status.value and "label 1" in w.status.value
    assert unchanged(viewer, snap)
