"""What a round counts of the user's work: active annotation minutes and the hash of every image used."""

import numpy as np
import pytest

from napari_mia.workflows.rounds import active_minutes, data_hashes, item_hash


def test_active_minutes_count_only_edits_at_most_a_minute_apart():
    assert active_minutes([]) == 0 and active_minutes([5.0]) == 0
    # 0-30-50 s: 50 s of editing; a 10-minute pause; 650-700 s: 50 s more; order does not matter.
    assert active_minutes([700, 0, 30, 50, 650]) == pytest.approx(100 / 60)
    assert active_minutes([0, 61]) == 0 and active_minutes([0, 60]) == pytest.approx(1.0)
    assert active_minutes([0, 90], gap=120) == pytest.approx(1.5)


def test_hashes_follow_the_data_not_where_it_came_from(tmp_path):
    image, labels = np.arange(16, dtype=np.uint16).reshape(4, 4), np.eye(4, dtype=np.uint16)
    a = item_hash(image, labels)
    assert a == item_hash(image.copy(), labels.copy()) and a.startswith("sha256:")
    changed = labels.copy()
    changed[0, 1] = 2
    assert item_hash(image, changed) != a  # one pixel of the labels
    assert item_hash(image.astype(np.float32), labels) != a  # same values, another type
    (tmp_path / "x.tif").write_bytes(b"image bytes")
    (tmp_path / "m.tif").write_bytes(b"mask bytes")
    by_file = data_hashes([(tmp_path / "x.tif", tmp_path / "m.tif")])
    assert list(by_file) == ["x.tif"]
    (tmp_path / "m.tif").write_bytes(b"mask bytes, edited")
    assert data_hashes([(tmp_path / "x.tif", tmp_path / "m.tif")]) != by_file
    assert list(data_hashes([(image, labels, "frame a")])) == ["frame a"]
