"""Measurements (MIA's Results) against values computed by hand on real DSB nuclei and their human masks."""

import numpy as np
import pytest

from napari_mia.engine.measure import count_objects, count_points, measure_objects, read_table, write_table
from tests.conftest import SHARED, load_dsb


@pytest.fixture(scope="module")
def crops():
    """Two 64x64 crops of real fluorescence nuclei with their human instance masks."""
    (img0, lab0, _), (img1, lab1, _) = load_dsb(2)
    return [(img0[:64, :64].copy(), lab0[:64, :64].copy()), (img1[:64, :64].copy(), lab1[:64, :64].copy())]


def test_areas_intensities_and_centroids_by_hand(crops, frozen):
    img, lab = frozen(*crops[0])
    table = measure_objects(lab, img, name="crop")
    ids = [k for k in np.unique(lab) if k]
    assert list(table["label"]) == ids and set(table["image"]) == {"crop"}
    assert set(table["class"]) == {1} and set(table["class_name"]) == {"object"}
    for k, row in zip(ids, table.itertuples()):
        inside = lab == k
        ys, xs = np.nonzero(inside)
        assert row.area_px2 == inside.sum()
        assert row.intensity_min == img[inside].min() and row.intensity_max == img[inside].max()
        assert row.intensity_mean == pytest.approx(img[inside].mean())
        assert (row.centroid_y_px, row.centroid_x_px) == pytest.approx((ys.mean(), xs.mean()))
        assert row.equivalent_diameter_px == pytest.approx(2 * np.sqrt(inside.sum() / np.pi))
        assert row.major_axis_px >= row.minor_axis_px > 0
        assert 0 < row.perimeter_px < inside.sum() * 4


def test_physical_units_follow_the_pixel_size(crops):
    img, lab = crops[0]
    px = measure_objects(lab, img)
    um = measure_objects(lab, img, spacing=(0.5, 0.5), unit="micrometer")  # napari's layer.units name
    assert "area_um2" in um and "area_px2" not in um
    assert np.allclose(um["area_um2"], px["area_px2"] * 0.25)
    for col in ("perimeter", "equivalent_diameter", "major_axis", "minor_axis", "skeleton_length", "centroid_y",
                "centroid_x"):
        assert np.allclose(um[f"{col}_um"], px[f"{col}_px"] * 0.5), col
    assert np.array_equal(um["intensity_mean"], px["intensity_mean"])  # intensities have no unit
    # Pixels twice as tall as wide: areas and y scale, perimeter is not defined (NaN), lengths are not 1:1.
    aniso = measure_objects(lab, spacing=(0.5, 0.25), unit="um")
    assert np.allclose(aniso["area_um2"], px["area_px2"] * 0.125)
    assert np.allclose(aniso["centroid_y_um"], px["centroid_y_px"] * 0.5)
    assert np.allclose(aniso["centroid_x_um"], px["centroid_x_px"] * 0.25)
    assert aniso["perimeter_um"].isna().all()


def test_skeleton_length_of_a_line_is_its_length():
    line = np.zeros((9, 30), np.uint8)
    line[4, 5:25] = 1  # 20 pixels: 19 steps between their centres
    t = measure_objects(line, spacing=(2.0, 2.0), unit="um")
    assert t["skeleton_length_um"][0] == pytest.approx(19 * 2.0)
    diagonal = np.eye(12, dtype=np.uint8)  # 11 diagonal steps
    assert measure_objects(diagonal)["skeleton_length_px"][0] == pytest.approx(11 * np.sqrt(2))


def test_a_stack_gives_one_row_per_object_per_frame(crops, frozen):
    labels = np.stack([lab for _, lab in crops])
    images = np.stack([img for img, _ in crops])
    frozen(labels, images)
    table = measure_objects(labels, images)
    for f, (img, lab) in enumerate(crops):
        rows = table[table["frame"] == f]
        assert list(rows["label"]) == [k for k in np.unique(lab) if k]
        assert list(rows["area_px2"]) == [np.count_nonzero(lab == k) for k in rows["label"]]
    counts = count_objects(table)
    assert list(counts.columns) == ["image", "frame", "class", "class_name", "count"]
    assert list(counts["count"]) == [len(np.unique(lab)) - 1 for _, lab in crops]


def test_classes_mode_measures_each_connected_region_of_a_class(crops):
    img, lab = crops[0]
    semantic = np.where(lab > 0, np.where(lab % 2 == 0, 2, 1), 0).astype(np.uint8)  # two classes of nuclei
    table = measure_objects(semantic, img, mode="classes", class_names=["background", "odd", "even"])
    from skimage.measure import label

    assert len(table) == label(semantic, connectivity=1).max()
    assert set(table["class_name"]) <= {"odd", "even"}
    for c in (1, 2):
        assert table.loc[table["class"] == c, "area_px2"].sum() == np.count_nonzero(semantic == c)
    counts = count_objects(table)
    assert dict(zip(counts["class_name"], counts["count"])) == dict(table["class_name"].value_counts())


def test_instances_take_their_class_from_a_class_layer(crops):
    _, lab = crops[0]
    classes = np.where(lab > 0, 1 + (lab > np.median(lab[lab > 0])), 0)
    table = measure_objects(lab, classes=classes, class_names=["background", "small id", "large id"])
    for row in table.itertuples():
        assert row.class_name == ("large id" if row.label > np.median(lab[lab > 0]) else "small id")


def test_colour_image_gives_one_intensity_per_channel():
    mbm = SHARED / "mbm_bone_marrow_dots" / "images"
    if not mbm.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from skimage.io import imread

    rgb = imread(sorted(mbm.iterdir())[0])[:40, :40, :3]
    lab = np.zeros((40, 40), np.uint16)
    lab[5:15, 10:30] = 3
    t = measure_objects(lab, rgb)
    for c, name in enumerate(["red", "green", "blue"]):
        assert t[f"intensity_mean_{name}"][0] == pytest.approx(rgb[5:15, 10:30, c].mean())
        assert t[f"intensity_max_{name}"][0] == rgb[5:15, 10:30, c].max()


def test_counts_of_points_per_class_and_frame():
    pts = np.array([[0, 10, 10], [0, 20, 20], [1, 5, 5], [2, 7, 7], [2, 8, 8], [2, 9, 9]], float)
    cls = np.array([1, 2, 0, 1, 1, 2])  # 0: a point without a class counts as class 1
    t = count_points(pts, cls, name="plate", frames=4, class_names=["background", "cell", "debris"])
    got = {(r.frame, r.class_name): r.count for r in t.itertuples()}
    assert got == {(0, "cell"): 1, (0, "debris"): 1, (1, "cell"): 1, (1, "debris"): 0, (2, "cell"): 2,
                   (2, "debris"): 1, (3, "cell"): 0, (3, "debris"): 0}
    single = count_points(pts[:, 1:], name="a")
    assert list(single.columns) == ["image", "class", "class_name", "count"] and single["count"].tolist() == [6]


def test_an_image_without_objects_is_counted_as_zero(crops):
    _, lab = crops[0]
    table = measure_objects(lab, name="a")
    counts = count_objects(table, images={"a": None, "empty": None})
    assert dict(zip(counts["image"], counts["count"])) == {"a": len(np.unique(lab)) - 1, "empty": 0}
    assert len(measure_objects(np.zeros((8, 8), int), name="empty")) == 0


def test_csv_round_trip(crops, tmp_path):
    labels = np.stack([lab for _, lab in crops])
    table = measure_objects(labels, np.stack([img for img, _ in crops]), spacing=(0.3, 0.3), unit="um",
                            name="plate")
    back = read_table(write_table(table, tmp_path / "objects.csv"))
    assert list(back.columns) == list(table.columns)
    import pandas as pd

    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_mismatched_image_is_one_plain_error(crops):
    from napari_mia.engine.errors import DataError

    img, lab = crops[0]
    with pytest.raises(DataError, match="same pixels"):
        measure_objects(lab, img[:32])


def test_no_object_still_gives_the_columns():
    t = measure_objects(np.zeros((8, 8), int), np.zeros((8, 8, 3), np.uint8), name="empty", spacing=(2, 2), unit="um")
    assert len(t) == 0 and {"area_um2", "intensity_mean_red", "intensity_max_blue"} <= set(t.columns)
