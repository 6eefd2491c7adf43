"""Bad input reaching the engine: a typed error in plain words, inputs untouched (docs/reliability.md)."""

import numpy as np
import pytest

from napari_mia.engine.task_data import sources_from_arrays
from napari_mia.engine.errors import DataError
from napari_mia.engine.settings import Settings
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings


def test_3d_labels_for_a_2d_image(dsb_pairs, frozen):
    img, inst, _ = dsb_pairs[0]
    img, stack = frozen(img, np.stack([inst, inst]))
    with pytest.raises(DataError, match=r"Image 'cell' \(256, 256\) and labels 'cell labels' \(2, 256, 256\)"):
        sources_from_arrays([(img, stack, "cell")], Settings())


def test_batch_larger_than_the_data_still_trains(dsb_pairs):
    """Patches are drawn at random, so 8 patches can come from one image."""
    t = Trainer(small_settings(batch_size=8, steps_per_epoch=0, val_split=0, patch_width=64, patch_height=64))
    events = list(t.train(dsb_pairs[:1]))
    its = [e for e in events if type(e).__name__ == "IterationEnd"]
    assert its and events[-1].reason == "completed"


def test_more_classes_than_a_loaded_model_has(dsb_pairs, tmp_path):
    img, inst, _ = dsb_pairs[0]
    t = Trainer(small_settings(steps_per_epoch=1, val_split=0, label_mode="classes"))
    list(t.train([(img, (inst > 0).astype(np.uint8))]))  # background + 1 class
    loaded = Trainer.load(t.save(tmp_path / "two.pt"))
    three = np.where(inst > 0, 1 + (inst % 2), 0).astype(np.uint8)
    before = three.copy()
    with pytest.raises(DataError, match="class 2"):
        list(loaded.train([(img, three)]))
    assert np.array_equal(three, before)


def test_model_file_from_an_older_version_loads_with_defaults(dsb_pairs, tmp_path):
    """Settings added later are missing from older files: they load with their defaults."""
    import torch

    t = Trainer(small_settings(steps_per_epoch=1, val_split=0))
    list(t.train(dsb_pairs[:1]))
    content = torch.load(t.save(tmp_path / "m.pt"), weights_only=True)
    old = content["settings"]
    del old["train"]["preview_every"], old["data"]["normalization"], old["augment"], old["version"]
    torch.save(content, tmp_path / "old.pt")
    loaded = Trainer.load(tmp_path / "old.pt")
    assert loaded.settings.train.preview_every == 0 and loaded.settings.data.normalization == "percentile"
    img = dsb_pairs[1][0]
    assert np.array_equal(loaded.predictor().predict(img), t.predictor().predict(img))
