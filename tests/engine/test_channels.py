"""Issue #16, many channels: images of N channels, their channel axis first or last, and the refusal of an
image whose channel count is not the model's."""

import numpy as np
import pytest

from napari_mia.engine.images import channels_last, fit_channels, image_frames
from napari_mia.engine.task_data import sources_for_task
from napari_mia.engine.errors import DataError
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings


def two_channels(img: np.ndarray) -> np.ndarray:
    """(2, H, W): a real nucleus image and its inverted copy, as a second stain would differ."""
    return np.stack([img, img.max() - img])


def test_channels_first_and_last_read_the_same(dsb_pairs, frozen):
    img = dsb_pairs[0][0]
    first = two_channels(img)
    last = np.moveaxis(first, 0, -1)
    stack = np.stack([first, first[:, ::-1]])  # (N, C, H, W): frames of two channels
    frozen(first, stack)
    want = image_frames(last, 2)
    assert want.shape == (1, 256, 256, 2)
    assert np.array_equal(image_frames(first, 2, "cells", channel_axis=0), want)
    assert np.array_equal(image_frames(last, 2, channel_axis=-1), want)
    assert image_frames(stack, 2, channel_axis=1).shape == (2, 256, 256, 2)
    assert np.array_equal(channels_last(stack, -3)[1], np.moveaxis(first[:, ::-1], 0, -1))
    # Files: a (C, H, W) file of a 2-channel model is read channels first without being told.
    assert np.array_equal(fit_channels(first, 2, "cells.tif")[0], last)
    assert np.array_equal(fit_channels(last, 2)[0], last) and fit_channels(first, 1)[0] is not last
    assert fit_channels(first, 1)[0].shape == (2, 256, 256)  # Mono: frames, as before
    # Four channels are not colour with an alpha to drop, even when the fourth is all full.
    four = np.concatenate([np.stack([img] * 3, -1), np.full(img.shape + (1,), 255, img.dtype)], -1)
    assert fit_channels(four, 4)[0].shape[-1] == 4 and fit_channels(four, 3)[0].shape[-1] == 3


def test_a_channel_mismatch_is_a_data_error_that_says_both_counts(dsb_pairs):
    img = dsb_pairs[0][0]
    first = two_channels(img)
    last = np.moveaxis(first, 0, -1)
    with pytest.raises(DataError, match=r"'cells.tif' has 2 channels but the model expects Color \(3 channels\)"):
        image_frames(last, 3, "cells.tif")
    with pytest.raises(DataError, match="'dapi' has 1 channel but the model expects 2 channels"):
        image_frames(img, 2, "dapi")
    with pytest.raises(DataError, match="has 3 channels but the model expects 2 channels"):
        image_frames(np.stack([img] * 3), 2, "three", channel_axis=0)
    # Channels first, not said: the message points at the axis that may hold them.
    with pytest.raises(DataError, match=r"if axis 0 holds the channels.*--channel-axis 0"):
        image_frames(first, 2, "two")
    with pytest.raises(DataError, match=r"'flat' has shape \(256, 256\): it has no channel axis 0"):
        image_frames(img, 2, "flat", channel_axis=0)
    with pytest.raises(DataError, match="no channel axis 5"):
        channels_last(first, 5, "two")


def test_two_channel_model_trains_predicts_and_refuses_other_counts(dsb_pairs, frozen):
    img, inst = dsb_pairs[0][0][:128, :128], dsb_pairs[0][1][:128, :128]  # small: a fast test
    first = two_channels(img)
    frozen(first, inst)
    s = small_settings(channels=2, epochs=1, steps_per_epoch=2, batch_size=2, patch_width=64, patch_height=64,
                       val_split=0)
    t = Trainer(s)
    sources = sources_for_task([(first, inst, "cells")], s, channel_axis=0)
    assert sources[0].get().image.shape == (128, 128, 2)
    assert list(t.train(sources))[-1].reason == "completed"
    assert t.model.encoder.conv1.in_channels == 2
    p = t.predictor()
    labels = p.result(first, channel_axis=0, name="cells")
    assert labels.shape == (128, 128)
    assert np.array_equal(p.result(np.moveaxis(first, 0, -1)), labels)
    with pytest.raises(DataError, match="'dapi' has 1 channel but the model expects 2 channels"):
        p.result(img, name="dapi")
    with pytest.raises(DataError, match="'rgb' has 3 channels but the model expects 2 channels"):
        p.result(np.stack([img] * 3, -1), rgb=True, name="rgb")


def test_imagenet_weights_start_a_two_channel_encoder(tmp_path):
    """smp adapts the first convolution: channel i takes the ImageNet filter of colour i % 3, scaled by 3/N so
    that the sum over the channels stays that of the RGB filters."""
    import segmentation_models_pytorch as smp
    import torch
    from safetensors.torch import save_file

    from napari_mia.engine.trained_model import build_model
    from napari_mia.engine.settings import ModelSettings

    torch.manual_seed(0)
    enc = smp.encoders.get_encoder("resnet18", in_channels=3, weights=None)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in enc.state_dict().items()}
    path = tmp_path / "resnet18.safetensors"
    save_file(state, str(path))
    m = build_model(ModelSettings(encoder="resnet18", pretrained=True, weights_path=str(path), channels=2))
    got = m.encoder.state_dict()["conv1.weight"]
    assert got.shape[1] == 2
    assert torch.allclose(got, state["conv1.weight"][:, :2] * 1.5, atol=1e-6)
    assert m(torch.zeros(1, 2, 64, 64)).shape == (1, 2, 64, 64)
