import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_mia.cli import main
from tests.conftest import DSB, _dsb_names


# Images in the shared `folders` (tests/cli/conftest.py).
DSB_IMAGES = 5


def test_help_documents_the_contract():
    out = subprocess.run([sys.executable, "-m", "napari_mia.cli", "train", "--help"], capture_output=True, text=True)
    for opt in ["--task", "--images", "--masks", "--out", "--label-mode", "--config", "--epochs", "--minutes", "--arch",
                "--backbone", "--pretrained", "--weights", "--batch-size", "--lr", "--patch", "--downscale",
                "--val-split", "--seed", "--device", "--val-images", "--val-masks", "--val-points", "--val-classes",
                "--sparse", "--regions"]:
        assert opt in out.stdout
    out = subprocess.run([sys.executable, "-m", "napari_mia.cli", "predict", "--help"], capture_output=True, text=True)
    assert all(o in out.stdout for o in ["--model", "--images", "--out"])


def test_train_then_predict(folders, tmp_path, capsys):
    model = tmp_path / "nuclei.pt"
    before = {p.name: p.read_bytes() for p in (folders / "masks").iterdir()}
    rc = main(["train", "--task", "segmentation", "--images", str(folders / "images"), "--masks",
               str(folders / "masks"), "--out", str(model), "--label-mode", "instances", "--epochs", "1",
               "--patch", "128", "--batch-size", "2", "--val-split", "0.2", "--quiet"])
    assert rc == 0 and model.is_file()
    assert "Validation iou (foreground)" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "nuclei_record.csv").open()))
    assert [r["kind"] for r in rows].count("epoch") == 1 and rows[0]["kind"] == "iteration"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--images", str(folders / "images"), "--out", str(out),
                 "--quiet"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in (folders / "images").iterdir())
    lab = tifffile.imread(out / written[0])
    assert lab.dtype == np.uint16 and lab.shape == tifffile.imread(folders / "images" / written[0]).shape[:2]
    assert before == {p.name: p.read_bytes() for p in (folders / "masks").iterdir()}
    merged = tmp_path / "merged"
    assert main(["predict", "--model", str(model), "--images", str(folders / "images"), "--out", str(merged),
                 "--no-split", "--fill-holes", "--min-size", "5", "--quiet"]) == 0
    blobs = tifffile.imread(merged / written[0])
    assert blobs.max() <= lab.max()  # touching nuclei stay one object


def test_config_file_then_flags(folders, tmp_path):
    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    cfg = Settings().update(architecture="FPN", optimizer="sgd", epochs=1, steps_per_epoch=1, patch_width=64,
                            patch_height=64, val_split=0.0, label_mode="instances")
    cfg.save(tmp_path / "cfg.yaml")
    model = tmp_path / "m.pt"
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out", str(model),
                 "--config", str(tmp_path / "cfg.yaml"), "--lr", "0.05", "--quiet"]) == 0
    s = Trainer.load(model).settings
    assert s.model.architecture == "FPN" and s.train.optimizer == "sgd" and s.train.learning_rate == 0.05
    assert s.model.label_mode == "instances"


def test_errors_are_one_line_with_exit_code(folders, tmp_path, capsys):
    rc = main(["train", "--images", str(tmp_path / "nope"), "--masks", str(folders / "masks"), "--out",
               str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("napari-mia: error: Folder not found") and err.count("\n") == 1
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    rc = main(["predict", "--model", str(tmp_path / "bad.pt"), "--images", str(folders / "images"), "--out",
               str(tmp_path / "o")])
    assert rc == 2 and "not a napari-mia model file" in capsys.readouterr().err


def test_killed_training_resumes_from_the_autosave(folders, tmp_path):
    """kill -9 in the middle of a run loses at most the epoch in progress."""
    import os
    import signal
    import time

    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    cfg = tmp_path / "cfg.yaml"
    Settings().update(label_mode="instances", epochs=4, steps_per_epoch=3, patch_width=64, patch_height=64,
                      batch_size=2, val_split=0.2).save(cfg)
    model = tmp_path / "m.pt"
    args = ["train", "--task", "segmentation", "--images", str(folders / "images"), "--masks", str(folders / "masks"),
            "--out", str(model), "--config", str(cfg), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "napari_mia.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not model.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert model.exists(), "no autosave after the first epoch"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    saved = Trainer.load(model)
    done = len(saved.history)
    assert 1 <= done < 4 and saved.saved_run["epoch"] == done
    assert main([*args, "--resume"]) == 0
    final = Trainer.load(model)
    assert [h["epoch"] for h in final.history] == [1, 2, 3, 4]
    assert final.history[:done] == saved.history  # the epochs done before the kill are kept, not redone
    rows = list(csv.DictReader((tmp_path / "m_record.csv").open()))
    assert [int(r["epoch"]) for r in rows if r["kind"] == "epoch"] == list(range(done + 1, 5))


def test_resume_without_a_saved_run_says_so(folders, tmp_path, capsys):
    rc = main(["train", "--task", "segmentation", "--images", str(folders / "images"), "--masks",
               str(folders / "masks"), "--out", str(tmp_path / "none.pt"), "--resume", "--quiet"])
    assert rc == 2 and "nothing to continue" in capsys.readouterr().err


def test_mismatched_mask_is_one_line_naming_both(folders, tmp_path, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(folders / "images", images)
    shutil.copytree(folders / "masks", masks)
    first = sorted(masks.iterdir())[0]
    tifffile.imwrite(first, np.zeros((100, 120), np.uint16))
    before = {p.name: p.read_bytes() for p in masks.iterdir()}
    rc = main(["train", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "(100, 120)" in err and "(256, 256)" in err
    assert before == {p.name: p.read_bytes() for p in masks.iterdir()} and not (tmp_path / "m.pt").exists()


def test_detection_train_then_predict_points_csv(tmp_path, capsys):
    from tests.conftest import SHARED

    mbm = SHARED / "mbm_bone_marrow_dots"
    if not mbm.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    images = tmp_path / "images"
    images.mkdir()
    from skimage.io import imread, imsave

    names = sorted(p.name for p in (mbm / "images").iterdir())[:3]
    for n in names:  # 256x256 corners: the same contract, a quarter of the time
        imsave(images / n, imread(mbm / "images" / n)[:256, :256, :3], check_contrast=False)
    rows = [r for r in csv.DictReader((mbm / "points.csv").open())
            if r["name"] in names and float(r["y"]) < 256 and float(r["x"]) < 256]
    with (tmp_path / "points.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["name", "y", "x"])
        w.writeheader()
        w.writerows(rows)
    model = tmp_path / "cells.pt"
    rc = main(["train", "--task", "detection", "--images", str(images), "--points", str(tmp_path / "points.csv"),
               "--out", str(model), "--epochs", "1", "--patch", "128", "--val-split", "0.34", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "Validation counts: mean absolute error" in out and "points F1" in out
    assert main(["predict", "--model", str(model), "--images", str(images), "--out", str(tmp_path / "pred"),
                 "--quiet"]) == 0
    table = (tmp_path / "pred" / "points.csv").open()
    assert next(csv.reader(table)) == ["name", "y", "x", "class", "score"]  # one epoch finds few points, if any
    assert {r[0] for r in csv.reader(table)} <= set(names)
    rc = main(["train", "--task", "detection", "--images", str(images), "--out", str(model), "--quiet"])
    assert rc == 2 and "Detection needs --points" in capsys.readouterr().err


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    """6 DSB images, 3 with few nuclei and 3 with many, plus one the CSV does not name."""
    if not DSB.is_dir():
        pytest.skip("../shared/data/dsb2018_fluo is not available")
    rows = [r for r in csv.DictReader((DSB / "index.csv").open()) if (r["height"], r["width"]) == ("256", "256")]
    sparse = sorted(r["name"] for r in rows if int(r["n_nuclei"]) <= 8)[:3]
    dense = sorted(r["name"] for r in rows if int(r["n_nuclei"]) >= 40)[:4]
    root = tmp_path_factory.mktemp("classes")
    (root / "images").mkdir()
    for n in sparse + dense:
        shutil.copy(DSB / "images" / f"{n}.tif", root / "images" / f"{n[:8]}.tif")
    with (root / "classes.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "class"])
        w.writerows([(f"{n[:8]}.tif", "sparse") for n in sparse] + [(f"{n[:8]}.tif", "dense") for n in dense[:3]])
    return root


def test_classification_train_then_predict_classes_csv(classified, tmp_path, capsys):
    from napari_mia.engine.trainer import Trainer

    model = tmp_path / "density.pt"
    with pytest.warns(UserWarning, match="1 image.s. have no class"):
        rc = main(["train", "--task", "classification", "--images", str(classified / "images"), "--classes",
                   str(classified / "classes.csv"), "--out", str(model), "--epochs", "1", "--patch", "64",
                   "--batch-size", "2", "--val-split", "0.34", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "Validation accuracy: " in out and "(2 images)" in out
    s = Trainer.load(model).settings
    assert s.model.task == "classification" and s.model.class_names == ["dense", "sparse"]  # sorted
    assert s.train.loss == "cross_entropy" and s.train.metric == "accuracy"  # not the segmentation defaults
    assert main(["predict", "--model", str(model), "--images", str(classified / "images"), "--out",
                 str(tmp_path / "pred"), "--quiet"]) == 0
    rows = list(csv.reader((tmp_path / "pred" / "classes.csv").open()))
    assert rows[0] == ["name", "class", "probability", "p_dense", "p_sparse"]
    assert sorted(r[0] for r in rows[1:]) == sorted(p.name for p in (classified / "images").iterdir())  # all 7
    for name, cls, prob, p_dense, p_sparse in rows[1:]:
        assert cls in ("dense", "sparse") and float(prob) == max(float(p_dense), float(p_sparse)) >= 0.5
        assert float(p_dense) + float(p_sparse) == pytest.approx(1, abs=2e-4)


def test_classification_csv_errors_are_one_line(classified, tmp_path, capsys):
    args = ["train", "--task", "classification", "--images", str(classified / "images"), "--out",
            str(tmp_path / "m.pt"), "--quiet"]
    assert main(args) == 2 and "Classification needs --classes CSV" in capsys.readouterr().err
    table = tmp_path / "classes.csv"
    table.write_text((classified / "classes.csv").read_text() + "gone.tif,dense\n")
    err = (main([*args, "--classes", str(table)]), capsys.readouterr().err)
    assert err[0] == 2 and err[1].count("\n") == 1 and "not in" in err[1] and "'gone.tif'" in err[1]
    lines = (classified / "classes.csv").read_text().splitlines()
    table.write_text("\n".join([lines[0]] + [ln.rsplit(",", 1)[0] + ",dense" for ln in lines[1:]]) + "\n")
    with pytest.warns(UserWarning):
        rc = main([*args, "--classes", str(table)])
    assert rc == 2 and "only one class ('dense')" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_classification_config_names_the_classes(classified, tmp_path, capsys):
    from napari_mia.engine.settings import Settings

    cfg = tmp_path / "cfg.yaml"
    Settings().update(task="classification", loss="focal", class_names=["sparse", "medium"]).save(cfg)
    with pytest.warns(UserWarning):  # the image the CSV does not name
        rc = main(["train", "--task", "classification", "--images", str(classified / "images"), "--classes",
                   str(classified / "classes.csv"), "--config", str(cfg), "--out", str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "class 'dense', which is not among the --config's classes (sparse, medium)" in err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "--classes" in help_text and "--task classification" in help_text


def test_predict_folder_skips_bad_files_names_them_and_exits_2(trained, folders, tmp_path, capsys):
    """Issue #13, defect 12: one empty TIFF or NaN image no longer costs the rest of the folder."""
    import imageio.v3 as iio

    from napari_mia.engine.images import fit_channels

    names = sorted(p.name for p in (folders / "images").iterdir())[:2]
    model = trained[0].save(tmp_path / "m.pt")  # any one-channel model will do
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for n in names:
        shutil.copy(folders / "images" / n, imgs)
    gray = tifffile.imread(folders / "images" / names[0])
    (imgs / "empty.tif").write_bytes(b"")
    nan = gray.astype(np.float32)
    nan[5, 5] = np.nan
    tifffile.imwrite(imgs / "nan.tif", nan)
    g8 = (gray / max(gray.max(), 1) * 255).astype(np.uint8)
    iio.imwrite(imgs / "rgba.png", np.dstack([g8, g8, g8, np.full_like(g8, 255)]))
    rgba = iio.imread(imgs / "rgba.png")
    assert fit_channels(rgba, 1, "rgba.png")[0].shape == gray.shape
    semi = rgba.copy()
    semi[0, 0, 3] = 10  # a transparent pixel: the alpha is kept, and so is the refusal
    assert fit_channels(semi, 1)[0].shape == rgba.shape
    before = {p.name: p.read_bytes() for p in imgs.iterdir()}
    out = tmp_path / "pred"
    capsys.readouterr()
    rc = main(["predict", "--model", str(model), "--images", str(imgs), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["rgba.tif"])
    assert "2 image(s) were skipped" in err and "empty.tif: Cannot read image empty.tif" in err
    assert "nan.tif: 'nan.tif' contains NaN or infinite values, so it cannot be predicted" in err
    assert "before training" not in err and "rgba.png: its alpha (transparency) channel is fully opaque" in err
    assert before == {p.name: p.read_bytes() for p in imgs.iterdir()}


def _crops(root, names, size):
    """Folders images/ and masks/ of the central `size` pixels of real 256x256 DSB images (small: fast to validate;
    the centres of these hold nuclei)."""
    crop = slice(128 - size // 2, 128 + size // 2)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for name in names:
            tifffile.imwrite(root / sub / f"{name}.tif", tifffile.imread(DSB / sub / f"{name}.tif")[crop, crop])
    return root / "images", root / "masks"


def test_a_chosen_validation_set_replaces_the_random_split(tmp_path, capsys):
    """--val-images/--val-masks: every --images image trains, exactly the given ones validate."""
    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    names = _dsb_names(4)
    images, masks = _crops(tmp_path / "train", names[:3], 128)
    val_images, val_masks = _crops(tmp_path / "val", names[3:], 64)  # not in --images
    cfg = tmp_path / "cfg.yaml"
    Settings().update(label_mode="instances", epochs=1, steps_per_epoch=1, patch_width=64, patch_height=64,
                      batch_size=2).save(cfg)
    model = tmp_path / "m.pt"
    train = ["train", "--images", str(images), "--masks", str(masks), "--config", str(cfg), "--quiet"]
    rc = main([*train, "--val-images", str(val_images), "--val-masks", str(val_masks), "--val-split", "0.5",
               "--out", str(model)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "--val-split is not used" in err and "Training on 3 images (1 for validation)" in err
    assert "Validation iou (foreground)" in out
    assert Trainer.load(model).data_size == {"train_images": 3, "validation_images": 1}
    epoch = [r for r in csv.DictReader((tmp_path / "m_record.csv").open()) if r["kind"] == "epoch"]
    assert len(epoch) == 1 and epoch[0]["val_loss"] != ""
    # plain one-line errors: no folder, an option without its partner, the other application's option
    for args, says in [(["--val-images", str(tmp_path / "nope"), "--val-masks", str(val_masks)], "Folder not found"),
                       (["--val-masks", str(val_masks)], "--val-masks needs --val-images"),
                       (["--val-images", str(val_images)], "--val-images needs --val-masks"),
                       (["--val-images", str(val_images), "--val-points", str(cfg)],
                        "--val-points does not fit segmentation")]:
        rc = main([*train, "--out", str(tmp_path / "x.pt"), *args])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"napari-mia: error: {says}") and err.count("\n") == 1, err
    # the other applications name their validation targets after their own option
    classes = tmp_path / "classes.csv"
    classes.write_text("name,class\n" + "".join(f"{n}.tif,{'ab'[i % 2]}\n" for i, n in enumerate(names[:3])))
    rc = main(["train", "--task", "classification", "--images", str(images), "--classes", str(classes), "--quiet",
               "--out", str(tmp_path / "x.pt"), "--val-images", str(val_images)])
    assert rc == 2 and "--val-images needs --val-classes for classification" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
