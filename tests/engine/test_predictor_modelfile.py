import numpy as np
import pytest

from napari_mia.engine import modelfile
from napari_mia.engine.errors import DataError, ModelFileError
from napari_mia.engine.targets import PostProcess
from napari_mia.engine.trainer import Trainer
from tests.conftest import load_dsb, small_settings


def test_tiles_are_placed_and_blended_where_they_belong():
    """A network that sees 9 px around each pixel, far less than the overlap: cut into tiles, an image must
    give what it gives whole, up to the blending ramps' small share of each tile's zero-padded rim. A tile
    put a few pixels off, cropped wrongly or weighted wrongly differs by tens of times more (no overlap at
    all: 0.047 here)."""
    import torch

    from napari_mia.engine.predictor import Predictor

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5, padding=2), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 3, 5, padding=2)).eval()
    s, cpu = small_settings(label_mode="instances"), torch.device("cpu")
    frame = load_dsb(1, (520, 696))[0][0][..., None]
    whole = Predictor(net, s, cpu, tile=None).probabilities(frame)
    inner = (slice(None), slice(32, -32), slice(32, -32))  # the image border is padded differently untiled
    # Measured: 0.00045, 0.0011, 0.0031 for these three.
    for tile, overlap, most in [(512, 128, 0.002), (256, 64, 0.004), (128, 32, 0.01)]:
        predictor = Predictor(net, s, cpu, tile=tile, overlap=overlap)
        tiled = predictor.probabilities(frame)
        assert predictor.last_plan.tiles > 1
        assert np.abs(tiled - whole)[inner].max() < most, (tile, overlap)


def test_a_trained_unet_gives_the_same_classes_tiled(trained, frozen):
    """A Unet sees further than any overlap, so its tiles cannot match the whole image exactly; how closely
    they do depends on the weights this run's training drew (99.8% and 99.9% of pixels agreed in two runs)."""
    t, _ = trained
    img = frozen(load_dsb(1, (520, 696))[0][0])[0]
    frame = img[..., None] if img.ndim == 2 else img
    whole = t.predictor(tile=None).probabilities(frame)
    tiled = t.predictor(tile=512, overlap=128).probabilities(frame)
    agree = (tiled.argmax(0) == whole.argmax(0))[32:-32, 32:-32].mean()
    assert agree > 0.99, agree


def test_prediction_is_full_size_with_downscaling_and_stacks(trained, dsb_pairs):
    t, _ = trained
    img = dsb_pairs[9][0]
    labels = t.predictor().predict(img)
    assert labels.shape == img.shape and labels.dtype == np.uint16 and labels.max() > 3
    stack = t.predictor().predict(np.stack([img, img]))
    assert stack.shape == (2,) + img.shape and np.array_equal(stack[0], labels)
    t.settings.data.downscale = 0.5
    try:
        half = t.predictor().predict(img)
    finally:
        t.settings.data.downscale = 1.0
    assert half.shape == img.shape


def test_min_size_removes_small_objects(trained, dsb_pairs):
    t, _ = trained
    p = t.predictor()
    probs = p.probabilities(dsb_pairs[9][0][..., None])
    plain, cleaned = p.decode(probs), p.decode(probs, PostProcess(min_size=150))
    sizes = np.bincount(cleaned.ravel())[1:]
    assert cleaned.max() < plain.max() and sizes.min() >= 150


def test_split_touching_and_fill_holes(trained, dsb_pairs):
    from napari_mia.engine.targets import BACKGROUND

    t, _ = trained
    p = t.predictor()
    probs = p.probabilities(dsb_pairs[9][0][..., None])
    split, merged = p.decode(probs), p.decode(probs, PostProcess(split_touching=False))
    assert np.array_equal(merged > 0, probs[BACKGROUND] < 0.5)  # every foreground pixel, one id per blob
    assert merged.max() < split.max()  # the boundaries cut some blobs into several nuclei
    holed = split.copy()
    obj = np.argmax(np.bincount(split.ravel())[1:]) + 1  # the largest nucleus
    ys, xs = np.nonzero(split == obj)
    cy, cx = int(ys.mean()), int(xs.mean())
    holed[cy - 1:cy + 2, cx - 1:cx + 2] = 0
    assert split[cy, cx] == obj
    filled = p.decode(probs, PostProcess(fill_holes=True))
    assert (filled > 0).sum() >= (split > 0).sum() and np.array_equal(filled[split > 0], split[split > 0])
    from napari_mia.engine.targets import fill_holes as _fill_holes

    assert np.array_equal(_fill_holes(holed), _fill_holes(split))  # a punched hole is filled with its object


def test_save_and_load_round_trip(trained, dsb_pairs, tmp_path):
    t, _ = trained
    path = t.save(tmp_path / "m.pt")
    back = Trainer.load(path)
    assert back.settings == t.settings and back.history == t.history
    img = dsb_pairs[10][0]
    assert np.array_equal(back.predictor().predict(img), t.predictor().predict(img))


def test_wrong_channels_at_prediction_is_refused(trained, frozen):
    t, _ = trained
    rgb = frozen(np.zeros((64, 64, 3), np.uint8))[0]
    with pytest.raises(DataError, match="expects Mono"):
        t.predictor().predict(rgb)


def test_corrupt_truncated_and_foreign_files(trained, tmp_path):
    import torch

    t, _ = trained
    good = t.save(tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    torch.save(t.model.state_dict(), tmp_path / "foreign.pt")
    for name, words in [("cut.pt", "damaged"), ("noise.pt", "damaged"), ("foreign.pt", "another program"),
                        ("missing.pt", "not found")]:
        with pytest.raises(ModelFileError, match=words):
            Trainer.load(tmp_path / name)


def test_unwritable_folder_gives_a_clear_error_and_no_partial_file(trained, tmp_path):
    t, _ = trained
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ModelFileError, match="Cannot save the model"):
            t.save(ro / "m.pt")
    finally:
        ro.chmod(0o700)


def test_full_disk_is_reported(trained, tmp_path, monkeypatch):
    import errno

    import torch

    t, _ = trained

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(ModelFileError, match="disk is full"):
        t.save(tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_file_from_a_newer_napari_mia(trained, tmp_path):
    import torch

    t, _ = trained
    content = torch.load(t.save(tmp_path / "m.pt"), weights_only=True)
    content["settings"]["version"] = 99
    torch.save(content, tmp_path / "new.pt")
    with pytest.raises(ModelFileError, match="newer napari-mia"):
        modelfile.load(tmp_path / "new.pt")
