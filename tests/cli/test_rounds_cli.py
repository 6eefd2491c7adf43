"""train --test-*: every run is a round, scored on test images it never trains on; napari-mia info tells it."""

import csv
import json
import shutil

import pytest

from napari_mia.cli import main
from napari_mia.engine.trained_model import TrainedModel
from tests.conftest import DSB, _dsb_names

DSB_IMAGES = 3


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory):
    """2 real DSB images and masks that no training folder of this module holds."""
    root = tmp_path_factory.mktemp("test_set")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
    for name in _dsb_names(6)[4:]:
        for sub in ("images", "masks"):
            shutil.copy(DSB / sub / f"{name}.tif", root / sub)
    return root


def _train(folders, test_folder, out, *extra):
    return main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
                 "--label-mode", "instances", "--epochs", "2", "--patch", "96", "--quiet",
                 "--test-images", str(test_folder / "images"), "--test-masks", str(test_folder / "masks"),
                 "--out", str(out), *extra])


def test_rounds_are_scored_on_the_test_images_recorded_and_told(folders, test_folder, tmp_path, capsys):
    first = tmp_path / "nuclei.pt"
    assert _train(folders, test_folder, first) == 0
    printed = capsys.readouterr().out
    assert "Test, 2 images: fg IoU " in printed and "object F1 " in printed
    rows = list(csv.DictReader((tmp_path / "nuclei_rounds.csv").open()))
    assert [r["round"] for r in rows] == ["1"] and rows[0]["test_images"] == "2"
    assert 0 <= float(rows[0]["test_object_f1"]) <= 1 and int(rows[0]["objects"]) > 20
    assert rows[0]["images"] == "2" and rows[0]["validation_images"] == "1"

    # --from: the next round of the same model, its record carried on.
    second = tmp_path / "nuclei2.pt"
    assert _train(folders, test_folder, second, "--from", str(first)) == 0
    capsys.readouterr()
    rows = list(csv.DictReader((tmp_path / "nuclei2_rounds.csv").open()))
    assert [r["round"] for r in rows] == ["1", "2"] and rows[1]["started_from"] == "nuclei.pt"
    model = TrainedModel.load(second)
    assert len(model.rounds) == 2 and model.rounds.has_weights(0)
    hashes = set(model.rounds.rounds[1].data.values())
    assert len(hashes) == 3 and not hashes & set(model.rounds.rounds[1].test_data)

    # info: a few lines, the rounds, a methods paragraph and the reproducibility record.
    rec = tmp_path / "repro.json"
    assert main(["info", "--model", str(second), "--reproducibility", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "a napari-mia model file" in out and "Network: Unet with a resnet18 encoder" in out
    assert "Rounds: 2 (earlier rounds' weights add" in out and "test_object_f1" in out
    assert "Methods:" in out and "over 2 rounds of annotation and training" in out and "2 test images" in out
    record = json.loads(rec.read_text())
    assert [r["round"] for r in record["rounds"]] == [1, 2] and record["rounds"][1]["versions"]["torch"]


def test_a_test_image_that_is_also_trained_on_is_refused(folders, tmp_path, capsys):
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--epochs", "1",
                 "--test-images", str(folders / "images"), "--test-masks", str(folders / "masks"),
                 "--out", str(tmp_path / "m.pt")]) != 0
    err = capsys.readouterr().err
    assert "both a training image and a test image" in err and not (tmp_path / "m.pt").exists()
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
                 "--test-masks", str(folders / "masks"), "--out", str(tmp_path / "m.pt")]) != 0
    assert "--test-masks needs --test-images DIR" in capsys.readouterr().err


def test_info_on_a_damaged_file_and_a_file_from_before_rounds(trained, tmp_path, capsys):
    bad = tmp_path / "half.pt"
    trained[0].save(tmp_path / "whole.pt")
    bad.write_bytes((tmp_path / "whole.pt").read_bytes()[:5000])
    assert main(["info", "--model", str(bad)]) != 0
    assert "half.pt is not a napari-mia model file, or it is damaged" in capsys.readouterr().err
    assert main(["info", "--model", str(tmp_path / "whole.pt")]) == 0
    out = capsys.readouterr().out
    assert "Rounds: none recorded" in out and "Application: segmentation (instances)" in out
