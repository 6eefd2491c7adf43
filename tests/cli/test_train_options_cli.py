"""Every ``napari-mia train`` option reaches the saved model: a tiny run through the real command line, with
non-default values, read back from the model file."""

from __future__ import annotations

import pytest

from napari_mia.cli import main
from napari_mia.engine import modelfile
from napari_mia.engine.settings import Settings


@pytest.fixture(scope="module")
def start(folders, tmp_path_factory):
    """A model to train --from: Unet, resnet18, instances, 1 channel."""
    path = tmp_path_factory.mktemp("start") / "start.pt"
    assert main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out",
                 str(path), "--label-mode", "instances", "--epochs", "1", "--patch", "64", "--downscale", "0.5",
                 "--val-split", "0", "--quiet"]) == 0
    return path


def _saved(path) -> Settings:
    return modelfile.load(path)["settings"]


# Each option with a value other than its default, and where the saved settings hold it.
NEW_RUN = {
    "--keep": ("last", lambda s: s.train.keep),
    "--lr": ("0.0123", lambda s: s.train.learning_rate),
    "--batch-size": ("3", lambda s: s.train.batch_size),
    "--patch": ("64", lambda s: (s.data.patch_width, s.data.patch_height)),
    "--downscale": ("0.5", lambda s: s.data.downscale),
    "--val-split": ("0.34", lambda s: s.train.val_split),
    "--seed": ("7", lambda s: s.train.seed),
    "--epochs": ("1", lambda s: s.train.epochs),
    "--arch": ("FPN", lambda s: s.model.architecture),
    "--backbone": ("resnet34", lambda s: s.model.encoder),
    "--precision": ("off", lambda s: s.train.precision),
    "--sparse": (None, lambda s: s.data.sparse),
    "--label-mode": ("instances", lambda s: s.model.label_mode),
    "--object-size": ("12", lambda s: s.data.object_size),
    "--device": ("cpu", lambda s: s.train.device),
    "--task": ("segmentation", lambda s: s.model.task),
}
EXPECTED = {"--keep": "last", "--lr": 0.0123, "--batch-size": 3, "--patch": (64, 64), "--downscale": 0.5,
            "--val-split": 0.34, "--seed": 7, "--epochs": 1, "--arch": "FPN", "--backbone": "resnet34",
            "--precision": "off", "--sparse": True, "--label-mode": "instances",
            "--object-size": 12.0, "--device": "cpu", "--task": "segmentation"}


def _args(options: dict) -> list[str]:
    out = []
    for flag, (value, _) in options.items():
        out += [flag] if value is None else [flag, value]
    return out


def test_every_train_option_reaches_the_saved_model(folders, tmp_path, capsys):
    defaults = Settings()
    for flag, (_, read) in NEW_RUN.items():
        if flag not in ("--task", "--label-mode"):  # the others differ from the default
            assert read(defaults) != EXPECTED[flag], flag
    model = tmp_path / "m.pt"
    rc = main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out",
               str(model), "--quiet", *_args(NEW_RUN)])
    assert rc == 0, capsys.readouterr().err
    s = _saved(model)
    assert {flag: read(s) for flag, (_, read) in NEW_RUN.items()} == EXPECTED


def test_from_keeps_the_network_and_takes_the_training_options(folders, start, tmp_path, capsys):
    given = {flag: NEW_RUN[flag] for flag in ("--keep", "--lr", "--batch-size", "--patch", "--val-split", "--seed",
                                              "--epochs", "--precision", "--sparse", "--object-size", "--device",
                                              "--task")}
    tuned = tmp_path / "tuned.pt"
    # The network's own values (those of start.pt) are the values it has, not a change.
    same = ["--arch", "Unet", "--backbone", "resnet18", "--label-mode", "instances", "--channels", "1"]
    rc = main(["train", "--from", str(start), "--images", str(folders / "images"), "--masks", str(folders / "masks"),
               "--out", str(tuned), "--quiet", "--downscale", "0.5", *same, *_args(given)])
    assert rc == 0, capsys.readouterr().err
    s = _saved(tuned)
    assert {flag: read(s) for flag, (_, read) in given.items()} == {flag: EXPECTED[flag] for flag in given}
    assert (s.model.architecture, s.model.encoder, s.model.label_mode, s.model.channels) == \
        ("Unet", "resnet18", "instances", 1)


def test_from_accepts_the_models_own_network_options_and_refuses_a_change(folders, start, tmp_path, capsys):
    own = _saved(start)
    own.save(tmp_path / "own.yaml")
    other = own.copy().update(architecture="FPN")
    other.save(tmp_path / "other.yaml")
    train = ["train", "--from", str(start), "--images", str(folders / "images"), "--masks", str(folders / "masks"),
             "--out", str(tmp_path / "tuned.pt"), "--quiet", "--epochs", "1", "--val-split", "0"]
    for flag, value in [("--arch", "FPN"), ("--backbone", "resnet34"), ("--label-mode", "classes"),
                        ("--channels", "3"), ("--pretrained", None), ("--weights", str(tmp_path / "w.pth")),
                        ("--config", str(tmp_path / "other.yaml"))]:
        assert main(train + ([flag] if value is None else [flag, value])) == 2, flag
        assert f"{flag} cannot change them" in capsys.readouterr().err
    # The model's own settings file, given as --config, is what it has.
    rc = main(train + ["--task", "segmentation", "--label-mode", "instances", "--config", str(tmp_path / "own.yaml")])
    assert rc == 0, capsys.readouterr().err


def test_train_guesses_the_label_mode_from_the_masks_as_the_dock_does(folders, tmp_path, capsys):
    model = tmp_path / "m.pt"
    rc = main(["train", "--images", str(folders / "images"), "--masks", str(folders / "masks"), "--out", str(model),
               "--epochs", "1", "--patch", "64", "--downscale", "0.5", "--val-split", "0", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Label mode: instances (in the masks each object has its own number" in err
    assert _saved(model).model.label_mode == "instances"


def test_label_mode_guess_of_binary_unclear_and_mixed_masks(folders, tmp_path, capsys):
    import numpy as np
    import tifffile

    from napari_mia.workflows import formats
    from napari_mia.engine.errors import DataError
    from napari_mia.engine.images import guess_label_mode, pair_files

    app = formats.get("segmentation")
    masks = sorted((folders / "masks").iterdir())
    for kind in ("binary", "unclear", "mixed"):
        (tmp_path / kind).mkdir()
    for k, path in enumerate(masks):
        mask = tifffile.imread(path)
        tifffile.imwrite(tmp_path / "binary" / path.name, (mask > 0).astype(np.uint8))
        unclear = np.where(np.isin(mask, np.unique(mask[mask > 0])[:3]), mask, 0)  # 3 objects: cannot tell
        tifffile.imwrite(tmp_path / "unclear" / path.name, unclear)
        tifffile.imwrite(tmp_path / "mixed" / path.name, (mask > 0).astype(np.uint8) if k == 0 else mask)
    # The engine's rule says what each mask is; the command line follows it.
    assert guess_label_mode(tifffile.imread(tmp_path / "unclear" / masks[0].name)) is None
    mode, note = app.guess_label_mode(pair_files(folders / "images", tmp_path / "binary"), sparse=False)
    assert mode == "classes" and note.startswith("Label mode: classes (in the masks each number is a kind")
    mode, note = app.guess_label_mode(pair_files(folders / "images", tmp_path / "unclear"), sparse=False)
    assert mode == "classes" and "the default" in note and "--label-mode instances" in note
    with pytest.raises(DataError, match="do not agree on the label mode"):
        app.guess_label_mode(pair_files(folders / "images", tmp_path / "mixed"), sparse=False)
    rc = main(["train", "--images", str(folders / "images"), "--masks", str(tmp_path / "mixed"), "--out",
               str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "give --label-mode instances or --label-mode classes" in err
