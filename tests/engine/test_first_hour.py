"""Issue #13 ("the first hour in the dock"): label mode, channel shapes, progress, one image."""

import numpy as np
import pytest

from napari_mia.engine.data import check_pair_shape, guess_label_mode, image_frames
from napari_mia.engine.errors import DataError
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings


# -- defect 5: instance masks trained as many classes --------------------------------------
def test_guess_label_mode_on_real_and_tricky_labels(dsb_pairs, frozen):
    inst = dsb_pairs[0][1]
    frozen(inst)
    assert len(np.unique(inst)) - 1 == 27  # the mask: 27 nuclei, one id each
    assert guess_label_mode(inst) == "instances"
    assert guess_label_mode(np.stack([m for _, m, _ in dsb_pairs[:3]])) == "instances"
    assert guess_label_mode(inst > 0) == "classes"  # semantic, as bool
    assert guess_label_mode((inst > 0).astype(np.uint8)) == "classes"
    assert guess_label_mode(np.where(inst > 0, 1 + inst % 3, 0).astype(np.uint8)) == "classes"  # 3 classes
    touching = np.zeros((64, 64), np.uint16)
    touching[10:30, 10:30], touching[10:30, 30:50] = 1, 2  # two touching blobs: instances or 2 classes?
    assert guess_label_mode(touching) is None
    assert guess_label_mode(np.zeros((64, 64), np.uint8)) is None
    assert guess_label_mode(np.zeros((64, 64), np.float32)) is None


def test_start_refuses_instance_looking_labels_in_classes_mode(dsb_pairs, frozen):
    img, inst, _ = dsb_pairs[0]
    frozen(img, inst)
    t = Trainer(small_settings(steps_per_epoch=1, val_split=0, label_mode="classes"))
    with pytest.raises(DataError, match="look like one value per object .* label mode 'instances'"):
        list(t.train([(img, inst, "nuclei")]))
    assert t.model is None
    # Classes the user has named are intended: the same values train as classes.
    top = int(inst.max())
    named = Trainer(small_settings(steps_per_epoch=1, val_split=0, label_mode="classes",
                                   class_names=["background"] + [f"c{k}" for k in range(1, top + 1)]))
    assert list(named.train([(img, inst)]))[-1].reason == "completed"
