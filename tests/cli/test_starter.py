"""The nuclei starter that ships in the package: predicts real nuclei it never saw with zero labels, fine-tunes
with --from nuclei, tells its model card, and says plainly when it is missing."""

import csv
import shutil

import pytest
import torch

from napari_mia.cli import main
from napari_mia.engine import starters
from napari_mia.engine.errors import ModelFileError
from napari_mia.engine.trained_model import TrainedModel
from tests.conftest import DSB, _dsb_names

DSB_IMAGES = 2
# Held-out kinds of benchmarks/heldout_sets.py (fields the starter was not trained on): 520x696 fields.
HELD_OUT_SIZE = (520, 696)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("held_out")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
        for name in _dsb_names(3, HELD_OUT_SIZE):
            shutil.copy(DSB / sub / f"{name}.tif", root / sub)
    return root


def test_the_starter_finds_nuclei_it_never_saw_with_zero_labels(held_out, tmp_path, capsys):
    path = starters.starter_path("nuclei")
    assert path.parent.name == "starters" and path.parent.parent.name == "napari_mia"
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--model", "nuclei", "--images", str(held_out / "images"), "--masks",
                 str(held_out / "masks"), "--out", str(out), "--quiet"]) == 0
    printed = "".join(capsys.readouterr())
    mean = list(csv.DictReader(out.open()))[-1]
    assert mean["name"] == "mean"
    # Each field is rescaled to the nuclei size it learned (diameter auto, the default), and it is said.
    assert printed.count("scaled by") == 3
    assert float(mean["object_f1"]) > 0.7 and float(mean["fg_iou"]) > 0.7


def test_from_nuclei_fine_tunes_and_keeps_the_starters_round(folders, tmp_path, capsys):
    out = tmp_path / "mine.pt"
    assert main(["train", "--from", "nuclei", "--images", str(folders / "images"), "--masks",
                 str(folders / "masks"), "--epochs", "1", "--patch", "128", "--out", str(out), "--quiet"]) == 0
    printed = "".join(capsys.readouterr())
    assert "kept as nuclei learned them" in printed
    mine, starter = TrainedModel.load(out), TrainedModel.load("nuclei")
    assert mine.settings.model.encoder == starter.settings.model.encoder
    changed = [k for k, v in mine.network.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, starter.network.state_dict()[k])]
    assert changed, "fine-tuning changed no weight"
    assert len(mine.rounds) == len(starter.rounds) + 1
    assert mine.rounds.rounds[-1].started_from == "nuclei" and 1 <= mine.rounds.rounds[-1].images <= DSB_IMAGES


def test_info_tells_the_starters_model_card(capsys):
    assert main(["info", "--model", "nuclei"]) == 0
    out = capsys.readouterr().out
    for words in ("Nuclei (fluorescence) starter", "Meant for: 2D fluorescence", "Not meant for: H&E",
                  "CC0 1.0", "Caicedo et al.", "Held out (never trained on)", "kind: 103 images"):
        assert words in out, words
    assert "float16" not in out  # how it is stored is not the user's concern


def test_a_missing_starter_is_said_plainly(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(starters.STARTERS, "nuclei", starters.Starter("nuclei", "Nuclei (fluorescence) starter",
                                                                       "gone.pt"))
    with pytest.raises(ModelFileError, match="not in this installation of napari-mia"):
        TrainedModel.load("nuclei")
    assert main(["predict", "--model", "nuclei", "--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "Reinstall napari-mia" in capsys.readouterr().err
    # A file of the user's called nuclei is theirs, not the starter.
    (tmp_path / "nuclei").write_text("not a model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError, match="not a napari-mia model file"):
        TrainedModel.load("nuclei")
