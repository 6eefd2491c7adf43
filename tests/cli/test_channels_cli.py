"""Issue #16, many channels, from the command line: --channels N and --channel-axis A."""

import numpy as np
import tifffile

from napari_mia.cli import main
from tests.conftest import load_dsb


def _two_channel_folder(root, pairs):
    """(C, H, W) TIFFs: real nuclei and their inverted copy as a second channel, 128 px (a fast test)."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for img, mask, name in pairs:
        img, mask = img[:128, :128], mask[:128, :128]
        tifffile.imwrite(root / "images" / f"{name}.tif", np.stack([img, img.max() - img]))
        tifffile.imwrite(root / "masks" / f"{name}.tif", mask)
    return root


def test_two_channel_files_train_and_predict_and_a_mono_file_is_skipped(tmp_path, capsys):
    from napari_mia.engine.settings import Settings
    from napari_mia.engine.trainer import Trainer

    pairs = load_dsb(3)
    root = _two_channel_folder(tmp_path, pairs[:2])
    Settings().update(epochs=1, steps_per_epoch=2, batch_size=2, val_split=0.0).save(tmp_path / "short.yaml")
    model = tmp_path / "cells.pt"
    assert main(["train", "--images", str(root / "images"), "--masks", str(root / "masks"), "--out", str(model),
                 "--channels", "2", "--channel-axis", "0", "--config", str(tmp_path / "short.yaml"), "--patch", "64",
                 "--label-mode", "instances", "--quiet"]) == 0
    assert Trainer.load(model).settings.model.channels == 2
    # Predict: the count comes from the model, the axis from --channel-axis; a Mono file is skipped, said plainly.
    imgs = tmp_path / "predict"
    imgs.mkdir()
    for f in (root / "images").iterdir():
        imgs.joinpath(f.name).write_bytes(f.read_bytes())
    mono = pairs[2][0][:128, :128]
    tifffile.imwrite(imgs / "mono.tif", mono)
    before = {p.name: p.read_bytes() for p in imgs.iterdir()}
    capsys.readouterr()
    out = tmp_path / "labels"
    rc = main(["predict", "--model", str(model), "--images", str(imgs), "--out", str(out), "--channel-axis", "0",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "1 image(s) were skipped" in err
    assert "mono.tif: 'mono.tif' has shape (128, 128): it has no channel axis 0" in err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{n}.tif" for _, _, n in pairs[:2])
    assert tifffile.imread(out / written[0]).shape == (128, 128)
    assert before == {p.name: p.read_bytes() for p in imgs.iterdir()}  # the images are only read
    # evaluate reads its images as predict does, with the same option (engine/test_channels.py: the guess).
    from napari_mia.cli import build_parser as _parser

    a = _parser().parse_args(["evaluate", "--model", str(model), "--images", str(imgs), "--masks", str(imgs),
                              "--channel-axis", "-3"])
    assert a.channel_axis == -3
