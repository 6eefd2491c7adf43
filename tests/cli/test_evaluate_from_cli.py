"""napari-mia evaluate, predict --diameter/--tta/--keep and train --from: the command-line contract of issue #15."""

import csv
import shutil

import numpy as np
import pytest
import tifffile
import torch

from napari_mia.cli import main
from napari_mia.engine.evaluate import mean_scores, segmentation_scores
from napari_mia.engine.trainer import Trainer
from tests.conftest import DSB, _dsb_names


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory):
    """The shared trained model as a file, 3 images it was not trained on, and the same 2x larger."""
    root = tmp_path_factory.mktemp("evaluate")
    model = trained[0].save(root / "nuclei.pt")
    for sub in ("images", "masks", "big_images", "big_masks"):
        (root / sub).mkdir()
    for name in _dsb_names(15)[12:]:  # dsb_pairs (the fixture's data) are the first 12
        shutil.copy(DSB / "images" / f"{name}.tif", root / "images")
        shutil.copy(DSB / "masks" / f"{name}.tif", root / "masks")
        for sub in ("images", "masks"):
            a = tifffile.imread(DSB / sub / f"{name}.tif")
            tifffile.imwrite(root / f"big_{sub}" / f"{name}.tif", np.kron(a, np.ones((2, 2), a.dtype)))
    return root, model


def test_evaluate_prints_and_writes_the_scores_of_each_image(setup, tmp_path, capsys):
    root, model = setup
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--model", str(model), "--images", str(root / "images"), "--masks",
                 str(root / "masks"), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Mean over 3 image(s): fg_iou" in printed and f"to {out}" in printed
    rows = list(csv.DictReader(out.open()))
    assert [r["name"] for r in rows][-1] == "mean" and len(rows) == 4
    # The same numbers as scoring the model's predictions directly.
    t = Trainer.load(model)
    predictor = t.predictor(diameter=t.app.default_diameter(t.settings))  # evaluate's default: 'auto' here
    direct = [segmentation_scores(predictor.predict(tifffile.imread(f)), tifffile.imread(root / "masks" / f.name))
              for f in sorted((root / "images").iterdir())]
    for row, d in zip(rows, direct):
        assert float(row["object_f1"]) == pytest.approx(d["object_f1"], abs=1e-4)
        assert float(row["ap"]) == pytest.approx(d["ap"], abs=1e-4)
    assert float(rows[-1]["fg_iou"]) == pytest.approx(mean_scores(direct)["fg_iou"], abs=1e-4)


def test_evaluate_with_auto_diameter_on_magnified_images(setup, tmp_path, capsys):
    root, model = setup
    native, big = tmp_path / "native.csv", tmp_path / "big.csv"
    assert main(["evaluate", "--model", str(model), "--images", str(root / "images"), "--masks",
                 str(root / "masks"), "--out", str(native), "--quiet", "--diameter", "auto"]) == 0
    assert main(["evaluate", "--model", str(model), "--images", str(root / "big_images"), "--masks",
                 str(root / "big_masks"), "--out", str(big), "--quiet", "--diameter", "auto"]) == 0
    n, b = (list(csv.DictReader(p.open())) for p in (native, big))
    for rn, rb in zip(n[:-1], b[:-1]):  # the diameter found follows the magnification
        assert float(rb["diameter_px"]) == pytest.approx(2 * float(rn["diameter_px"]), rel=0.25)
    assert float(b[-1]["object_f1"]) > float(n[-1]["object_f1"]) - 0.15


def test_evaluate_needs_the_models_targets(setup, capsys):
    root, model = setup
    assert main(["evaluate", "--model", str(model), "--images", str(root / "images"), "--quiet"]) == 2
    assert "--masks" in capsys.readouterr().err


def test_predict_takes_diameter_tta_and_keep(setup, tmp_path, capsys):
    root, model = setup
    out = tmp_path / "pred"
    # One of the 512x512 images: TTA predicts each image 8 times, and the contract is the same for one as for 3.
    name = sorted((root / "big_images").iterdir())[0].name
    (tmp_path / "one").mkdir()
    shutil.copy(root / "big_images" / name, tmp_path / "one")
    assert main(["predict", "--model", str(model), "--images", str(tmp_path / "one"), "--out", str(out),
                 "--diameter", "auto", "--tta", "--keep", "last", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "px across (estimated)" in err
    assert sorted(p.name for p in out.iterdir()) == [name]
    assert tifffile.imread(out / name).shape == tifffile.imread(root / "big_images" / name).shape


def test_bad_diameter_is_refused_by_the_parser(setup, capsys):
    root, model = setup
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(model), "--images", str(root / "images"), "--out", "x", "--diameter",
              "big"])
    assert "number of pixels or 'auto'" in capsys.readouterr().err


def test_train_from_starts_at_the_models_weights_and_scales_the_images(setup, tmp_path, capsys):
    root, model = setup
    tuned = tmp_path / "tuned.pt"
    # A learning rate of ~0 keeps the weights where they start: where --from put them.
    assert main(["train", "--from", str(model), "--images", str(root / "big_images"), "--masks",
                 str(root / "big_masks"), "--out", str(tuned), "--epochs", "1", "--lr", "1e-12", "--quiet",
                 # small and unvalidated: the weights and the scaling are checked, not what the epoch learns
                 "--patch", "64", "--batch-size", "2", "--val-split", "0"]) == 0
    err = capsys.readouterr().err
    assert "images are scaled by 0.5" in err  # their nuclei are twice the model's
    start, after = Trainer.load(model), Trainer.load(tuned)
    assert after.settings.data.downscale == pytest.approx(0.5, rel=0.1)
    for (name, p0), (_, p1) in zip(start.kept_model().named_parameters(), after.model.named_parameters()):
        assert torch.allclose(p0, p1, atol=1e-6), name
    # And its BatchNorm statistics: neither the training batches nor a re-estimate from 3 images move them.
    assert after.settings.train.freeze_normalization and "Normalisation statistics (BatchNorm) kept" in err
    for (name, b0), (_, b1) in zip(start.kept_model().named_buffers(), after.model.named_buffers()):
        assert torch.equal(b0, b1), name
    # The network cannot change under --from; --resume is another thing.
    assert main(["train", "--from", str(model), "--images", str(root / "images"), "--masks", str(root / "masks"),
                 "--out", str(tuned), "--arch", "FPN"]) == 2
    assert "--arch cannot change" in capsys.readouterr().err
