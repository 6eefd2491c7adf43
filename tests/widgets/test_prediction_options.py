"""The Prediction section (object diameter, Estimate, test-time augmentation, Evaluate), Weights to use, the
new augmentations and the objects F1 curve. An untrained network with a recorded object diameter stands in for
a trained one: these tests are about what reaches the engine and what the user sees, not about learning."""

import numpy as np
import pytest

from tests.conftest import load_dsb
from tests.widgets.conftest import wait_free


def shown(control) -> bool:
    """Not hidden by the dock (the test viewer's window itself is never shown)."""
    return not control.native.isHidden()


def _give_model(widget, diameter=18.0):
    """A model as training leaves it (instances, objects of `diameter` px recorded), without the minutes."""
    from napari_mia.widgets._session import import_engine_libraries

    import_engine_libraries()
    from napari_mia.engine.trained_model import build_model
    from napari_mia.engine.trainer import Trainer

    widget.controls["label_mode"].value = "instances"
    widget.controls["pretrained"].value = False
    t = Trainer(widget.read_settings())
    t.settings.data.object_diameter = diameter
    t.model = build_model(t.settings.model, load_pretrained=False)
    widget.session.trainer = t
    widget._update_buttons()
    return t


@pytest.fixture
def predictor_calls(monkeypatch):
    """The options every predictor of the dock is made with, and whether its weights were a snapshot (a copy
    taken while training runs)."""
    from napari_mia.engine.trained_model import TrainedModel
    from napari_mia.engine.trainer import Trainer

    calls, snapshots, original, snapshot = [], [], TrainedModel.predictor, Trainer.snapshot
    monkeypatch.setattr(Trainer, "snapshot", lambda self: snapshots.append(1) or snapshot(self))

    def predictor(self, **kw):
        calls.append({"snapshot": bool(snapshots), **kw})
        snapshots.clear()
        return original(self, **kw)

    monkeypatch.setattr(TrainedModel, "predictor", predictor)
    return calls


def test_diameter_tta_and_kept_weights_reach_the_predictor(widget, nuclei_viewer, qtbot, predictor_calls):
    trainer = _give_model(widget, diameter=18.0)
    big = np.kron(nuclei_viewer.layers["nuclei"].data[0], np.ones((2, 2), np.uint8))  # objects twice as big
    nuclei_viewer.add_image(big, name="big")
    assert shown(widget.diameter_row) and shown(widget.tta)
    assert widget.diameter_auto.value  # estimated by default: untick it to type a diameter
    widget.diameter_auto.value = False
    widget.diameter.value = 36.0
    widget.tta.value = True
    widget.controls["keep"].value = "last"
    widget.predict_combo.value = "big"
    assert widget.predict()
    wait_free(qtbot, widget.session)
    assert predictor_calls[-1] == {"snapshot": False, "diameter": 36.0, "tta": True}
    assert trainer.settings.train.keep == "last" and widget.read_settings().train.keep == "last"
    assert nuclei_viewer.layers["big prediction"].data.shape == big.shape  # at the image's own size
    assert widget.session.diameters["big"] == 36.0
    assert widget.status.value == "Predicted big: objects' diameter 36 px (model: 18 px)."
    # 0 = the model's own scale; "Estimate it for each image" measures every image
    widget.diameter.value, widget.tta.value = 0.0, False
    widget.controls["keep"].value = "best"
    assert widget.prediction_options() == {"diameter": None, "tta": False}
    widget.diameter_auto.value = True
    assert not widget.diameter.enabled and not widget.estimate_button.enabled
    assert widget.prediction_options() == {"diameter": "auto", "tta": False}
    assert widget.predict()
    wait_free(qtbot, widget.session)
    assert predictor_calls[-1]["diameter"] == "auto" and trainer.settings.train.keep == "best"
    assert widget.session.diameters["big"] > 0 and "objects' diameter" in widget.status.value


def test_estimate_fills_the_diameter_from_the_frame_on_screen(widget, nuclei_viewer, warnings_shown):
    from napari_mia.engine.scale import estimate_diameter

    stack = nuclei_viewer.layers["nuclei"].data
    nuclei_viewer.dims.set_current_step(0, 2)
    widget.predict_combo.value = "nuclei"
    d = widget.estimate_diameter()
    assert d == estimate_diameter(stack[2]) and widget.diameter.value == pytest.approx(round(d, 1))
    assert "Objects in 'nuclei' are about" in widget.status.value
    nuclei_viewer.add_image(np.zeros((64, 64), np.uint8), name="empty")
    widget.predict_combo.value = "empty"
    assert widget.estimate_diameter() is None and widget.diameter.value == pytest.approx(round(d, 1))
    assert "No objects found in 'empty'" in warnings_shown[-1]
    # classification: no object diameter (the whole image is resized), test-time augmentation stays
    widget.application.value = "Image classification"
    assert not shown(widget.diameter_row) and not shown(widget.evaluate_row) and shown(widget.tta)
    widget.application.value = "Semantic segmentation"
    assert shown(widget.diameter_row)


def test_evaluate_scores_a_held_out_image_and_refuses_a_training_pair(widget, nuclei_viewer, qtbot,
                                                                      warnings_shown):
    from napari_mia.engine.evaluate import segmentation_scores

    trainer = _give_model(widget)
    image, truth, _ = load_dsb(6)[5]  # not one of the 4 training frames
    nuclei_viewer.add_image(image, name="unseen")
    nuclei_viewer.add_labels(truth.astype(np.uint16), name="unseen labels")
    assert widget.add_pair("nuclei", "nuclei labels")
    widget.predict_combo.value, widget.evaluate_combo.value = "nuclei", "nuclei labels"
    assert not widget.evaluate()
    assert "'nuclei' is in the training set" in warnings_shown[-1]
    assert not shown(widget.scores_table)
    widget.predict_combo.value, widget.evaluate_combo.value = "unseen", "unseen labels"
    assert widget.evaluate()
    wait_free(qtbot, widget.session)
    # As the dock predicts by default: each image's objects estimated (the model knows its objects' size).
    pred = trainer.predictor(**widget.prediction_options()).result(image, rgb=False, post=widget.app.post_process())
    want = segmentation_scores(pred, truth, instances=True)
    table = widget.scores_table.native
    assert shown(widget.scores_table) and table.columnCount() == 1
    assert table.horizontalHeaderItem(0).text() == "unseen"
    cells = {table.verticalHeaderItem(i).text(): table.item(i, 0).text() for i in range(table.rowCount())}
    assert cells["foreground IoU"] == f"{want['fg_iou']:.3f}"
    assert cells["object F1 (IoU 0.5)"] == f"{want['object_f1']:.3f}"
    assert cells["AP (IoU 0.5-0.95)"] == f"{want['ap']:.3f}"
    assert cells["true objects"] == str(want["true_objects"])
    assert cells["predicted objects"] == str(want["predicted_objects"])
    assert "'unseen' against 'unseen labels': foreground IoU" in widget.status.value
    assert not any(layer.name.startswith("unseen prediction") for layer in nuclei_viewer.layers)


def test_new_augmentations_and_weights_to_use_are_settings(widget):
    from napari_mia.engine.settings import Settings

    c, default = widget.controls, Settings()
    for f in ("zoom", "brightness_contrast", "gamma", "noise"):
        assert c[f].value == getattr(default.augment, f) and c[f].max == 1.0 and c[f].step == 0.1
    assert c["keep"].value == default.train.keep
    c["zoom"].value, c["noise"].value, c["keep"].value = 0.5, 0.3, "last"
    c["brightness_range"].value = (-0.4, 0.1)
    s = widget.read_settings()
    assert (s.augment.zoom, s.augment.noise, s.train.keep) == (0.5, 0.3, "last")
    assert s.augment.brightness_range == pytest.approx((-0.4, 0.1))
    widget.write_settings(Settings().update(gamma_range=(0.5, 2.0), keep="best"))
    assert c["gamma_range"].value == pytest.approx((0.5, 2.0)) and c["keep"].value == "best"


def test_plot_draws_the_objects_f1_and_marks_the_best_epoch(widget):
    from napari_mia.engine.events import EpochEnd

    plot = widget.open_plot_dock()
    for e, (objects, best) in enumerate([(0.4, True), (0.7, True), (0.6, False)], start=1):
        widget.session._on_event(EpochEnd(e, 0.5 / e, 0.3 * e, 0.6 / e, 0.25 * e, 1e-3, 10.0, best=best,
                                          val_objects=objects))
    plot.redraw()
    assert "best validation: epoch 2 (objects F1 0.700)" in plot.info.value
    plot._render(plot._snapshot(), (380, 500, 1.0))
    x, y = plot.lines["val_objects"].get_data()
    assert list(x) == [1, 2, 3] and list(y) == [0.4, 0.7, 0.6]
    assert plot.lines["val_objects"].get_label() == "validation objects F1"
    assert all(m.get_visible() and list(m.get_xdata()) == [2, 2] for m in plot.best_markers)
    assert plot.metric_legend.get_visible() and plot.ax_val_metric.get_title() == "metric per epoch"
    plot._render(plot._snapshot(), (380, 240, 1.0))  # a short plot: no legend over the curves, the title says it
    assert not plot.metric_legend.get_visible()
    assert plot.ax_val_metric.get_title() == "metric, objects F1 (purple)"
