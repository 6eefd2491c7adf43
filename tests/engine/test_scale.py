"""engine.scale: object diameters of label images and their estimate from images alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_mia.engine.scale import estimate_diameter, object_diameter, rescale_factor
from tests.conftest import load_dsb


def _discs(radius: float, shape=(200, 200), step=50) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.uint16)
    n = 0
    for cy in range(step // 2, shape[0] - step // 2 + 1, step):
        for cx in range(step // 2, shape[1] - step // 2 + 1, step):
            n += 1
            out[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = n
    return out


def test_object_diameter_of_discs():
    lab = _discs(10)
    assert abs(object_diameter(lab) - 20) < 1
    assert abs(object_diameter(lab > 0, instances=False) - 20) < 1  # components of the class
    assert abs(object_diameter([lab, _discs(5)[:100]]) - 20) < 1  # pooled: 16 discs of 20 px, 8 of 10 px
    assert abs(object_diameter(np.stack([lab, lab])) - 20) < 1
    assert object_diameter(np.zeros((50, 50), np.uint16)) is None
    assert object_diameter([]) is None


def test_object_diameter_of_a_dsb_mask():
    _, mask, _ = load_dsb(1)[0]
    areas = np.bincount(mask.ravel())[1:]
    areas = areas[areas > 0]
    expected = np.median(2 * np.sqrt(areas / np.pi))
    assert object_diameter(mask) == pytest.approx(expected)
    assert 4 < expected < 60


def test_estimate_follows_the_magnification_of_a_real_image():
    image, mask, _ = load_dsb(1)[0]
    true = object_diameter(mask)
    d1 = estimate_diameter(image)
    assert 1 / 1.5 < d1 / true < 1.5
    d3 = estimate_diameter(ndi.zoom(image.astype(np.float32), 3, order=1))
    assert 3 / 1.25 < d3 / d1 < 3 * 1.25
    assert estimate_diameter(np.dstack([image] * 3)) == pytest.approx(d1, rel=0.05)  # RGB
    assert estimate_diameter(image.max() - image) == pytest.approx(d1, rel=0.05)  # dark objects on bright


def test_estimate_never_crashes_on_flat_or_tiny_images():
    for a in (np.zeros((64, 64)), np.full((300, 400), 7, np.uint16), np.zeros((0, 0)), np.ones((3, 5)),
              np.full((64, 64), np.nan, np.float32), np.zeros((64, 64, 3), np.uint8)):
        assert estimate_diameter(a) is None
    assert estimate_diameter(np.random.default_rng(0).normal(size=(128, 128))) is not None  # noise: some size
    with pytest.raises(ValueError):
        estimate_diameter(np.zeros((4, 4, 4, 4)))


def test_rescale_factor():
    assert rescale_factor(20, 80) == 0.25
    assert rescale_factor(None, 80) == rescale_factor(20, None) == rescale_factor(20, 0) == 1.0
