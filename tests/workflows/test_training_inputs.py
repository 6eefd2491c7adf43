"""The workflows take plain values and say what they did in what they return, never by printing."""

import numpy as np
import pytest
import tifffile

from napari_mia.engine import applications
from napari_mia.engine.errors import DataError, MiaError
from napari_mia.workflows import formats
from napari_mia.workflows.measurement import label_pairs
from napari_mia.workflows.training_inputs import guess_channels, training_pairs, validation_pairs, with_regions


@pytest.fixture
def folder(tmp_path):
    for sub in ("images", "masks", "regions"):
        (tmp_path / sub).mkdir()
    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", np.zeros((32, 32), np.uint8))
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", np.ones((32, 32), np.uint8))
    tifffile.imwrite(tmp_path / "regions" / "a.tif", np.ones((32, 32), np.uint8))
    return tmp_path


def test_pairs_regions_and_validation_are_returned_with_what_to_say(folder, capsys):
    seg = formats.get("segmentation")
    with pytest.raises(MiaError, match="Segmentation needs --masks"):
        training_pairs(seg, folder / "images", None)
    pairs = training_pairs(seg, folder / "images", folder / "masks")
    assert [p[0].name for p in pairs] == ["a.tif", "b.tif"]
    regions, note = with_regions(pairs, folder / "regions", seg)
    assert [r[2] is not None for r in regions] == [True, False]
    assert note.startswith("1 image(s) have no region file")
    assert with_regions(pairs, None, seg) == (pairs, None)
    none = {"masks": None, "points": None, "classes": None}
    assert validation_pairs(seg, None, none) == (None, None)
    val, note = validation_pairs(seg, folder / "images", none | {"masks": folder / "masks"}, val_split_given=True)
    assert len(val) == 2 and note == "--val-split is not used: the --val-images are the validation set."
    with pytest.raises(MiaError, match="--val-points does not fit segmentation"):
        validation_pairs(seg, folder / "images", none | {"points": folder / "p.csv"})
    assert guess_channels(pairs[0][0]) == 1 and guess_channels(pairs[0][0], channels=2) == 2
    assert capsys.readouterr() == ("", "")


def test_label_pairs_need_every_image(folder):
    assert [(lab.name, img.name) for lab, img in label_pairs(folder / "masks", folder / "images")] == \
        [("a.tif", "a.tif"), ("b.tif", "b.tif")]
    with pytest.raises(DataError, match="1 label image"):
        label_pairs(folder / "masks", folder / "regions")


def test_every_application_has_its_files():
    assert [formats.get(name).name for name in applications.names()] == list(applications.names())
