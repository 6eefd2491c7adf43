"""napari-mia curve and rank on real images, for the three applications: the curve trains nested subsets and
writes its table, picture and forecast; rank puts a corrupted image above clean ones; bad input is said plainly."""

import csv
import shutil

import numpy as np
import pytest
import tifffile

from napari_mia.cli import main
from tests.conftest import DSB, SHARED, _dsb_names

DSB_IMAGES = 4
# Small trainings: these tests check the commands, not the quality (benchmarks/label_efficiency.py does).
SMALL = "data:\n  patch_width: 64\n  patch_height: 64\ntrain:\n  batch_size: 2\n  steps_per_epoch: 1\n"


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("test")
    for sub in ("images", "masks"):
        (root / sub).mkdir()
        for name in _dsb_names(DSB_IMAGES + 2)[DSB_IMAGES:]:
            shutil.copy(DSB / sub / f"{name}.tif", root / sub)
    return root


def _curve(args, out, capsys):
    rc = main(["curve", *map(str, args), "--epochs", "1", "--out", str(out), "--quiet"])
    return rc, "".join(capsys.readouterr())


def test_curve_trains_nested_subsets_and_forecasts(folders, test_folder, small_config, tmp_path, capsys):
    out = tmp_path / "curve"
    rc, printed = _curve(["--images", folders / "images", "--masks", folders / "masks", "--test-images",
                          test_folder / "images", "--test-masks", test_folder / "masks", "--config", small_config,
                          "--label-mode", "instances"], out, capsys)
    assert rc == 0, printed
    rows = list(csv.DictReader((out / "curve.csv").open()))
    assert [int(r["images"]) for r in rows] == [1, 2, 4]
    objects = [float(r["labelled_objects"]) for r in rows]
    assert objects == sorted(objects) and objects[0] >= 8  # nested: each subset holds the smaller ones' nuclei
    assert all(0 <= float(r["object_f1"]) <= 1 and r["fitted"] for r in rows)
    assert (out / "curve.png").stat().st_size > 10_000
    subsets = [set(p.name for p in (out / f"subset_{n:04d}" / "images").iterdir()) for n in (1, 2, 4)]
    assert subsets[0] < subsets[1] < subsets[2]
    assert len(list(csv.DictReader((out / "subset_0004" / "test_scores.csv").open()))) == 3  # 2 images, mean
    assert "Twice the labelled objects" in printed or "The curve has flattened" in printed


def test_curve_says_plainly_what_is_wrong(folders, test_folder, tmp_path, capsys):
    three = tmp_path / "three"
    for sub in ("images", "masks"):
        (three / sub).mkdir(parents=True)
        for p in sorted((folders / sub).iterdir())[:3]:
            shutil.copy(p, three / sub)
    test = ["--test-images", test_folder / "images", "--test-masks", test_folder / "masks"]
    rc, printed = _curve(["--images", three / "images", "--masks", three / "masks", *test], tmp_path / "c", capsys)
    assert rc == 2 and "at least 4 labelled images; there are 3" in printed
    rc, printed = _curve(["--from", "nuclei", "--images", folders / "images", "--points", tmp_path / "p.csv", *test],
                         tmp_path / "c", capsys)
    assert rc == 2 and "nuclei is a segmentation model: it learns from --masks, not --points" in printed
    rc, printed = _curve(["--task", "detection", "--images", folders / "images", "--masks", folders / "masks", *test],
                         tmp_path / "c", capsys)
    assert rc == 2 and "learns from --points, not --masks" in printed
    assert not (tmp_path / "c").exists()  # nothing written


def test_rank_puts_a_noisy_image_above_clean_ones(folders, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((folders / "images").iterdir())[:2]:  # two clean fields: the contract, not a statistic
        shutil.copy(p, images)
    clean = tifffile.imread(sorted(images.iterdir())[0])
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 60, clean.shape), 0, 255).astype(np.uint8)
    tifffile.imwrite(images / "noisy.tif", noisy)
    out = tmp_path / "ranking.csv"
    # --diameter off: at the starter's own scale (auto would first measure each field, and upscale the noise).
    assert main(["rank", "--model", "nuclei", "--images", str(images), "--out", str(out), "--diameter", "off",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and rows[0]["name"] == "noisy.tif"
    # By a wide margin, on both measures.
    assert float(rows[0]["disagreement"]) > 3 * max(float(r["disagreement"]) for r in rows[1:])
    assert float(rows[0]["entropy"]) > 3 * max(float(r["entropy"]) for r in rows[1:])
    assert rows[0]["most_uncertain_region"] and "Label next: noisy.tif, most uncertain." in printed


def _mbm(tmp_path, n):
    mbm = SHARED / "mbm_bone_marrow_dots"
    if not mbm.is_dir():
        pytest.skip("../shared/data/mbm_bone_marrow_dots is not available")
    from skimage.io import imread, imsave

    names = sorted(p.name for p in (mbm / "images").iterdir())[:n]
    rows = [r for r in csv.DictReader((mbm / "points.csv").open())]
    out = []
    for part, chosen in (("train", names[:-2]), ("test", names[-2:])):
        (tmp_path / part / "images").mkdir(parents=True)
        for name in chosen:  # 128x128 corners: the same contract, a fraction of the time
            imsave(tmp_path / part / "images" / name, imread(mbm / "images" / name)[:128, :128, :3],
                   check_contrast=False)
        with (tmp_path / part / "points.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, ["name", "y", "x"])
            w.writeheader()
            w.writerows({k: r[k] for k in ("name", "y", "x")} for r in rows
                        if r["name"] in chosen and float(r["y"]) < 128 and float(r["x"]) < 128)
        out.append(tmp_path / part)
    return out


def test_detection_curve_and_rank(tmp_path, small_config, capsys):
    train, test = _mbm(tmp_path, 6)
    out = tmp_path / "curve"
    rc, printed = _curve(["--task", "detection", "--images", train / "images", "--points", train / "points.csv",
                          "--test-images", test / "images", "--test-points", test / "points.csv", "--config",
                          small_config, "--channels", 3], out, capsys)  # a settings file names its channels
    assert rc == 0, printed
    rows = list(csv.DictReader((out / "curve.csv").open()))
    assert [int(r["images"]) for r in rows] == [1, 2, 4] and "point_f1" in rows[0]
    assert main(["rank", "--model", str(out / "subset_0004" / "model.pt"), "--images", str(test / "images"),
                 "--out", str(tmp_path / "ranking.csv"), "--quiet"]) == 0
    assert len(list(csv.DictReader((tmp_path / "ranking.csv").open()))) == 2


def test_classification_curve_and_rank(tmp_path, small_config, capsys):
    rows = [r for r in csv.DictReader((DSB / "index.csv").open()) if (r["height"], r["width"]) == ("256", "256")]
    sparse = sorted(r["name"] for r in rows if int(r["n_nuclei"]) <= 8)[:5]
    dense = sorted(r["name"] for r in rows if int(r["n_nuclei"]) >= 40)[:5]
    folders = {}
    for part, names in (("train", sparse[:4] + dense[:4]), ("test", sparse[4:] + dense[4:])):
        root = tmp_path / part
        (root / "images").mkdir(parents=True)
        for n in names:
            shutil.copy(DSB / "images" / f"{n}.tif", root / "images" / f"{n[:8]}.tif")
        with (root / "classes.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["name", "class"])
            w.writerows((f"{n[:8]}.tif", "sparse" if n in sparse else "dense") for n in names)
        folders[part] = root
    out = tmp_path / "curve"
    rc, printed = _curve(["--task", "classification", "--images", folders["train"] / "images", "--classes",
                          folders["train"] / "classes.csv", "--test-images", folders["test"] / "images",
                          "--test-classes", folders["test"] / "classes.csv", "--config", small_config], out, capsys)
    assert rc == 0, printed
    table = list(csv.DictReader((out / "curve.csv").open()))
    assert [int(r["images"]) for r in table] == [2, 4, 8] and "correct" in table[0]
    for n in (2, 4):  # every subset holds both classes
        names = {p.name for p in (out / f"subset_{n:04d}" / "images").iterdir()}
        classes = {r["class"] for r in csv.DictReader((out / f"subset_{n:04d}" / "classes.csv").open())
                   if r["name"] in names}
        assert classes == {"sparse", "dense"}
    assert main(["rank", "--model", str(out / "subset_0008" / "model.pt"), "--images",
                 str(folders["test"] / "images"), "--out", str(tmp_path / "ranking.csv"), "--quiet"]) == 0
    ranking = list(csv.DictReader((tmp_path / "ranking.csv").open()))
    assert len(ranking) == 2 and all(0 <= float(r["entropy"]) <= 1 for r in ranking)


def test_an_interrupted_curve_writes_what_it_scored(tmp_path, capsys):
    import argparse
    import os
    import signal
    import time

    from napari_mia.cli import curve
    from napari_mia.workflows.curve import CurvePoint

    def caught_inside():  # as train does: Ctrl-C caught, the model saved, the command returns
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass

    assert curve._interrupted(caught_inside) and not curve._interrupted(lambda: None)
    a = argparse.Namespace(out=tmp_path, seed=0, minutes=2.0)
    points = [CurvePoint(1, 1.0, 0.5, {"object_f1": 0.5}, [0.5, 0.4], objects=20),
              CurvePoint(2, 2.0, 0.6, {"object_f1": 0.6}, [0.6, 0.6], objects=45)]
    assert curve._report(a, points, 4, "segmentation", "object F1") == 130
    printed = capsys.readouterr().out
    assert "No forecast: A learning curve needs at least 3" in printed
    assert "Interrupted: 2 of the 4 subsets were trained and scored." in printed
    rows = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert [r["labelled_objects"] for r in rows] == ["20.0", "45.0"] and rows[0]["fitted"] == ""
    points[1].objects = None  # class-mode masks count no objects: every point then counts images
    curve._report(a, points, 2, "segmentation", "object F1")
    assert [r["labelled_images"] for r in csv.DictReader((tmp_path / "curve.csv").open())] == ["1.0", "2.0"]
