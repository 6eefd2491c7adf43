"""segmentation-models-pytorch networks, with ImageNet weights that work offline."""

from __future__ import annotations

from pathlib import Path

from .errors import PretrainedWeightsError, SettingsError
from .settings import ModelSettings

# Encoders offered in the widgets: smp's own (not timm's "tu-" family), whose
# ImageNet weights smp knows how to fetch and a user can place by hand.
COMMON_ENCODERS = (
    "resnet18", "resnet34", "resnet50", "resnet101",
    "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3",
    "mobilenet_v2", "densenet121", "vgg16_bn", "mit_b0", "mit_b1",
)
# Combinations that do not build (checked against smp 0.6 in the tests):
# dilated architectures cannot dilate pooling encoders, and the mix
# transformers lack the stride-2 stage some decoders need.
_EXCLUDED = {
    "DeepLabV3": ("densenet", "vgg"),
    "DeepLabV3Plus": ("densenet", "vgg"),
    "PAN": ("densenet", "vgg"),
    "UnetPlusPlus": ("mit_",),
    "Linknet": ("mit_",),
}


def valid_encoders(architecture: str) -> list[str]:
    """Encoders offered with this architecture: only combinations that build."""
    banned = _EXCLUDED.get(architecture, ())
    return [e for e in COMMON_ENCODERS if not e.startswith(banned)]


def imagenet_source(encoder: str) -> tuple[str, str]:
    """(repository, revision) where smp keeps this encoder's ImageNet weights."""
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    import segmentation_models_pytorch as smp

    try:
        s = smp.encoders.encoders[encoder]["pretrained_settings"]["imagenet"]
    except KeyError as e:
        raise PretrainedWeightsError(f"Encoder '{encoder}' has no ImageNet weights; untick Pretrained.") from e
    return s["repo_id"], s["revision"]


def _missing_weights_message(encoder: str, why: str) -> str:
    repo, _ = imagenet_source(encoder)
    return (
        f"The ImageNet weights of encoder '{encoder}' are not on this machine and could not be downloaded "
        f"({why}). On a computer with internet, download 'model.safetensors' of the Hugging Face repository "
        f"'{repo}', copy it here and choose it as the weights file (command line: --weights FILE), "
        "or untick Pretrained."
    )


def find_imagenet_weights(encoder: str, allow_download: bool = True) -> Path:
    """Path of the encoder's ImageNet weights: smp's cache, else a download."""
    from huggingface_hub import hf_hub_download  # lazy: slow to import, and only a download needs it

    repo, rev = imagenet_source(encoder)
    try:
        return Path(hf_hub_download(repo, "model.safetensors", revision=rev, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: try the network below
        pass
    if not allow_download:
        raise PretrainedWeightsError(_missing_weights_message(encoder, "offline"))
    try:
        # A short timeout so that a firewall fails in seconds, not minutes.
        return Path(hf_hub_download(repo, "model.safetensors", revision=rev, etag_timeout=10))
    except Exception as e:  # noqa: BLE001 - any network failure means the same here
        raise PretrainedWeightsError(_missing_weights_message(encoder, type(e).__name__)) from e


def load_encoder_weights(encoder_module, path: str | Path, encoder: str) -> None:
    """Load a .safetensors or torch state dict into an smp encoder (3-channel form)."""
    import torch  # lazy: seconds to import, and the dock and napari-mia --help import this module

    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"Weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # lazy: it imports torch

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
    except Exception as e:  # noqa: BLE001
        raise PretrainedWeightsError(f"Cannot read weights file {path.name}: {e}") from e
    try:
        # smp's encoders drop classifier keys (fc.*) in their own load_state_dict
        encoder_module.load_state_dict(state)
    except Exception as e:  # noqa: BLE001
        raise PretrainedWeightsError(
            f"{path.name} does not hold ImageNet weights for encoder '{encoder}': {str(e).splitlines()[0]}"
        ) from e


def model_key(ms: ModelSettings) -> tuple:
    """What fixes the network's shape: weights only carry over between settings of the same key."""
    return (ms.task, ms.architecture, ms.encoder, ms.channels, ms.num_classes, ms.label_mode)


def build_smp_model(ms: ModelSettings, pretrained: bool):
    """A segmentation-models-pytorch network: ``ms.architecture``'s decoder, one output channel per output."""
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    import segmentation_models_pytorch as smp

    kwargs = dict(encoder_name=ms.encoder, encoder_weights=None, classes=ms.num_classes)
    try:
        # Build in 3-channel form when loading ImageNet weights, then let smp
        # adapt the first convolution to the real channel count, as it does
        # when it downloads the weights itself.
        model = smp.create_model(ms.architecture, in_channels=3 if pretrained else ms.channels, **kwargs)
    except (KeyError, ValueError, AttributeError, TypeError, AssertionError, RuntimeError) as e:
        raise SettingsError(
            f"Architecture {ms.architecture} cannot be built with encoder '{ms.encoder}': {str(e).splitlines()[0]}"
        ) from e
    if pretrained:
        _start_from_imagenet(model.encoder, ms)
    return model


def _start_from_imagenet(encoder, ms: ModelSettings) -> None:
    """ImageNet weights into an encoder built with 3 channels, then adapted to the real channel count."""
    load_encoder_weights(encoder, ms.weights_path or find_imagenet_weights(ms.encoder), ms.encoder)
    encoder.set_in_channels(ms.channels, pretrained=True)


def _classifier_class():
    """The Classifier module class, imported on first use: importing this file must not import torch.

    It lives in the file every exported bioimage.io package carries, so napari-mia and its packages share one
    definition (and one set of weight names).
    """
    # lazy: it imports torch, and the dock and napari-mia --help import this module
    from .bioimageio_network import Classifier

    return Classifier


def build_classifier(ms: ModelSettings, pretrained: bool):
    """An encoder and one class per image (``bioimageio_network.Classifier``); the architecture does not apply."""
    # lazy: seconds to import, and the dock and napari-mia --help import this module
    import segmentation_models_pytorch as smp

    try:
        # 3-channel form for ImageNet weights, adapted to the real channel count below (as for segmentation).
        encoder = smp.encoders.get_encoder(ms.encoder, in_channels=3 if pretrained else ms.channels, depth=5,
                                           weights=None)
    except (KeyError, ValueError, AttributeError, TypeError, AssertionError, RuntimeError) as e:
        raise SettingsError(
            f"A classifier cannot be built with encoder '{ms.encoder}': {str(e).splitlines()[0]}"
        ) from e
    if pretrained:
        _start_from_imagenet(encoder, ms)
    return _classifier_class()(encoder, ms.num_classes)


def pick_device(name: str = "auto"):
    import torch  # lazy: seconds to import, and the dock and napari-mia --help import this module

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise SettingsError(f"Unknown device '{name}': use auto, cpu, cuda, cuda:N or mps.") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("No CUDA GPU is available on this machine: choose device 'auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SettingsError(f"There is no GPU number {dev.index}: this machine has {torch.cuda.device_count()}.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingsError("Apple MPS is not available on this machine: choose device 'auto' or 'cpu'.")
    return dev


def available_devices() -> list[str]:
    """Devices to offer in the GUI, 'auto' first."""
    import torch  # lazy: seconds to import, and the dock and napari-mia --help import this module

    out = ["auto", "cpu"]
    out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return out
