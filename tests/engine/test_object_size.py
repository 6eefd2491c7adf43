"""One object size: training images are brought to the model's object diameter, and prediction brings each
image to it by default ('auto' where the model knows its objects' size)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from napari_mia.engine.samples import object_diameter, to_object_size
from napari_mia.engine.task_data import sources_from_arrays
from napari_mia.engine.scale import object_diameter as label_diameter
from napari_mia.engine.settings import Settings
from napari_mia.engine.trainer import Trainer


def _zoom(a, k):
    return np.kron(a, np.ones((k, k), a.dtype))


@pytest.fixture(scope="module")
def model_file(trained, tmp_path_factory):
    t, _ = trained
    return t.save(tmp_path_factory.mktemp("size") / "nuclei.pt")


def test_a_magnified_image_is_brought_to_the_objects_size(dsb_pairs):
    s = Settings().update(label_mode="instances")
    image, mask, _ = dsb_pairs[0]
    native, big = sources_from_arrays([(image, mask, "native"), (_zoom(image, 3), _zoom(mask, 3), "x3")], s)
    d = label_diameter(mask)
    assert object_diameter([big]) == pytest.approx(3 * d, rel=0.1)
    same, smaller = to_object_size([native, big], d)
    assert same is native  # already at the size: left as it is
    assert smaller.scale == pytest.approx(1 / 3, rel=0.1) and smaller.shape == pytest.approx((256, 256), rel=0.1)
    sample = smaller.get()
    assert sample.image.shape[:2] == smaller.shape
    # Its targets were made from labels scaled first: instances of the native size, boundaries of native width.
    assert np.count_nonzero(sample.target == 2) == pytest.approx(np.count_nonzero(native.get().target == 2), rel=0.2)


def test_training_and_prediction_meet_at_one_size(dsb_pairs):
    # Round trip: a 3x image trains at the native objects' size; 'auto' prediction scales 3x images to it.
    s = Settings().update(label_mode="instances", epochs=1, steps_per_epoch=1, patch_width=64, patch_height=64,
                          val_split=0)
    pairs = [*dsb_pairs[:3], (_zoom(dsb_pairs[3][0], 3), _zoom(dsb_pairs[3][1], 3), "x3")]
    t = Trainer(s)
    events = list(t.train(pairs))
    assert "so that their objects are about" in events[0].note
    d = t.settings.data.object_diameter
    assert d == pytest.approx(object_diameter(t._sources(pairs)), rel=0.01)
    x3 = t._run.train[-1]
    assert x3.scale < 0.6 and object_diameter([x3]) == pytest.approx(d, rel=0.25)
    p = t.predictor(diameter=t.app.default_diameter(t.settings))  # what the command line and the dock take
    big = _zoom(dsb_pairs[2][0], 3)
    labels = p.predict(big)
    assert labels.shape == big.shape and p.last_scale == pytest.approx(d / p.last_diameter)
    assert p.last_scale < 0.6


def test_auto_is_the_default_where_the_model_knows_its_objects_size(model_file):
    from napari_mia.cli.options import diameter_value, predictor_for

    def options(diameter=None):
        return argparse.Namespace(model=model_file, keep=None, precision=None, device=None, tile="auto",
                                  diameter=diameter, tta=False)

    assert predictor_for(options())[1].diameter == "auto"
    assert predictor_for(options(diameter_value("off")))[1].diameter is None
    assert predictor_for(options(diameter_value("20")))[1].diameter == 20.0
    t = Trainer.load(model_file)
    assert t.app.default_diameter(t.settings) == "auto"
    t.settings.data.object_diameter = None  # a model that does not know its objects' size
    assert t.app.default_diameter(t.settings) is None
    from napari_mia.engine import applications

    detection = Settings()
    detection.model.task = "detection"  # points: their size is the bump the model draws, not estimated
    assert applications.get("detection").default_diameter(detection) is None


def test_an_estimate_close_to_the_model_size_is_not_acted_on(model_file, dsb_pairs):
    t = Trainer.load(model_file)
    p = t.predictor(diameter="auto")
    d = t.settings.data.object_diameter
    image = dsb_pairs[3][0]
    p.predict(image)
    near = abs(np.log(d / p.last_diameter)) < np.log(1.25)
    assert (p.last_scale == 1.0) == near
    p.predict(_zoom(image, 3))
    assert p.last_scale == pytest.approx(d / p.last_diameter)
