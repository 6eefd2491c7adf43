"""Object scale, the best epoch's weights and test-time augmentation, on a model trained on real nuclei."""

import numpy as np
import pytest
import torch

from napari_mia.engine.evaluate import segmentation_scores
from napari_mia.engine.scale import estimate_diameter, object_diameter
from napari_mia.engine.trainer import Trainer


@pytest.fixture(scope="module")
def model_file(trained, tmp_path_factory):
    """The shared trained model as a file: tests here load their own copy and never change the fixture."""
    t, _ = trained
    return t.save(tmp_path_factory.mktemp("scale") / "nuclei.pt")


def _zoom(a, k):
    return np.kron(a, np.ones((k, k), a.dtype))


def test_the_model_records_its_objects_diameter(trained, dsb_pairs, tmp_path):
    t, _ = trained
    # Every labelled object of its 8 images (training and validation), in the network's pixels (no down scaling).
    assert t.settings.data.object_diameter == pytest.approx(object_diameter([m for _, m, _ in dsb_pairs[:8]]),
                                                            abs=0.01)
    assert Trainer.load(t.save(tmp_path / "nuclei.pt")).settings.data.object_diameter == \
        t.settings.data.object_diameter


def test_a_given_diameter_predicts_a_magnified_image_as_the_native_one(model_file, dsb_pairs):
    t = Trainer.load(model_file)
    image = dsb_pairs[9][0]
    native = t.predictor().predict(image)
    d = t.settings.data.object_diameter
    big = _zoom(image, 2)
    p = t.predictor(diameter=2 * d)
    scaled = p.predict(big)
    assert scaled.shape == big.shape and p.last_diameter == 2 * d
    # Back at the native size, the same objects (the 2x image is shrunk to the model's scale again).
    assert segmentation_scores(scaled[::2, ::2], native)["object_f1"] > 0.9
    plain = t.predictor().predict(big)  # the same image without a diameter: objects twice the model's size
    assert segmentation_scores(plain[::2, ::2], native)["object_f1"] < \
        segmentation_scores(scaled[::2, ::2], native)["object_f1"]


def test_auto_diameter_follows_the_magnification(model_file, dsb_pairs):
    t = Trainer.load(model_file)
    image, mask, _ = dsb_pairs[10]
    p = t.predictor(diameter="auto")
    p.predict(image)
    native_d = p.last_diameter
    assert native_d == pytest.approx(estimate_diameter(image))
    p.predict(_zoom(image, 3))
    assert p.last_diameter == pytest.approx(3 * native_d, rel=0.25)


def test_diameter_is_refused_plainly_where_it_cannot_apply(model_file):
    from napari_mia.engine.errors import SettingsError

    t = Trainer.load(model_file)
    with pytest.raises(SettingsError, match="positive"):
        t.predictor(diameter=-3)
    t.settings.data.object_diameter = None  # a model saved before diameters were recorded
    with pytest.raises(SettingsError, match="does not record"):
        t.predictor(diameter=20)


def test_best_epoch_follows_the_object_score(trained):
    _, events = trained
    epochs = [e for e in events if type(e).__name__ == "EpochEnd"]
    assert all(e.val_objects is not None for e in epochs)  # instance mode: objects scored on whole images
    from napari_mia.engine.trainer import _best_key

    best = _best_key(None, None)
    for e in epochs:  # the object score ranks the epochs (the trainer's own ranking: ties to the lower loss)
        key = _best_key(e.val_objects, e.val_loss)
        assert e.best == (key > best)
        best = max(best, key)


def test_best_weights_predict_save_and_export_last_ones_train_on(model_file, tmp_path):
    t = Trainer.load(model_file)
    t.best.store(t.model, 3, 0.9)
    best = {k: v.clone() for k, v in t.model.state_dict().items()}
    with torch.no_grad():  # later steps moved the weights on
        for p in t.model.parameters():
            p.add_(0.01)
    t.best.moved_on()
    last = {k: v.clone() for k, v in t.model.state_dict().items()}

    def same(model, state):
        return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    assert same(t.predictor().model, best) and same(t.model, last)
    t.settings.train.keep = "last"
    assert same(t.predictor().model, last)
    t.settings.train.keep = "best"
    back = Trainer.load(t.save(tmp_path / "autosave.pt", include_optimizer=True))
    assert same(back.model, last) and same(back.predictor().model, best)  # resuming goes on from the last
    plain = Trainer.load(t.save(tmp_path / "model.pt"))
    assert same(plain.model, best) and same(plain.predictor().model, best)


def test_tta_inverts_its_transforms_exactly():
    """A network that acts on each pixel alone commutes with flips and rotations: TTA must change nothing."""
    from napari_mia.engine.predictor import Predictor
    from napari_mia.engine.settings import Settings

    s = Settings()
    s.update(label_mode="instances")
    net = torch.nn.Conv2d(1, 3, 1)
    image = np.random.default_rng(0).random((96, 160)).astype(np.float32)
    plain = Predictor(net, s, torch.device("cpu")).probabilities(image[..., None])
    tta = Predictor(net, s, torch.device("cpu"), tta=True).probabilities(image[..., None])
    np.testing.assert_allclose(tta, plain, atol=1e-6)


def test_tta_of_a_symmetric_image_is_symmetric(model_file, dsb_pairs):
    t = Trainer.load(model_file)
    a = dsb_pairs[9][0][:128, :128].astype(np.float32)
    a = a + a[::-1] + a[:, ::-1] + a[::-1, ::-1]
    sym = (a + a.T)[..., None]  # unchanged by every flip and 90-degree rotation
    tta = t.predictor(tta=True).probabilities(sym)
    plain = t.predictor().probabilities(sym)
    for view in (lambda x: x[:, ::-1], lambda x: x[:, :, ::-1], lambda x: x.transpose(0, 2, 1)):
        np.testing.assert_allclose(view(tta), tta, atol=1e-4)
    assert np.abs(plain.transpose(0, 2, 1) - plain).max() > 10 * np.abs(tta.transpose(0, 2, 1) - tta).max()
