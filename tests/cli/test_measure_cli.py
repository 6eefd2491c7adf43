"""`napari-mia measure` and `napari-mia predict --measure`: tables of real DSB nuclei and MBM points."""

import argparse
import csv

import numpy as np
import pytest
import tifffile

from napari_mia.cli import main
from tests.conftest import SHARED


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_measure_masks_made_elsewhere_in_micrometres(folders, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in (folders / "masks").iterdir()}
    out = tmp_path / "results"
    assert main(["measure", "--labels", str(folders / "masks"), "--images", str(folders / "images"), "--out", str(out),
                 "--pixel-size", "0.5", "--unit", "um", "--quiet"]) == 0
    assert "Measured" in capsys.readouterr().out
    objects, counts = _rows(out / "objects.csv"), _rows(out / "counts.csv")
    assert list(objects[0])[:5] == ["image", "label", "class", "class_name", "area_um2"]
    for mask in sorted((folders / "masks").iterdir()):
        lab = tifffile.imread(mask)
        img = tifffile.imread(folders / "images" / mask.name)
        mine = [r for r in objects if r["image"] == mask.name]
        assert [int(r["label"]) for r in mine] == [k for k in np.unique(lab) if k]  # one row per nucleus
        first = mine[0]
        inside = lab == int(first["label"])
        assert float(first["area_um2"]) == pytest.approx(inside.sum() * 0.25)
        assert float(first["intensity_mean"]) == pytest.approx(img[inside].mean())
        (count,) = [int(r["count"]) for r in counts if r["image"] == mask.name]
        assert count == len(mine)
    assert before == {p.name: p.read_bytes() for p in (folders / "masks").iterdir()}


def test_measure_errors_are_one_line(folders, tmp_path, capsys):
    rc = main(["measure", "--labels", str(folders / "masks"), "--pixel-size", "0.5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--unit" in err
    rc = main(["measure", "--labels", str(folders / "masks"), "--images", str(tmp_path), "--out", str(tmp_path)])
    assert rc == 2 and "No images" in capsys.readouterr().err


def test_predict_measure_writes_objects_and_counts_beside_the_predictions(trained, folders, tmp_path):
    # Any instance model will do (train itself is tested in test_cli.py): the shared one finds nuclei here.
    model = trained[0].save(tmp_path / "m.pt")
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--images", str(folders / "images"), "--out", str(out),
                 "--measure", "--quiet"]) == 0
    objects, counts = _rows(out / "objects.csv"), _rows(out / "counts.csv")
    assert sorted({r["image"] for r in counts}) == sorted(p.name for p in (folders / "images").iterdir())
    for r in counts:  # one count per image, as many as the label TIFF's objects
        lab = tifffile.imread(out / r["image"])
        assert int(r["count"]) == len(np.unique(lab[lab > 0])) == sum(o["image"] == r["image"] for o in objects) > 0
    header = next(csv.reader((out / "objects.csv").open()))
    assert {"image", "label", "area_px2", "intensity_mean", "skeleton_length_px"} <= set(header)


def test_detection_counts_from_points_csv():
    """The counts of MBM's human points per image, as `predict --measure` makes them from points.csv."""
    mbm = SHARED / "mbm_bone_marrow_dots"
    if not mbm.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from napari_mia.cli.predict import _count_detections
    from napari_mia.engine.images import list_images

    import tempfile
    from pathlib import Path

    out = Path(tempfile.mkdtemp())
    images = list_images(mbm / "images")[:4]
    with (out / "points.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "y", "x", "class", "score"])
        for r in _rows(mbm / "points.csv"):
            if r["name"] in {f.name for f in images[:3]}:  # the 4th image: no point found
                w.writerow([r["name"], r["y"], r["x"], 1, 1.0])
    a = argparse.Namespace(out=out)
    assert _count_detections(a, images, ["background", "cell"]) == 0
    got = {r["image"]: int(r["count"]) for r in _rows(out / "counts.csv")}
    truth = {r["name"]: int(r["count"]) for r in _rows(mbm / "counts.csv")}
    assert got == {f.name: truth[f.name] for f in images[:3]} | {images[3].name: 0}
    assert {r["class_name"] for r in _rows(out / "counts.csv")} == {"cell"}
