"""Sparse labels as people paint them: a few whole objects and a few background dabs.

The ring of background around each painted object, and a validation score that sees false objects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from napari_mia.engine import applications
from napari_mia.engine.samples import background_ring, ring_width, supervision
from napari_mia.engine.task_data import sources_from_arrays
from napari_mia.engine.targets import BACKGROUND, BOUNDARY, IGNORE, INTERIOR, encode
from tests.conftest import load_dsb, small_settings


def _disc(shape, centre, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r


def _equivalent_diameter(mask):
    return 2 * np.sqrt(np.count_nonzero(mask) / np.pi)


def test_a_painted_nucleus_gets_a_ring_of_background_as_wide_as_the_rule_says():
    shape = (80, 80)
    nucleus = _disc(shape, (40, 40), 12)
    raw = np.where(nucleus, 2, 0).astype(np.uint16)
    labels, known = supervision(raw, sparse=True)
    ring = background_ring(labels, known, 0.15)
    width = ring_width(_equivalent_diameter(nucleus), 0.15)
    assert width >= 3  # a nucleus 25 px across: a few pixels
    outside = distance_transform_edt(~nucleus)
    # Every unpainted pixel within the width is background, nothing further out, nothing painted.
    assert np.array_equal(ring, (outside > 0) & (outside <= width))
    assert not (ring & nucleus).any()
    # The share scales the width; the smallest ring still has the minimum width.
    assert ring_width(100, 0.15) == 15 and ring_width(4, 0.15) == ring_width(0, 0.15) >= 1


def test_the_ring_never_overwrites_painted_pixels_and_none_lies_between_touching_nuclei():
    shape = (60, 90)
    raw = np.zeros(shape, np.uint16)
    left, right = _disc(shape, (30, 25), 10), _disc(shape, (30, 46), 11)  # touching (and overlapping: right wins)
    raw[left] = 2
    raw[right] = 3
    far = _disc(shape, (30, 75), 8)
    raw[far] = 5
    raw[2:6, 2:6] = 1  # a background dab
    labels, known = supervision(raw, sparse=True)
    before = raw.copy()
    ring = background_ring(labels, known, 0.3)
    assert np.array_equal(raw, before)
    assert not (ring & (raw > 0)).any()  # painted pixels (objects or background) keep their label
    # Where the two nuclei touch, each one's neighbour is the other nucleus: no background between them.
    touching = (raw == 2) & np.roll(raw == 3, -1, axis=1)
    assert touching.any()
    ys, xs = np.nonzero(touching)
    assert not ring[ys, xs + 1].any() and not ring[ys, xs].any()
    # Through the training path: the ring is background, the touching edge is taught as boundary.
    s = small_settings(sparse=True, sparse_ring=0.3)
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    (src,) = sources_from_arrays([(image, raw, "img")], s)
    t = src.get().target
    assert (t[ring] == BACKGROUND).all()
    assert (t[ys, xs] == BOUNDARY).all() and (t[ys, xs + 1] == BOUNDARY).all()
    assert (t[(raw == 0) & ~ring] == IGNORE).all()
    # Beyond the ring nothing changes: the dab is background as painted.
    assert (t[2:6, 2:6] == BACKGROUND).all()


def test_the_ring_is_not_painted_background_so_nuclei_alone_are_still_refused():
    from napari_mia.engine.samples import check_known_background
    from napari_mia.engine.errors import DataError

    raw = np.zeros((60, 60), np.uint16)
    raw[_disc(raw.shape, (30, 30), 10)] = 2
    image = np.random.default_rng(0).random(raw.shape).astype(np.float32)
    sources = sources_from_arrays([(image, raw, "img")], small_settings(sparse=True))
    assert (sources[0].get().target == BACKGROUND).any()  # the ring
    with pytest.raises(DataError, match="Nothing is labelled as background"):
        check_known_background(sources)


def test_classes_mode_has_no_ring_because_a_painted_stroke_need_not_be_a_whole_region():
    raw = np.zeros((60, 60), np.uint16)
    stroke = _disc(raw.shape, (30, 30), 6)
    raw[stroke] = 3  # class 2 painted as a stroke
    raw[2:8, 2:8] = 1
    image = np.random.default_rng(0).random(raw.shape).astype(np.float32)
    s = small_settings(sparse=True, label_mode="classes", class_names=["background", "a", "b"])
    assert applications.for_settings(s).background_ring(s) == 0
    (src,) = sources_from_arrays([(image, raw, "img")], s)
    t = src.get().target
    assert (t[stroke] == 2).all()
    assert (t[(raw == 0)] == IGNORE).all()  # around the stroke: still not labelled
    # Instance mode with the ring off (sparse_ring 0): the old behaviour, nothing around the object.
    (src,) = sources_from_arrays([(image, raw, "img")], small_settings(sparse=True, sparse_ring=0))
    assert (src.get().target[raw == 0] == IGNORE).all()


def test_unlabelled_pixels_as_weak_background_when_asked():
    raw = np.zeros((60, 60), np.uint16)
    raw[_disc(raw.shape, (30, 30), 10)] = 2
    raw[2:8, 2:8] = 1
    image = np.random.default_rng(0).random(raw.shape).astype(np.float32)
    s = small_settings(sparse=True, sparse_ring=0, sparse_unlabelled=0.05)
    sample = sources_from_arrays([(image, raw, "img")], s)[0].get()
    far = distance_transform_edt(raw == 0) > 3  # unlabelled, away from the nucleus's ignored edge
    assert (sample.target[far] == BACKGROUND).all()
    assert np.allclose(sample.weight[far], 0.05) and np.allclose(sample.weight[2:8, 2:8], 1)
    assert (sample.target[raw == 2] != BACKGROUND).all()


# -- the validation score of sparse labels --------------------------------------------------------
class _Shows:
    """A predictor whose maps are those of a given instance image (probability 1 for its class)."""

    def __init__(self, instances):
        self.instances = instances

    def maps(self, x):
        t = encode(self.instances, "instances")
        return np.stack([t == BACKGROUND, t == INTERIOR, t == BOUNDARY]).astype(np.float32)


@pytest.fixture(scope="module")
def painted():
    """A real DSB image, its full mask, and what a hurried person paints: 3 whole nuclei, 6 dabs."""
    image, mask, name = load_dsb(1)[0]
    ids = np.unique(mask[mask > 0])
    rng = np.random.default_rng(0)
    chosen = rng.choice(ids, 3, replace=False)
    raw = np.zeros(mask.shape, np.uint16)
    for k, v in enumerate(chosen, start=2):
        raw[mask == v] = k
    empty = distance_transform_edt(mask == 0) > 12
    ys, xs = np.nonzero(empty)
    dabs = []
    for i in rng.choice(len(ys), 6, replace=False):
        dab = _disc(mask.shape, (ys[i], xs[i]), 6)
        raw[dab & (raw == 0)] = 1
        dabs.append((ys[i], xs[i]))
    return image, mask, raw, dabs


def test_sparse_validation_counts_false_objects_on_painted_background(painted):
    image, mask, raw, dabs = painted
    s = small_settings(sparse=True)
    app = applications.for_settings(s)
    (src,) = sources_from_arrays([(image, raw, "img")], s)
    assert src.background is True  # partly labelled
    # Every nucleus found, the unpainted ones too: nothing false.
    good = app.validation_objects(_Shows(mask), [src], s)
    assert good is not None and good > 0.95
    # The same, plus a false object on every background dab: the painted nuclei are all found, but the
    # score must not say so alone.
    bad_pred = mask.astype(np.int64).copy()
    for k, (y, x) in enumerate(dabs):
        bad_pred[_disc(mask.shape, (y, x), 5) & (bad_pred == 0)] = mask.max() + 1 + k
    bad = app.validation_objects(_Shows(bad_pred), [src], s)
    assert bad < good - 0.3
    # Everything called an object: one giant object over the painted background; no match.
    everything = app.validation_objects(_Shows(np.ones(mask.shape, np.int64)), [src], s)
    assert everything == 0


def test_objects_on_unlabelled_pixels_are_not_counted_either_way():
    from napari_mia.engine.applications.segmentation import partial_object_f1

    truth = np.zeros((40, 40), np.int64)
    truth[5:15, 5:15] = 1
    known = np.zeros(truth.shape, bool)
    known[:20, :20] = True
    pred = truth.copy()
    pred[25:35, 25:35] = 2  # on unlabelled pixels: maybe a nucleus nobody painted
    assert partial_object_f1(pred, truth, known) == 1.0
    pred[2:4, 16:19] = 3  # on labelled background: false
    assert partial_object_f1(pred, truth, known) == pytest.approx(2 / 3)
    assert partial_object_f1(np.zeros_like(truth), truth, known) == 0.0


def test_training_on_sparse_labels_picks_its_best_epoch_by_the_sparse_object_score(painted):
    from napari_mia.engine.trainer import Trainer

    image, mask, raw, _ = painted
    s = small_settings(sparse=True, epochs=1, steps_per_epoch=1, batch_size=2, val_split=0.5)
    # Two images, one validates: one step, then the validation objects are scored despite the sparse labels.
    events = list(Trainer(s).train([(image, raw, "a"), (image[:, ::-1].copy(), raw[:, ::-1].copy(), "b")]))
    (end,) = [e for e in events if type(e).__name__ == "EpochEnd"]
    assert end.val_objects is not None
