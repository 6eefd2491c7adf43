"""The human-in-the-loop cycle in a real viewer: predict, correct, add, retrain."""

import numpy as np

from napari_mia.widgets._layers import layer_names
from tests.conftest import load_dsb
from tests.widgets.conftest import quick, snapshot, unchanged, wait_idle


def _predictions(viewer, image):
    return [layer for layer in viewer.layers if layer.metadata.get("napari_mia") == "prediction"
            and layer.metadata.get("napari_mia_image") == image]


def _predict(widget, qtbot, **kw):
    assert widget.predict(**kw)
    qtbot.waitUntil(lambda: not widget.session.busy and not widget.session._predicting, timeout=120_000)


def _fg_iou(pred, truth, region):
    p, t = pred[region] > 0, truth[region] > 0
    return (p & t).sum() / max((p | t).sum(), 1)


def test_predict_correct_add_retrain_learns_the_correction(widget, nuclei_viewer, qtbot, monkeypatch):
    viewer, session = nuclei_viewer, widget.session
    image, truth, _ = load_dsb(6)[5]  # not one of the 4 training frames
    viewer.add_image(image, name="unseen")
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=2, steps=3)
    user = snapshot(viewer)
    widget.start()
    wait_idle(qtbot, session)
    widget.predict_combo.value = "unseen"
    _predict(widget, qtbot)
    assert unchanged(viewer, user)
    (pred,) = _predictions(viewer, "unseen")
    assert pred.name == "unseen prediction" and pred.data.shape == image.shape
    # the microscopist repaints the left half with the true nuclei
    region = (slice(None), slice(0, 128))
    before = _fg_iou(pred.data, truth, region)
    corrected = np.array(pred.data)
    corrected[region] = np.where(truth[region] > 0, truth[region] + 1000, 0)
    pred.data = corrected
    assert widget.add_prediction()
    assert ("unseen", "unseen prediction") in widget.pairs
    user = snapshot(viewer)
    quick(widget, epochs=4, steps=6)
    # The retraining's validation score saturates (as the demo's single frame does: object F1 1.0 from the
    # first epoch on): a tie must not keep the first epoch's weights, trained only 6 steps on the correction.
    from napari_mia.engine.applications.segmentation import Segmentation

    monkeypatch.setattr(Segmentation, "validation_objects", lambda *a, **k: 1.0)
    epochs = []
    session.event.connect(lambda ev: epochs.append(ev) if type(ev).__name__ == "EpochEnd" else None)
    widget.start()  # continues from the current weights, now with the corrected image
    wait_idle(qtbot, session)
    assert len(epochs) == 4 and all(e.val_objects == 1.0 for e in epochs)
    kept = min(epochs, key=lambda e: e.val_loss)  # the tie goes to the lower validation loss
    assert session.trainer.best.epoch == kept.epoch and [e.epoch for e in epochs if e.best][-1] == kept.epoch
    assert kept.epoch > 1, [e.val_loss for e in epochs]
    _predict(widget, qtbot)
    assert unchanged(viewer, user)  # the corrected labels are training data now: never overwritten
    (new,) = _predictions(viewer, "unseen")
    after = _fg_iou(new.data, truth, region)
    assert after > before + 0.05, (before, after)


def test_predicting_again_updates_our_layer_only_while_unedited(widget, nuclei_viewer, qtbot):
    viewer = nuclei_viewer
    viewer.add_image(load_dsb(6)[5][0], name="unseen")
    viewer.add_labels(np.ones((4, 256, 256), np.uint16), name="nuclei prediction")  # the user's own layer
    widget.add_pair("nuclei", "nuclei labels")
    quick(widget, epochs=1, steps=2, patch=64, val_split=0.0)
    widget.start()
    wait_idle(qtbot, widget.session)
    user = snapshot(viewer)
    _predict(widget, qtbot, names=None)  # predict_combo: the first image, "nuclei"
    assert unchanged(viewer, user)  # the user's "nuclei prediction" is left alone
    (ours,) = _predictions(viewer, "nuclei")
    assert ours.name != "nuclei prediction" and ours.data.shape == (4, 256, 256)
    n_layers = len(viewer.layers)
    ours.data = np.zeros_like(ours.data)  # the user edits our prediction (clears it)
    _predict(widget, qtbot)
    assert len(viewer.layers) == n_layers + 1  # so the new prediction is a new layer, the edited one kept
    assert not ours.data.any()
    newest = _predictions(viewer, "nuclei")[-1]
    _predict(widget, qtbot)
    assert len(viewer.layers) == n_layers + 1  # unedited: updated in place
    assert newest in viewer.layers and newest.data.any()
    _predict(widget, qtbot, names=layer_names(viewer.layers, "Image"))  # Predict all
    assert [len(_predictions(viewer, n)) for n in ("nuclei", "unseen")] == [2, 1]
    assert _predictions(viewer, "unseen")[0].data.shape == (256, 256)
