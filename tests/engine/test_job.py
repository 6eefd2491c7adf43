"""Training job folders (issue #18): written from the dock's items, read back by the command line's own readers."""

import numpy as np
import pytest
import tifffile

from napari_mia.cli import build_parser as _parser
from napari_mia.cli import main
from napari_mia.cli.train import fill_from_job as _fill_from_job
from napari_mia.cli.train import read_fit as _read_fit
from napari_mia.engine.errors import JobFolderError
from napari_mia.engine.job import write_job
from napari_mia.engine.settings import Settings
from napari_mia.workflows import formats
from tests.conftest import load_dsb


def _namespace(job, *extra):
    p = _parser()
    a = p.parse_args(["train", "--job", str(job), *extra])
    _fill_from_job(a)
    return a


def test_detection_job_is_read_by_the_points_reader(tmp_path):
    (im1, lab1, n1), (im2, _, n2) = load_dsb(2)
    pts1 = np.array([[10.5, 20.25, 1], [100, 30, 2]])
    pts2 = np.array([[50, 60, 1]])
    region = np.zeros(im2.shape[:2], np.uint8)
    region[:64, :64] = 1
    s = Settings().update(task="detection", loss="mse", class_names=["background", "a", "b"])
    items = [(im1, pts1, f"{n1}/odd:name", "pts", False, None), (im2, pts2, n2, "pts", False, region),
             (im2, np.zeros((0, 3)), "no points", "pts", False, None)]
    job = write_job(tmp_path / "job", items, s)
    a = _namespace(job)
    assert a.task == "detection" and a.out == job / "model.pt" and a.config == job / "settings.yaml"
    assert a.masks is None and a.sparse is None and a.val_images is None
    pairs = formats.get("detection").read_targets(a.images, a.points)
    assert [f.name for f, _ in pairs] == [f"{n1}_odd_name.tif", f"{n2}.tif"]  # safe file names; empty image left out
    assert np.allclose(pairs[0][1], pts1) and np.allclose(pairs[1][1], pts2)
    assert np.array_equal(tifffile.imread(pairs[0][0]), im1)
    assert [p.name for p in a.regions.iterdir()] == [f"{n2}.tif"]
    assert np.array_equal(tifffile.imread(a.regions / f"{n2}.tif"), region)
    assert Settings.load(a.config).model.class_names == ["background", "a", "b"]


def test_classification_job_splits_stacks_into_files_with_their_classes(tmp_path):
    frames = np.stack([p[0] for p in load_dsb(3)])
    s = Settings().update(task="classification", loss="cross_entropy", metric="accuracy", patch_width=64,
                          patch_height=64, class_names=["treated", "control"])
    items = [(frames, [0, -1, 1], "plate", None, False)]
    val = [(frames[2], 0, "held out", None, False)]
    job = write_job(tmp_path / "job", items, s, val)
    a = _namespace(job, "--epochs", "3", "--out", str(tmp_path / "m.pt"))
    assert a.epochs == 3 and a.out == tmp_path / "m.pt"  # the command line's options override the job's
    app = formats.get("classification")
    pairs = app.read_targets(a.images, a.classes)
    assert [(f.name, c) for f, c in pairs] == [("plate_t0000.tif", "treated"), ("plate_t0002.tif", "control")]
    assert np.array_equal(tifffile.imread(pairs[1][0]), frames[2])
    assert [(f.name, c) for f, c in app.read_targets(a.val_images, a.val_classes)] == [("held_out.tif", "treated")]
    config = Settings.load(a.config)
    app.prepare_settings(config, pairs, given_config=True)  # the dock's class order is kept
    assert config.model.class_names == ["treated", "control"]


def test_multichannel_images_are_written_channels_last_and_read_back_alike(tmp_path):
    image, labels, name = load_dsb(1)[0]
    two = np.stack([image, image[::-1]], -1)
    s = Settings().update(channels=2, label_mode="instances")
    job = write_job(tmp_path / "job", [(two, labels, name, "labels", True, None)], s)
    a = _namespace(job)
    assert a.channels == 2 and a.channel_axis == -1
    (f, mask), = formats.get("segmentation").read_targets(a.images, a.masks)
    assert np.array_equal(_read_fit(f, s, True, a.channel_axis), two)
    assert np.array_equal(tifffile.imread(mask), labels)


def test_a_folder_with_files_is_refused_and_left_as_it_was(tmp_path):
    image, labels, name = load_dsb(1)[0]
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(JobFolderError, match="not empty"):
        write_job(tmp_path, [(image, labels, name, "labels", False, None)], Settings())
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_train_needs_images_and_out_unless_a_job_gives_them(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--masks", str(tmp_path)])
    assert e.value.code == 2
    assert "napari-mia train: error: the following arguments are required: --images, --out" in capsys.readouterr().err
    assert main(["train", "--job", str(tmp_path)]) == 2  # not a job: one plain line
    err = capsys.readouterr().err
    assert err.startswith("napari-mia: error:") and "no job.json" in err and err.count("\n") == 1
