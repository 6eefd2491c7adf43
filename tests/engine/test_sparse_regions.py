"""Sparse labels and reviewed regions (issue #16): only what was labelled is learned."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_mia.engine.samples import check_known_background, labelled_counts, supervision
from napari_mia.engine.task_data import sources_from_arrays, sources_from_files
from napari_mia.engine.errors import DataError
from napari_mia.engine.targets import BACKGROUND, BOUNDARY, IGNORE, INTERIOR
from tests.conftest import load_dsb, small_settings


@pytest.fixture(scope="module")
def dsb_one():
    image, mask, name = load_dsb(1)[0]
    return image, mask, name


def _three_nuclei(mask):
    """Sparse labels from a full mask: 3 whole nuclei (2, 3, 4), background (1) painted around them."""
    from scipy.ndimage import binary_dilation

    ids = np.unique(mask[mask > 0])[:3]
    sparse = np.zeros(mask.shape, np.uint16)
    for k, v in enumerate(ids, start=2):
        sparse[mask == v] = k
    ring = binary_dilation(np.isin(mask, ids), iterations=4) & (mask == 0)
    sparse[ring] = 1
    return sparse, ids


def test_supervision_maps_the_sparse_values_and_never_modifies_the_input():
    lab = np.array([[0, 1, 2], [3, 0, 1]], np.uint16)
    before = lab.copy()
    mapped, known = supervision(lab, sparse=True)
    assert mapped.tolist() == [[0, 0, 1], [2, 0, 0]]
    assert known.tolist() == [[False, True, True], [True, False, True]]
    assert np.array_equal(lab, before)
    # Not sparse: everything is known, 0 is background.
    mapped, known = supervision(lab, sparse=False)
    assert known is None and np.array_equal(mapped, lab)


def test_regions_teach_background_inside_and_nothing_outside():
    lab = np.zeros((4, 4), np.uint16)
    lab[0, 0], lab[3, 3] = 5, 7
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True
    mapped, known = supervision(lab, sparse=False, region=region)
    assert np.array_equal(known, region)
    assert mapped[0, 0] == 5 and mapped[3, 3] == 0  # outside the region: not learned, even if painted
    # Sparse: painted pixels count everywhere, the region's unpainted pixels are background.
    mapped, known = supervision(np.where(lab > 0, lab + 1, 0), sparse=True, region=region)
    assert known[3, 3] and known[1, 1] and not known[2, 2]
    assert mapped[3, 3] == 7 and mapped[1, 1] == 0


def test_a_region_of_another_shape_is_refused_plainly():
    with pytest.raises(DataError, match="reviewed regions of 'cells' are 4x5 but the labels are 4x4"):
        supervision(np.zeros((4, 4), np.uint16), False, np.ones((4, 5), np.uint8), name="cells")


def test_sparse_target_ignores_unlabelled_pixels_and_unknown_boundaries(dsb_one):
    image, mask, name = dsb_one
    sparse, ids = _three_nuclei(mask)
    s = small_settings(sparse=True)
    (src,) = sources_from_arrays([(image, sparse, name)], s)
    t = src.get().target
    # The other nuclei (0 = not labelled) teach nothing: neither background nor object.
    others = (mask > 0) & ~np.isin(mask, ids)
    assert (t[others] == IGNORE).all()
    assert (t[np.isin(mask, ids)] != BACKGROUND).all()
    assert (t[sparse == 1] == BACKGROUND).all()
    assert (t == INTERIOR).any()
    # Boundary only where background is painted beside the nucleus: every boundary pixel taught has
    # only known neighbours.
    from scipy.ndimage import binary_dilation

    assert not (binary_dilation(t == IGNORE) & (t == BOUNDARY)).any()
    assert src.max_label == 3 and src.background is True
    # The diameters are the 3 nuclei's, not the painted background's.
    assert len(src.diameters) == 3


def test_regions_with_full_labels_keep_only_the_reviewed_box(dsb_one):
    image, mask, name = dsb_one
    region = np.zeros(mask.shape, np.uint8)
    region[:100, :120] = 1
    (src,) = sources_from_arrays([(image, mask, name)], small_settings(), regions=[region])
    t = src.get().target
    assert (t[100:, :] == IGNORE).all() and (t[:, 120:] == IGNORE).all()
    inside = t[:100, :120]
    assert (inside == BACKGROUND).any() and (inside == INTERIOR).any()


def test_label_one_as_background_without_sparse_is_refused_plainly(dsb_one):
    image, mask, name = dsb_one
    sparse, _ = _three_nuclei(mask)
    sparse[:8, :8] = 1
    sparse[-8:, -8:] = 1
    with pytest.raises(DataError, match="label 1 is painted as .* separate patches.*Sparse labels"):
        sources_from_arrays([(image, sparse, name)], small_settings())


def test_sparse_labels_without_any_background_are_refused(dsb_one):
    image, mask, name = dsb_one
    sparse, _ = _three_nuclei(mask)
    sparse[sparse == 1] = 0
    sources = sources_from_arrays([(image, sparse, name)], small_settings(sparse=True))
    with pytest.raises(DataError, match="Nothing is labelled as background"):
        check_known_background(sources)


def test_labelled_counts():
    lab = np.array([[0, 1, 2, 2]], np.uint16)
    assert labelled_counts(lab, sparse=True) == {"background": 1, "objects": 2, "not labelled": 1}
    assert labelled_counts(lab, sparse=False) == {"background": 1, "objects": 3, "not labelled": 0}


def test_detection_regions_ignore_points_outside(dsb_one):
    from napari_mia.engine.task_data import sources_for_task

    image = dsb_one[0]
    s = small_settings(task="detection", label_mode="classes", loss="mse")
    points = np.array([[20, 20], [200, 200]], float)
    region = np.zeros(image.shape[:2], np.uint8)
    region[:128, :128] = 1
    (src,) = sources_for_task([(image, points, "dots")], s, regions=[region])
    t = src.get().target
    assert t[20, 20] == 1 and t[200, 200] == IGNORE
    assert (t[128:, :] == IGNORE).all() and (t[:128, :128] != IGNORE).all()


def test_files_with_region_masks(tmp_path, dsb_one):
    image, mask, name = dsb_one
    tifffile.imwrite(tmp_path / "a.tif", image)
    tifffile.imwrite(tmp_path / "m.tif", mask)
    tifffile.imwrite(tmp_path / "r.tif", np.pad(np.ones((64, 64), np.uint8), ((0, 192), (0, 192))))
    s = small_settings()
    s.data.load_full = False  # the loader reads the region again
    (src,) = sources_from_files([(tmp_path / "a.tif", tmp_path / "m.tif", tmp_path / "r.tif")], s)
    t = src.get().target
    assert (t[64:, :] == IGNORE).all() and (t[:64, :64] != IGNORE).all()
    tifffile.imwrite(tmp_path / "r.tif", np.ones((10, 10), np.uint8))
    with pytest.raises(DataError, match="reviewed regions of 'm.tif' are 10x10"):
        sources_from_files([(tmp_path / "a.tif", tmp_path / "m.tif", tmp_path / "r.tif")], s)
