"""Every training and prediction setting, as plain dataclasses.

Settings round-trip through plain dicts (hence JSON and YAML) so that a model
file, a CLI ``--config`` file and the widgets all speak the same language.
The dict carries a ``version``; older versions are migrated on load.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .tasks import REGRESSION_LOSSES, SEGMENTATION_LOSSES, rules
from .tiling import STRIDE

SETTINGS_VERSION = 2

TASKS = ("segmentation", "detection", "classification")
LABEL_MODES = ("classes", "instances")
# segmentation-models-pytorch's architecture names, as smp.create_model takes them.
ARCHITECTURES = (
    "Unet",
    "UnetPlusPlus",
    "FPN",
    "Linknet",
    "PSPNet",
    "DeepLabV3",
    "DeepLabV3Plus",
    "PAN",
    "MAnet",
    "UPerNet",
    "Segformer",
)
OPTIMIZERS = ("adam", "adamax", "adadelta", "adagrad", "sgd")
LOSSES = SEGMENTATION_LOSSES + REGRESSION_LOSSES
METRICS = ("iou", "dice", "accuracy", "precision", "recall", "f1")
LR_SCHEDULES = ("cosine", "constant", "plateau", "step")
CLASS_WEIGHTING = ("none", "auto", "manual")
NORMALIZATIONS = ("percentile", "minmax", "standardize", "none")


@dataclass
class ModelSettings:
    """What the network is: enough to rebuild it for prediction."""

    task: str = "segmentation"
    architecture: str = "Unet"
    encoder: str = "resnet18"
    pretrained: bool = False
    # A local file with the encoder's ImageNet weights, for machines offline.
    weights_path: str | None = None
    # 1 = Mono, 3 = Color; other counts for multi-channel images.
    channels: int = 1
    # Class names including background at index 0. In instance mode the
    # network's own classes are background / interior / boundary.
    # Classification: the categories an image can belong to, with no background.
    class_names: list[str] = field(default_factory=lambda: ["background", "foreground"])
    label_mode: str = "classes"

    @property
    def num_classes(self) -> int:
        """Number of output channels of the network."""
        return rules(self.task).num_outputs(self)


@dataclass
class DataSettings:
    """How images become network input; shared by training and prediction."""

    # Images are rescaled by this factor (0-1] before training and prediction;
    # predictions are scaled back to the image's size. Classification does not
    # use it: whole images are resized to patch_width x patch_height instead.
    downscale: float = 1.0
    normalization: str = "percentile"
    # Sparse labels: 0 = not labelled (ignored), 1 = background painted on purpose,
    # 2, 3, ... = objects (instance mode) or classes (value v is class v-1). Off: 0 is background.
    sparse: bool = False
    # Sparse labels, instance mode: a painted object is whole, so a thin ring just outside it is background
    # (or another painted object). The ring is this share of each object's diameter wide (at least
    # 2 pixels) and only covers unpainted pixels; 0: off. Without it, a few whole nuclei and a few
    # background dabs teach false objects everywhere (docs/benchmarks.md, "Sparse labels").
    sparse_ring: float = 0.15
    # Sparse labels: the unpainted pixels taught as background with this pixel weight (0: not learned).
    sparse_unlabelled: float = 0.0
    patch_width: int = 256
    patch_height: int = 256
    # Load every image once into memory (fast) or read from disk per patch.
    load_full: bool = True
    # Detection: objects' diameter in pixels (the width of each gaussian bump)
    # and the bump's height.
    object_size: float = 10.0
    object_intensity: float = 100.0
    # A peak counts as an object above this fraction of object_intensity; set
    # after training from the training images (see Trainer.calibrate_detection).
    detection_threshold: float = 0.5
    # Post-processing of segmentation predictions (the dock's Post-processing section, see
    # targets.PostProcess), kept with the model so that it predicts the same after loading.
    # Model files from before these fields load with these defaults (the values used then).
    # The median diameter of the labelled objects in the network's pixels (after down scaling),
    # measured when training starts; prediction with an object diameter rescales images to it.
    object_diameter: float | None = None
    # Bring every training image to the model's object diameter (each by its own factor, from its labels'
    # objects), as cellpose trains: the network learns one object size, and prediction's "auto" diameter
    # brings each image to it.
    same_object_size: bool = True
    min_object_size: int = 0
    fill_holes: bool = False
    split_touching: bool = True


@dataclass
class TrainSettings:
    batch_size: int = 4
    # Passes over the training images; 0 = as many as the training time allows (``minutes``).
    epochs: int = 10
    # A time budget: the run is planned to end, validated and with its learning rate run down, in this many
    # minutes (engine.plan). 0 = no budget: the epochs decide. With both, whichever ends first.
    minutes: float = 0.0
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    # Dice, not cross entropy: on DSB nuclei cross entropy stays biased towards
    # background for the first few hundred steps (docs/benchmarks.md).
    loss: str = "dice"
    metric: str = "iou"
    # cosine: a short warm-up, then down to a small fraction at the end of the planned steps (engine.plan).
    lr_schedule: str = "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    step_factor: float = 0.5
    step_every: int = 10
    class_weighting: str = "none"
    # Manual weights, one per class including background.
    class_weights: list[float] = field(default_factory=list)
    val_split: float = 0.1
    seed: int = 0
    device: str = "auto"
    # Predict the selected image every N epochs (0 = never).
    preview_every: int = 0
    # 0 = one epoch covers the training images' area once.
    steps_per_epoch: int = 0
    # MIA's "separate contours": U-Net border weights between close objects.
    separate_contours: bool = False
    contour_weight: float = 10.0
    contour_sigma: float = 5.0
    # MIA's "prefer labelled parts": resample up to `prefer_tries` patches
    # that hold fewer than `prefer_min_pixels` labelled pixels.
    prefer_labelled: bool = False
    prefer_tries: int = 5
    prefer_min_pixels: int = 100
    # Processes preparing patches while the network trains: -1 = automatic (none on the CPU, where they
    # would take cores from the training itself; up to 4 per process on a GPU), 0 = in the training process.
    num_workers: int = -1
    # Mixed precision (torch.autocast): "auto" = on for CUDA GPUs (bfloat16 where the GPU has it, else float16
    # with a gradient scaler), off elsewhere; "on" also on Apple GPUs and on CPUs whose oneDNN computes bfloat16
    # (AVX-512 or newer; on others bfloat16 is several times slower, so they train in float32 and say so,
    # engine.accel.precision_note); "off" = float32.
    precision: str = "auto"
    # Which weights Predict, Save and Export use: those of the epoch with the best validation score
    # ("best"), or the latest ("last"). Without validation images the latest are the only ones.
    keep: str = "best"
    # Keep the BatchNorm statistics the weights came with: the normalisation layers neither follow the training
    # batches nor are re-estimated after training. A fine-tune from a trained model (train --from) sets it: a few
    # new images estimate these statistics far worse than the many images the model was trained on, and
    # re-estimating them from 2-3 images cost 0.03-0.09 object F1 on held-out images (docs/benchmarks.md).
    freeze_normalization: bool = False


@dataclass
class AugmentSettings:
    """Probabilities (0-1) and ranges of the albumentations pipeline."""

    hflip: float = 0.5
    vflip: float = 0.5
    blur: float = 0.0
    blur_limit: tuple[int, int] = (3, 7)
    # Very slow (seconds per patch): off by default.
    piecewise_affine: float = 0.0
    dropout: float = 0.0
    affine: float = 0.0
    scale: tuple[float, float] = (0.8, 1.2)
    translate: tuple[float, float] = (-0.1, 0.1)
    shear: tuple[float, float] = (-10.0, 10.0)
    rotate: tuple[float, float] = (-45.0, 45.0)
    # On by default, at half the probabilities first chosen (0.5 / 0.5 / 0.3 / 0.2): in 5-minute trainings
    # with two seeds, those fitted the nuclei of held-out kinds and magnifications less tightly (fg IoU
    # 0.03-0.08 lower, object F1 0.03-0.04 lower; docs/benchmarks.md, "Augmentation strength at equal
    # time"). Flips alone scored as well as half, but would leave nothing for brightness and staining
    # that vary between microscopes, which those sets do not hold. Zoom alone (no shear, rotation or
    # shift): as often bigger as smaller, within the range.
    zoom: float = 0.25
    zoom_range: tuple[float, float] = (0.67, 1.5)
    # Intensity: brightness added and contrast changed by fractions of the normalised range,
    # a power (gamma), and gaussian noise (standard deviation as a fraction of the range).
    brightness_contrast: float = 0.25
    brightness_range: tuple[float, float] = (-0.2, 0.2)
    contrast_range: tuple[float, float] = (-0.3, 0.3)
    gamma: float = 0.15
    gamma_range: tuple[float, float] = (0.7, 1.5)
    noise: float = 0.1
    noise_range: tuple[float, float] = (0.01, 0.05)


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    version: int = SETTINGS_VERSION

    # -- serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        # tuples become lists so JSON and YAML round-trip identically
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        if not isinstance(d, dict):
            raise SettingsError(f"Settings must be a mapping, got {type(d).__name__}.")
        d = migrate(dict(d))
        sections = {
            "model": ModelSettings,
            "data": DataSettings,
            "train": TrainSettings,
            "augment": AugmentSettings,
        }
        unknown = set(d) - set(sections) - {"version"}
        if unknown:
            raise SettingsError(f"Unknown settings section(s): {', '.join(sorted(unknown))}.")
        kwargs = {}
        for name, klass in sections.items():
            kwargs[name] = _section_from_dict(klass, d.get(name, {}) or {}, name)
        s = cls(**kwargs)
        s.validate()
        return s

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = (
            _yaml().safe_dump(self.to_dict(), sort_keys=False)
            if path.suffix.lower() in (".yaml", ".yml")
            else json.dumps(self.to_dict(), indent=2)
        )
        path.write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise SettingsError(f"Cannot read settings file {path}: {e.strerror}.") from e
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                d = _yaml().safe_load(text)
            else:
                d = json.loads(text)
        except Exception as e:  # noqa: BLE001 - any parse error means the same to a user
            raise SettingsError(f"Settings file {path} is not valid JSON/YAML: {e}") from e
        return cls.from_dict(d or {})

    def copy(self) -> Settings:
        return Settings.from_dict(self.to_dict())

    def update(self, **flat: Any) -> Settings:
        """Set fields by their name, whatever section holds them (None = keep)."""
        for key, value in flat.items():
            if value is None:
                continue
            for section in (self.model, self.data, self.train, self.augment):
                if key in {f.name for f in dataclasses.fields(section)}:
                    setattr(section, key, value)
                    break
            else:
                raise SettingsError(f"Unknown setting '{key}'.")
        self.validate()
        return self

    # -- validation ----------------------------------------------------
    def validate(self) -> None:
        m, da, t, a = self.model, self.data, self.train, self.augment
        _choice("task", m.task, TASKS)
        _choice("label_mode", m.label_mode, LABEL_MODES)
        _choice("architecture", m.architecture, ARCHITECTURES)
        _choice("optimizer", t.optimizer, OPTIMIZERS)
        _choice("loss", t.loss, LOSSES)
        task = rules(m.task)
        task.validate(self)  # the task's losses and label modes
        if da.min_object_size < 0:
            raise SettingsError("Min object size must be 0 (keep every object) or more.")
        if not 0 <= da.sparse_ring <= 1:
            raise SettingsError("The sparse labels' ring must be 0 (off) to 1 object diameter wide, "
                                f"got {da.sparse_ring}.")
        if not 0 <= da.sparse_unlabelled <= 1:
            raise SettingsError(f"The weight of unlabelled pixels must be in [0, 1], got {da.sparse_unlabelled}.")
        if not (da.object_size > 0 and da.object_intensity > 0):
            raise SettingsError("Object size and object intensity must be positive.")
        _choice("metric", t.metric, METRICS)
        _choice("lr_schedule", t.lr_schedule, LR_SCHEDULES)
        _choice("keep", t.keep, KEEP)
        _choice("precision", t.precision, PRECISIONS)
        if t.num_workers < -1:
            raise SettingsError("Data-loading workers must be -1 (automatic), 0 (none) or more.")
        _choice("class_weighting", t.class_weighting, CLASS_WEIGHTING)
        _choice("normalization", da.normalization, NORMALIZATIONS)
        if m.channels < 1:
            raise SettingsError("channels must be at least 1 (1 = Mono, 3 = Color).")
        task.check_class_names(m)
        if len(m.class_names) < 2:
            raise SettingsError("At least two classes are needed: background and one more.")
        if not 0 < da.downscale <= 1:
            raise SettingsError(f"Down scaling must be in (0, 1], got {da.downscale}.")
        for name in ("patch_width", "patch_height"):
            v = getattr(da, name)
            if v < STRIDE or v % STRIDE:
                raise SettingsError(f"{name} must be a multiple of {STRIDE} and at least {STRIDE}, got {v}.")
        if t.batch_size < 1:
            raise SettingsError("Batch size must be at least 1.")
        if t.epochs < 0 or not t.minutes >= 0:
            raise SettingsError("Epochs and the training time cannot be negative.")
        if t.epochs == 0 and not t.minutes > 0:
            raise SettingsError("Give a number of epochs, or a training time to train as many as fit in it.")
        if not t.learning_rate > 0:
            raise SettingsError("Learning rate must be positive.")
        if not 0 <= t.val_split < 1:
            raise SettingsError(f"Validation split must be in [0, 1), got {t.val_split}.")
        if t.class_weighting == "manual" and t.class_weights and len(t.class_weights) != m.num_classes:
            raise SettingsError(
                f"Manual class weighting needs {m.num_classes} weights (one per class"
                f"{', background first' if task.has_background else ''}), got {len(t.class_weights)}."
            )
        for name in ("hflip", "vflip", "blur", "piecewise_affine", "dropout", "affine", "zoom",
                     "brightness_contrast", "gamma", "noise"):
            v = getattr(a, name)
            if not 0 <= v <= 1:
                raise SettingsError(f"Augmentation probability {name} must be in [0, 1], got {v}.")
        if not 0 < a.zoom_range[0] <= 1 <= a.zoom_range[1]:
            raise SettingsError(f"The zoom range must hold 1 (e.g. 0.67 to 1.5), got {tuple(a.zoom_range)}.")
        if not 0 < a.gamma_range[0] <= a.gamma_range[1]:
            raise SettingsError(f"The gamma range must be positive, got {tuple(a.gamma_range)}.")
        if not 0 <= a.noise_range[0] <= a.noise_range[1]:
            raise SettingsError(f"The noise range must be from 0 up, got {tuple(a.noise_range)}.")


KEEP = ("best", "last")
PRECISIONS = ("auto", "on", "off")


def _choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}; got '{value}'.")


def _section_from_dict(klass, d: dict, section: str):
    if not isinstance(d, dict):
        raise SettingsError(f"Settings section '{section}' must be a mapping.")
    fields = {f.name: f for f in dataclasses.fields(klass)}
    unknown = set(d) - set(fields)
    if unknown:
        raise SettingsError(f"Unknown setting(s) in '{section}': {', '.join(sorted(unknown))}.")
    kwargs = {}
    for k, v in d.items():
        default = getattr(klass(), k)
        if isinstance(default, tuple) and isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return klass(**kwargs)


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """Bring a settings dict of an older version up to SETTINGS_VERSION."""
    version = d.get("version", SETTINGS_VERSION)
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        raise SettingsError(
            f"These settings were written by a newer napari-mia (settings version {version}, "
            f"this one reads up to {SETTINGS_VERSION}). Update napari-mia."
        )
    for step in range(version, SETTINGS_VERSION):
        d = _MIGRATIONS[step](d)
    d["version"] = SETTINGS_VERSION
    return d


def _to_2(d: dict[str, Any]) -> dict[str, Any]:
    # Version 2 added the training time (absent: none) and the cosine schedule. Nothing to convert: a
    # version-1 file names its schedule, and older readers refuse version 2 with a plain message rather
    # than an unknown setting.
    return d


# _MIGRATIONS[n] turns a version-n dict into version n+1.
_MIGRATIONS: dict[int, Any] = {1: _to_2}


def _yaml():
    import yaml  # lazy: slow to import, and the dock and napari-mia --help import this module

    return yaml
