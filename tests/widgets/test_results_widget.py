"""The Results dock on real DSB nuclei and their human labels: tables, features, CSV, layers untouched."""

import warnings

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_dsb
from tests.widgets.conftest import snapshot, unchanged


@pytest.fixture
def results(make_napari_viewer, qtbot):
    from napari_mia.widgets.results import ResultsWidget

    viewer = make_napari_viewer()
    w = ResultsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Results")
    return viewer, w


def test_dock_opens_from_the_manifest_and_measures_a_stack(nuclei_viewer, qtbot):
    viewer = nuclei_viewer
    snap = snapshot(viewer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, w = viewer.window.add_plugin_dock_widget("napari-mia", "Results")  # hands the dock a proxy viewer
        assert w.layer_combo.choices == ("nuclei labels",)
        assert w.image_combo.value == "nuclei"  # the image of the same height and width
        assert w.measure()
    assert not [c for c in caught if "Private attribute" in str(c.message)]
    labels = viewer.layers["nuclei labels"].data
    per_frame = [len(np.unique(f)) - 1 for f in labels]
    assert len(w.objects) == sum(per_frame) == w.table.rowCount()  # one row per object per frame
    assert w.counts["count"].tolist() == per_frame and w.counts["frame"].tolist() == [0, 1, 2, 3]
    # DSB frames reuse ids 1, 2, ...: hovering could not tell frames apart, so no features are set
    assert viewer.layers["nuclei labels"].features.shape[1] == 0 and "table holds" in w.summary.value
    assert unchanged(viewer, snap)


def test_measure_puts_physical_measurements_into_the_features(results, tmp_path):
    viewer, w = results
    img, lab, _ = load_dsb(1)[0]
    viewer.add_image(img, name="field", scale=(0.5, 0.5), units="um")
    layer = viewer.add_labels(lab.astype(np.uint16), name="field labels", scale=(0.5, 0.5), units="um")
    snap = snapshot(viewer)
    w.layer_combo.value = "field labels"
    assert w.pixel_size.value == 0.5 and w.unit.value == "um" and w.image_combo.value == "field"
    assert w.measure()
    features = layer.features
    ids = [k for k in np.unique(lab) if k]
    assert features["index"].tolist() == ids
    for k in ids[:5]:  # against a count of pixels and a mean by hand
        row = features[features["index"] == k].iloc[0]
        assert row["area_um2"] == pytest.approx(np.count_nonzero(lab == k) * 0.25)
        assert row["intensity_mean"] == pytest.approx(img[lab == k].mean())
    ys, xs = np.nonzero(lab == ids[0])
    status = layer.get_status((ys[0] * 0.5, xs[0] * 0.5), world=True)["coordinates"]
    assert f"area_um2: {np.count_nonzero(lab == ids[0]) * 0.25:g}"[:12] in status  # napari's hover shows it
    written = w.save(tmp_path / "field.csv")
    assert [p.name for p in written] == ["field.csv", "field_counts.csv"]
    pd.testing.assert_frame_equal(pd.read_csv(written[0]), w.objects, check_dtype=False)
    assert pd.read_csv(written[1])["count"].tolist() == [len(ids)]
    assert unchanged(viewer, snap)
    w.pixel_size.value = 2.0  # typed by the user: the layer's scale is left alone
    w.measure()
    assert layer.features["area_um2"].iloc[0] == pytest.approx(np.count_nonzero(lab == ids[0]) * 4)
    assert tuple(layer.scale) == (0.5, 0.5)


def test_points_are_counted_per_class_and_frame(results):
    viewer, w = results
    stack = np.stack([f for f, _, _ in load_dsb(3)])
    viewer.add_image(stack, name="plate")
    pts = viewer.add_points([[0, 10, 10], [0, 50, 50], [2, 30, 30]], name="plate points",
                            features={"class": [1, 2, 2]})
    snap = snapshot(viewer)
    w.layer_combo.value = "plate points"
    w.image_combo.value = "plate"
    assert w.measure()
    got = {(r.frame, r.class_name): r.count for r in w.counts.itertuples()}
    assert got == {(0, "object"): 1, (0, "class 2"): 1, (1, "object"): 0, (1, "class 2"): 0, (2, "object"): 0,
                   (2, "class 2"): 1}
    assert unchanged(viewer, snap) and pts.features["class"].tolist() == [1, 2, 2]


def test_save_all_measures_every_prediction_layer(results, tmp_path):
    viewer, w = results
    (img, lab, _), (img2, _, _) = load_dsb(2)
    viewer.add_image(img, name="a")
    viewer.add_image(img2, name="b")
    pred = viewer.add_labels(lab.astype(np.uint16), name="a prediction")  # as the Train Model dock marks them
    pred.metadata.update(napari_mia="prediction", napari_mia_image="a")
    det = viewer.add_points([[5, 5], [9, 9]], name="b detections", features={"class": [1, 1], "score": [1., .8]})
    det.metadata.update(napari_mia="prediction", napari_mia_image="b")
    viewer.add_labels(np.zeros_like(lab), name="user's labels")  # not a prediction: left out
    snap = snapshot(viewer)
    written = w.save_all(tmp_path / "out")
    assert sorted(p.name for p in written) == ["counts.csv", "objects.csv"]
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert set(objects["image"]) == {"a"} and len(objects) == len(np.unique(lab)) - 1
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert dict(zip(counts["image"], counts["count"])) == {"a": len(np.unique(lab)) - 1, "b": 2}
    assert unchanged(viewer, snap) and pred.features.shape[1] == 0  # Save all sets no features


def test_classification_table_from_the_train_model_dock(nuclei_viewer, make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtCore import Qt

    from napari_mia.widgets.results import CLASSIFICATION, ResultsWidget
    from napari_mia.widgets.training import TrainingWidget

    viewer = nuclei_viewer
    train = TrainingWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train Model")
    train.application.value = "Image classification"
    table = train.class_table
    table.set_class_names(["sparse", "dense"])
    table.add_image("nuclei", 4, True)
    table.assign(1, rows=[0])
    table.set_prediction("nuclei", [(1, np.array([0.1, 0.9])), (0, np.array([0.7, 0.3])),
                                    (0, np.array([0.6, 0.4])), (1, np.array([0.2, 0.8]))])
    w = ResultsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Results")
    assert CLASSIFICATION in w.layer_combo.choices
    late = ResultsWidget(make_napari_viewer())  # a Results dock opened before the Train Model dock
    assert CLASSIFICATION not in late.layer_combo.choices
    late_train = TrainingWidget(late.viewer)
    late.viewer.window.add_dock_widget(late_train, name="Train Model")
    late_train.class_table.add_image("plate", 2, True)
    qtbot.mouseClick(late.layer_combo.native, Qt.LeftButton)  # opening the list looks again
    assert CLASSIFICATION in late.layer_combo.choices
    w.layer_combo.value = CLASSIFICATION
    assert w.measure()
    assert w.objects["prediction"].tolist() == ["dense", "sparse", "sparse", "dense"]
    assert w.objects["probability"].tolist() == [0.9, 0.7, 0.6, 0.8]
    assert w.objects["class"].tolist() == ["dense", "", "", ""]
    written = w.save_all(tmp_path)
    assert [p.name for p in written] == ["classes.csv"]
    assert pd.read_csv(written[0])["frame"].tolist() == [0, 1, 2, 3]


def test_a_classes_prediction_uses_the_models_classes_and_the_exact_scale(results, qtbot):
    """A prediction of a classes-mode model: objects are the classes' regions, named as the model names them."""
    from types import SimpleNamespace

    from napari_mia.engine.settings import Settings
    from napari_mia.widgets._session import session_for
    from napari_mia.widgets.results import CLASSES

    viewer, w = results
    img, lab, _ = load_dsb(1)[0]
    semantic = np.where(lab > 0, 1 + lab % 2, 0).astype(np.uint8)
    settings = Settings().update(label_mode="classes", class_names=["background", "odd", "even"])
    session_for(viewer).trainer = SimpleNamespace(settings=settings)  # as after a training
    viewer.add_image(img, name="field", scale=(0.10833, 0.1625), units="um")  # rectangular pixels
    pred = viewer.add_labels(semantic, name="field prediction", scale=(0.10833, 0.1625), units="um")
    pred.metadata.update(napari_mia="prediction", napari_mia_image="field")
    w.layer_combo.value = "field prediction"
    qtbot.waitUntil(lambda: w.mode.value == CLASSES)  # marked just after it was added, as the Train Model dock does
    assert w.image_combo.value == "field"
    assert w.measure()
    from skimage.measure import label

    assert len(w.objects) == label(semantic, connectivity=1).max()
    assert set(w.objects["class_name"]) == {"odd", "even"}
    assert w.objects["area_um2"].sum() == pytest.approx(np.count_nonzero(semantic) * 0.10833 * 0.1625)
    assert w.objects["perimeter_um"].isna().all()  # not defined for rectangular pixels
    assert pred.features.shape[1] == 0 and "a number is a class" in w.summary.value
