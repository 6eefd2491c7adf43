import numpy as np
import pytest

from napari_mia.engine.data import PatchDataset, auto_class_weights, class_frequencies, split_train_val
from napari_mia.engine.images import image_frames, labelled_frames, normalize
from napari_mia.engine.task_data import sources_from_arrays
from napari_mia.engine.errors import DataError
from napari_mia.engine.settings import Settings
from napari_mia.engine.targets import IGNORE, contour_weights
from tests.conftest import small_settings


def test_shape_mismatch_names_both_and_leaves_inputs(frozen):
    img, lab = frozen(np.zeros((64, 64), np.uint8), np.ones((64, 60), np.uint16))
    with pytest.raises(DataError, match=r"Image 'cells' \(64, 64\) and labels 'cells labels' \(64, 60\)"):
        labelled_frames(img, lab, 1, "cells", "cells labels")


def test_empty_float_and_negative_labels(frozen):
    img = frozen(np.random.default_rng(0).random((32, 32)))[0]
    with pytest.raises(DataError, match="empty"):
        labelled_frames(img, np.zeros((32, 32), np.uint8), 1)
    floats = frozen(np.ones((32, 32), np.float32))[0]
    with pytest.raises(DataError, match="whole numbers"):
        labelled_frames(img, floats, 1)
    with pytest.raises(DataError, match="negative"):
        labelled_frames(img, -np.ones((32, 32), np.int32), 1)


def test_channel_count_must_match_the_model(frozen):
    rgb = frozen(np.zeros((40, 40, 3), np.uint8))[0]
    with pytest.raises(DataError, match="3 channels but the model expects Mono"):
        image_frames(rgb, 1, "he")
    with pytest.raises(DataError, match="1 channel but the model expects Color"):
        image_frames(np.zeros((40, 40), np.uint8), 3, "dapi", rgb=False)
    assert image_frames(rgb, 3).shape == (1, 40, 40, 3)


def test_stack_uses_only_labelled_frames():
    img = np.random.default_rng(0).random((5, 32, 32)).astype(np.float32)
    lab = np.zeros((5, 32, 32), np.uint8)
    lab[1, 4:8, 4:8] = 1
    lab[3, 10:20, 10:20] = 2
    frames = labelled_frames(img, lab, 1)
    assert [i for i, _, _ in frames] == [1, 3]
    sources = sources_from_arrays([(img, lab, "stack")], Settings())
    assert [s.name for s in sources] == ["stack[1]", "stack[3]"]
    assert max(s.max_label for s in sources) == 2


def test_normalisation_is_per_image_and_rejects_nan():
    x = np.linspace(100, 4000, 64 * 64, dtype=np.float32).reshape(64, 64, 1)
    for mode in ("percentile", "minmax"):
        n = normalize(x, mode)
        assert n.dtype == np.float32 and -0.1 < n.min() < 0.05 and 0.95 < n.max() < 1.1
    assert abs(normalize(x, "standardize").mean()) < 1e-4
    assert np.all(normalize(np.full((8, 8, 1), 7.0), "percentile") == 0)  # constant image: no division by zero
    with pytest.raises(DataError, match="NaN"):
        normalize(np.full((8, 8, 1), np.nan, np.float32), "percentile")


def test_downscale_shrinks_training_images(dsb_pairs):
    s = Settings().update(downscale=0.5)
    src = sources_from_arrays(dsb_pairs[:1], s)[0]
    assert src.shape == (128, 128) and src.get().image.shape == (128, 128, 1)


def test_validation_split_needs_enough_images(dsb_pairs):
    sources = sources_from_arrays(dsb_pairs[:1], Settings())
    # Issue #13: one labelled image trains, without validation (the trainer says so, test_first_hour.py).
    assert [len(part) for part in split_train_val(sources, 0.1, 0)] == [1, 0]
    train, val = split_train_val(sources_from_arrays(dsb_pairs[:10], Settings()), 0.2, 0)
    assert len(train) == 8 and len(val) == 2 and not {s.name for s in train} & {s.name for s in val}


def test_prefer_labelled_parts_samples_more_objects():
    # One small object in a large empty image: plain sampling mostly misses it.
    img = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    lab = np.zeros((512, 512), np.uint8)
    lab[20:60, 20:60] = 1

    def hit_rate(**kw):
        s = small_settings(patch_width=64, patch_height=64, steps_per_epoch=50, **kw)
        ds = PatchDataset(sources_from_arrays([(img, lab)], s), s)
        return np.mean([(ds[i][1] == 1).sum() >= 100 for i in range(len(ds))])

    plain, preferred = hit_rate(), hit_rate(prefer_labelled=True, prefer_tries=60, prefer_min_pixels=100)
    assert plain < 0.1 and preferred > 0.5


def test_auto_class_weights_favour_rare_classes(dsb_pairs):
    s = Settings()
    freq = class_frequencies(sources_from_arrays(dsb_pairs[:4], s), 2)
    w = auto_class_weights(freq)
    assert freq[1] < freq[0] and w[1] > w[0]


def test_separate_contours_weights_gaps_between_close_objects():
    inst = np.zeros((64, 128), np.int32)
    inst[10:30, 10:30], inst[10:30, 33:53] = 1, 2  # 3 px gap
    inst[10:30, 90:110] = 3  # far away
    w = contour_weights(inst, 10.0, 5.0)
    assert w[20, 31] > 5 and w[20, 70] < 1.5 and w[20, 20] == 1.0
    s = small_settings(separate_contours=True)
    sample = sources_from_arrays([(np.ones((64, 128), np.float32), inst)], s)[0].get()
    assert sample.weight is not None and sample.weight.max() > 5


def test_patches_pad_small_images_with_ignore():
    s = small_settings(patch_width=64, patch_height=64)
    img, lab = np.ones((40, 50), np.float32), np.ones((40, 50), np.uint8)
    x, y, w = PatchDataset(sources_from_arrays([(img, lab)], s), s)[0]
    assert x.shape == (1, 64, 64) and (y == IGNORE).sum() == 64 * 64 - 40 * 50


def test_patches_shrink_to_images_smaller_than_the_patch():
    # Three quarters padding would be most of what BatchNorm sees, and most of each step's work.
    s = small_settings(patch_width=256, patch_height=256)
    small = (np.ones((70, 100), np.float32), np.ones((70, 100), np.uint8))
    x, y, _ = PatchDataset(sources_from_arrays([small], s), s)[0]
    assert x.shape == (1, 96, 128) and (y == IGNORE).sum() == 96 * 128 - 70 * 100
    tall = (np.ones((300, 40), np.float32), np.ones((300, 40), np.uint8))
    x, _, _ = PatchDataset(sources_from_arrays([small, tall], s), s)[0]
    assert x.shape == (1, 256, 128)
