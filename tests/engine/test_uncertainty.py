"""What to label next without a model's cost: tiles cover a large image, regions box the uncertain places, and
the random order is a real alternative to the ranking (each image's tiles still most uncertain first)."""

import numpy as np
import pytest

from napari_mia.engine.errors import MiaError
from napari_mia.engine.uncertainty import Unsure, ranked, regions, tiles
from napari_mia.workflows.ranking import order_items


def test_tiles_cover_a_large_image_and_leave_a_small_one_whole():
    assert tiles((520, 696)) == []
    boxes = tiles((1100, 2100))
    covered = np.zeros((1100, 2100), int)
    for y0, x0, y1, x1 in boxes:
        covered[y0:y1, x0:x1] += 1
    assert len(boxes) == 2 * 4 and (covered == 1).all()


def test_regions_box_the_most_uncertain_places_first():
    m = np.zeros((300, 400), np.float32)
    m[40:60, 50:80] = 0.5  # the most uncertain
    m[200:230, 300:320] = 0.2
    boxes = regions(m)
    assert len(boxes) == 2
    y0, x0, y1, x1 = boxes[0]
    assert y0 <= 40 and y1 >= 60 and x0 <= 50 and x1 >= 80 and y1 - y0 < 60
    assert regions(np.full((100, 100), 0.001, np.float32)) == []  # sure everywhere: nothing to outline


def test_random_order_shuffles_images_and_keeps_their_tiles_after_them():
    items = [Unsure(f"{i}.tif", disagreement=i / 10, entropy=i / 10) for i in range(6)]
    items += [Unsure("5.tif", 0.1, 0.1, tile=(0, 0, 512, 512)), Unsure("5.tif", 0.9, 0.9, tile=(0, 512, 512, 1024))]
    assert [u.name for u in ranked(items)][:2] == ["5.tif", "5.tif"] and ranked(items)[0].tile is not None
    shuffled = order_items(items, "random", seed=3)
    assert sorted(u.name for u in shuffled) == sorted(u.name for u in items)
    wholes = [u.name for u in shuffled if u.tile is None]
    assert wholes != [u.name for u in ranked(items) if u.tile is None]  # not the ranking
    at = [u.name for u in shuffled].index("5.tif")
    assert [u.tile for u in shuffled[at:at + 3]] == [None, (0, 512, 512, 1024), (0, 0, 512, 512)]
    assert order_items(items, "random", seed=3) == shuffled  # the seed decides
    with pytest.raises(MiaError, match="uncertainty or random"):
        order_items(items, "alphabetical")
