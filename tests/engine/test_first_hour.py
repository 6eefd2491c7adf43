"""Issue #13 ("the first hour in the dock"): label mode, channel shapes, progress, one image."""

import numpy as np
import pytest

from napari_mia.engine.images import check_pair_shape, guess_label_mode, image_frames
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


# -- defect 7: multi-channel shapes ------------------------------------------------------------
def test_channel_like_axes_are_explained(dsb_pairs, frozen):
    from napari_mia.engine.task_data import sources_from_arrays

    img, inst, _ = dsb_pairs[0]
    mask = (inst > 0).astype(np.uint8)
    two = np.stack([img, img[::-1]])  # (2, 256, 256): two channels, or two frames?
    frozen(img, mask, two)
    s = small_settings(label_mode="classes")
    with pytest.raises(DataError, match=r"shape \(2, 256, 256\): napari-mia reads this as 2 frames of 256x256.*"
                                        r"If the first axis is 2 channels"):
        check_pair_shape(two.shape, mask.shape, "two", "mask")
    with pytest.raises(DataError, match="identical labels in 'mask'"):
        sources_from_arrays([(two, np.stack([mask, mask]), "two", "mask")], s)
    # Real frames with labels of their own stay a stack.
    other = (dsb_pairs[1][1] > 0).astype(np.uint8)
    assert len(sources_from_arrays([(two, np.stack([mask, other]), "two", "mask")], s)) == 2
    last = np.moveaxis(two, 0, -1)  # (256, 256, 2)
    with pytest.raises(DataError, match=r"\(256, 256, 2\): napari-mia would read this as 256 frames of 256x2"):
        image_frames(last, 1, "last")
    t = Trainer(small_settings())
    t._ensure_model()  # untrained weights: the input check comes first
    with pytest.raises(DataError, match="looks like 2 channels"):
        t.predictor().predict(last)
    # Mono, stacks and RGB keep working.
    assert image_frames(img, 1).shape == (1, 256, 256, 1) and image_frames(two, 1).shape == (2, 256, 256, 1)
    assert image_frames(np.stack([img] * 3, -1), 3).shape == (1, 256, 256, 3)


# -- defect 8: progress over tiles and frames ---------------------------------------------------
def test_progress_counts_every_tile_of_an_image_and_a_stack(dsb_pairs):
    img = dsb_pairs[0][0]
    t = Trainer(small_settings())
    t._ensure_model()
    p = t.predictor(tile=64, overlap=16)  # 256x256 in 64-px tiles, 48 px apart: 5 x 5 tiles
    seen = []
    p.result(img, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 25) for k in range(1, 26)]
    seen.clear()
    p.predict(np.stack([img, img]), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 50) for k in range(1, 51)]


# -- defect 10: a single labelled image with the default validation split ---------------------
def test_one_labelled_image_trains_without_validation_and_says_so(dsb_pairs):
    img, inst, _ = dsb_pairs[0]
    t = Trainer(small_settings(val_split=0.1, steps_per_epoch=1, patch_width=64, patch_height=64))
    events = list(t.train([(img, inst, "nuclei")]))
    started, epoch = events[0], [e for e in events if type(e).__name__ == "EpochEnd"][0]
    assert started.num_train == 1 and started.num_val == 0 and events[-1].reason == "completed"
    assert started.note.startswith("Only 1 labelled image: training without validation (a validation split of "
                                   "10% needs at least 2)")
    assert epoch.val_metric is None and not t.has_validation
    two = list(Trainer(small_settings(val_split=0.5, steps_per_epoch=1, patch_width=64, patch_height=64))
               .train(dsb_pairs[:2]))
    assert two[0].num_val == 1 and "without validation" not in two[0].note
