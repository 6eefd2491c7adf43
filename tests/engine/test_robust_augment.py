"""Zoom and intensity augmentations: what each one changes, and what it must leave alone."""

import numpy as np
import pytest

from napari_mia.engine.augment import build_augment
from napari_mia.engine.settings import Settings, SettingsError
from napari_mia.engine.targets import IGNORE


def _patch():
    img = np.full((96, 96, 1), 0.1, np.float32)
    tgt = np.zeros((96, 96), np.uint8)
    img[32:64, 32:64], tgt[32:64, 32:64] = 0.8, 1  # a 32 px square object
    return img, tgt, np.ones((96, 96), np.float32)


def test_zoom_changes_object_size_both_ways():
    s = Settings()
    s.update(hflip=0.0, vflip=0.0, brightness_contrast=0.0, gamma=0.0, noise=0.0, zoom=1.0, zoom_range=(0.5, 2.0))
    aug = build_augment(s.augment)
    img, tgt, wgt = _patch()
    areas = [int((aug(img, tgt, wgt, np.random.default_rng(i))[1] == 1).sum()) for i in range(30)]
    assert min(areas) < 0.6 * 32 * 32 and max(areas) > 1.6 * 32 * 32  # as often smaller as bigger
    shrunk = next(out for i in range(30) if ((out := aug(img, tgt, wgt, np.random.default_rng(i)))[1] == 1).sum()
                  < 0.6 * 32 * 32)
    assert (shrunk[1] == IGNORE).any()  # what came from outside the patch is not taught as background


def test_intensity_changes_image_only_and_stays_finite():
    s = Settings()
    s.update(hflip=0.0, vflip=0.0, zoom=0.0, brightness_contrast=1.0, gamma=1.0, noise=1.0)
    aug = build_augment(s.augment)
    img, tgt, wgt = _patch()
    img[0, 0] = -0.05  # percentile normalisation puts a few values below 0
    for i in range(10):
        out_img, out_tgt, out_wgt = aug(img, tgt, wgt, np.random.default_rng(i))
        assert np.isfinite(out_img).all()
        np.testing.assert_array_equal(out_tgt, tgt)
        np.testing.assert_array_equal(out_wgt, wgt)
    assert not np.allclose(out_img, img)


@pytest.mark.parametrize("changes", [dict(zoom=1.5), dict(zoom_range=(1.2, 2.0)), dict(gamma_range=(0.0, 1.0)),
                                     dict(noise_range=(-0.1, 0.1))])
def test_bad_ranges_are_refused_plainly(changes):
    with pytest.raises(SettingsError):
        Settings().update(**changes)
