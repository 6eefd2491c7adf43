import numpy as np
import pytest
import torch

from napari_mia.engine.augment import build_augment
from napari_mia.engine.errors import PretrainedWeightsError, SettingsError
from napari_mia.engine.models import valid_encoders
from napari_mia.engine.trained_model import build_model
from napari_mia.engine.settings import ARCHITECTURES, AugmentSettings, ModelSettings
from napari_mia.engine.targets import IGNORE


# Every augmentation off (some are on by default), so that each test sees the one it names.
OFF = dict(hflip=0, vflip=0, zoom=0, brightness_contrast=0, gamma=0, noise=0)


def _only(**kw) -> AugmentSettings:
    return AugmentSettings(**{**OFF, **kw})


def _patch():
    rng = np.random.default_rng(0)
    img = rng.random((64, 64, 1)).astype(np.float32)
    tgt = np.zeros((64, 64), np.uint8)
    tgt[:, :20] = 1
    return img, tgt, np.ones((64, 64), np.float32), rng


def test_no_augmentation_means_no_pipeline():
    assert build_augment(_only()) is None


def test_flips_move_image_and_mask_together():
    img, tgt, w, rng = _patch()
    i2, t2, _ = build_augment(_only(hflip=1.0))(img, tgt, w, rng)
    assert np.array_equal(i2, img[:, ::-1]) and np.array_equal(t2, tgt[:, ::-1])


def test_affine_fills_new_border_with_ignore_and_blur_smooths():
    img, tgt, w, rng = _patch()
    a = _only(affine=1.0, rotate=(30, 30), scale=(1, 1), translate=(0, 0), shear=(0, 0))
    _, t2, _ = build_augment(a)(img, tgt, w, rng)
    assert (t2 == IGNORE).sum() > 100
    b = _only(blur=1.0, blur_limit=(7, 7))
    i3, t3, _ = build_augment(b)(img, tgt, w, rng)
    assert i3.std() < img.std() * 0.6 and np.array_equal(t3, tgt)


def test_dropout_hides_image_parts_only():
    img, tgt, w, rng = _patch()
    i2, t2, _ = build_augment(_only(dropout=1.0))(img + 1, tgt, w, rng)
    assert (i2 == 0).sum() > 0 and np.array_equal(t2, tgt)


def test_piecewise_affine_warns_that_it_is_slow():
    with pytest.warns(UserWarning, match="very slow"):
        build_augment(AugmentSettings(piecewise_affine=0.5))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_builds_and_keeps_the_size(arch):
    m = build_model(ModelSettings(architecture=arch, encoder="resnet18", channels=1, label_mode="instances")).eval()
    with torch.no_grad():
        assert m(torch.zeros(1, 1, 128, 128)).shape == (1, 3, 128, 128)


def test_offered_combinations_build():
    # Every encoder offered with a decoder that is picky about encoders.
    for arch in ("DeepLabV3Plus", "UnetPlusPlus"):
        for enc in valid_encoders(arch):
            if enc in ("resnet101", "efficientnet-b3", "vgg16_bn"):  # large: same family as smaller ones
                continue
            build_model(ModelSettings(architecture=arch, encoder=enc))
    with pytest.raises(SettingsError, match="cannot be built"):
        build_model(ModelSettings(architecture="DeepLabV3Plus", encoder="vgg16_bn"))


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    torch.manual_seed(123)
    enc = smp.encoders.get_encoder("resnet18", in_channels=3, weights=None)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in enc.state_dict().items()}
    path = tmp_path / "resnet18-imagenet.safetensors"
    save_file(state, str(path))
    m = build_model(ModelSettings(encoder="resnet18", pretrained=True, weights_path=str(path), channels=1))
    got = m.encoder.state_dict()
    assert torch.equal(got["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    # Mono input: smp folds the RGB filters of the first convolution into one.
    assert got["conv1.weight"].shape[1] == 1
    assert torch.allclose(got["conv1.weight"][:, 0], state["conv1.weight"].sum(1), atol=1e-5)
    # A torch .pth of the same weights (e.g. torchvision's file) loads too.
    torch.save(state, tmp_path / "w.pth")
    build_model(ModelSettings(pretrained=True, weights_path=str(tmp_path / "w.pth")))


def test_missing_pretrained_weights_offline_say_what_to_do(tmp_path):
    with pytest.raises(PretrainedWeightsError) as e:
        build_model(ModelSettings(encoder="resnet34", pretrained=True))
    msg = str(e.value)
    assert "resnet34" in msg and "smp-hub/resnet34.imagenet" in msg and "--weights" in msg
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    with pytest.raises(PretrainedWeightsError, match="Cannot read weights file"):
        build_model(ModelSettings(pretrained=True, weights_path=str(tmp_path / "junk.safetensors")))
