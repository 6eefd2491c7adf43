"""Detection from points (MIA's object detection) on the real bone-marrow H&E dots."""

import numpy as np
import pytest

from napari_mia.engine.applications.heatmaps import (
    find_points, points_to_dots, read_points_csv, rescale_dots, sigma_of, target_heatmap,
)
from napari_mia.engine.errors import DataError, SettingsError
from napari_mia.engine.evaluate import match_points
from napari_mia.engine.settings import Settings
from napari_mia.engine.trainer import Trainer
from tests.conftest import SHARED

MBM = SHARED / "mbm_bone_marrow_dots"


@pytest.fixture(scope="module")
def mbm():
    if not MBM.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from napari_mia.engine.images import read_image

    return [(read_image(f)[..., :3], pts, f.name) for f, pts in read_points_csv(MBM / "points.csv", MBM / "images")]


def _crop(pair, size=320):
    """The top-left corner of an image with its points: quicker to train and predict in tests."""
    image, points = pair[0], pair[1]
    keep = (points[:, 0] < size) & (points[:, 1] < size)
    return image[:size, :size], points[keep]


def test_points_survive_dots_heatmap_and_peaks(mbm):
    import torch

    image, points, _ = mbm[0]
    dots = points_to_dots(points, image.shape[:2])
    assert (dots > 0).sum() == len(points)  # no two cells on one pixel here
    heat, valid = target_heatmap(torch.from_numpy(dots[None].astype(np.int64)), 1, sigma_of(10), 100.0)
    assert valid.all() and float(heat.max()) == pytest.approx(100.0, rel=0.05)
    found = find_points(heat[0].numpy(), 10, 100.0)
    assert match_points(found, points, 1.0) == (len(points), 0, 0)
    half = rescale_dots(dots, (300, 300))
    assert (half > 0).sum() >= len(points) - 5  # a few neighbours may meet on one pixel at half size


def test_bad_points_are_refused_in_plain_words(tmp_path, mbm):
    with pytest.raises(DataError, match="lies outside the image"):
        points_to_dots(np.array([[700.0, 10.0]]), (600, 600), "cells")
    bad = tmp_path / "p.csv"
    bad.write_text("file,row,col\na.png,1,2\n")
    with pytest.raises(DataError, match="needs the columns name, y, x"):
        read_points_csv(bad, MBM / "images")
    with pytest.raises(SettingsError, match="choose the loss mse"):
        Settings().update(task="detection")  # dice is for segmentation
    assert Settings().update(task="detection", loss="mse").model.num_classes == 1


def test_detection_training_learns_the_cells(mbm):
    s = Settings().update(task="detection", loss="mse", channels=3, epochs=1, steps_per_epoch=1, patch_width=128,
                          patch_height=128, batch_size=4, val_split=0, seed=0)
    t = Trainer(s)
    train, held_out = [_crop(p) for p in mbm[:6]], [_crop(p) for p in mbm[20:22]]
    list(t.train(train, val=[]))  # one step: the starting point
    before = t.evaluate(held_out)["loss"]
    t.settings.train.steps_per_epoch = 45
    list(t.train(train, val=[]))
    after = t.evaluate(held_out)["loss"]
    assert after < 0.8 * before, (before, after)
    thr = t.calibrate_detection()  # from the 6 training images, never the held-out ones
    assert 0.2 <= thr <= 0.7 and t.settings.data.detection_threshold == thr
    found = t.predictor().detect(held_out[0][0])
    assert found.ndim == 2 and found.shape[1] == 4  # y, x, class, score (30 steps find few or none yet)
