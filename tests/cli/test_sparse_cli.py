"""``napari-mia train --sparse --regions DIR`` (issue #16)."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_mia.cli import main
from tests.conftest import DSB, _dsb_names


def test_train_with_sparse_labels_and_regions(tmp_path, capsys):
    from scipy.ndimage import binary_dilation

    for d in ("images", "masks", "regions"):
        (tmp_path / d).mkdir()
    for k, name in enumerate(_dsb_names(3)):
        mask = tifffile.imread(DSB / "masks" / f"{name}.tif")
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", tifffile.imread(DSB / "images" / f"{name}.tif"))
        ids = np.unique(mask[mask > 0])[:3]
        sparse = np.zeros(mask.shape, np.uint16)
        for j, v in enumerate(ids, start=2):
            sparse[mask == v] = j
        sparse[binary_dilation(np.isin(mask, ids), iterations=3) & (mask == 0)] = 1
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", sparse)
        if k == 0:  # one image also has a reviewed box: its unpainted pixels there are background
            region = np.zeros(mask.shape, np.uint8)
            region[:64, :64] = 1
            tifffile.imwrite(tmp_path / "regions" / f"{name}.tif", region)
    before = {p.name: p.read_bytes() for p in (tmp_path / "masks").iterdir()}
    from napari_mia.engine.settings import Settings

    # Two steps: what is checked is how the labels are read, not what is learnt (benchmarks/sparse_labels.py).
    Settings().update(label_mode="instances", steps_per_epoch=2, epochs=1).save(tmp_path / "quick.yaml")
    rc = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--sparse",
               "--regions", str(tmp_path / "regions"), "--config", str(tmp_path / "quick.yaml"),
               "--patch", "64", "--batch-size", "2", "--out", str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "2 image(s) have no region file" in err
    from napari_mia.engine.trainer import Trainer

    assert Trainer.load(tmp_path / "m.pt").settings.data.sparse is True
    assert {p.name: p.read_bytes() for p in (tmp_path / "masks").iterdir()} == before
    # The same labels without --sparse: label 1 painted as background is caught, in plain words.
    rc = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
               "--label-mode", "instances", "--epochs", "1", "--out", str(tmp_path / "n.pt"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--sparse" in err and "label 1 is painted as" in err
    assert not (tmp_path / "n.pt").exists()
