"""magicgui controls for every engine setting, with plain-words tooltips.

A control's name is the setting's field name, so reading and writing a whole
``Settings`` is generic (``read_settings`` / ``write_settings``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from magicgui.widgets import create_widget

from ..engine import settings as S
from ..engine.models import COMMON_ENCODERS

# field -> (label, tooltip, extra magicgui options)
SPECS: dict[str, tuple[str, str, dict]] = {
    # deep learning model
    "architecture": ("Architecture", "The network's design. Unet is a good first choice; Unet++ and FPN are "
                     "alternatives worth a try.", {"choices": S.ARCHITECTURES}),
    "encoder": ("Backbone", "The network part that reads the image. resnet18 is fast; larger ones "
                "(resnet50, efficientnet-b3) can learn more but train slower.", {"choices": COMMON_ENCODERS}),
    "pretrained": ("Pretrained", "Start the backbone from ImageNet weights: learns faster from few labels. "
                   "Needs the weights file once (downloaded, or chosen below when offline).", {}),
    "weights_path": ("Weights file", "ImageNet weights of the backbone (.safetensors or .pth), for computers "
                     "without internet. Leave empty to use the downloaded ones.",
                     {"widget_type": "FileEdit", "mode": "r", "filter": "*.safetensors *.pth *.pt"}),
    # training parameters
    "channels": ("Input", "Mono: grayscale images (one channel). Color: RGB images such as H&E, or any three "
                 "channels. 2, 4 ... channels: images with several channels, e.g. two fluorescence stains, in one "
                 "layer (say where under Channel axis, in Data) or one layer per channel (choose the Other "
                 "channels, in Data).",
                 {"choices": [("Mono", 1), ("Color (or 3 channels)", 3)] + [(f"{n} channels", n)
                                                                           for n in (2, 4, 5, 6, 7, 8)]}),
    "batch_size": ("Batch size", "Patches learned from at once. Lower it if you run out of memory.",
                   {"min": 1, "max": 256}),
    "epochs": ("Epochs", "Passes over all training images; 'as time allows' (0): as many as fit in the Training "
               "time. Stop earlier any time: the weights are kept.", {"min": 0, "max": 10000}),
    "minutes": ("Training time (min)", "Train for this long: the steps, the validations and the learning rate are "
                "planned to fit, and the best weights are kept. 'off' (0): the epochs decide. With epochs too, "
                "whichever ends first.", {"min": 0.0, "max": 10000.0, "step": 1.0, "widget_type": "FloatSpinBox"}),
    "learning_rate": ("Learning rate", "Step size of learning. 0.001 suits Adam; lower it if the loss jumps "
                      "around.", {"min": 1e-7, "max": 1.0, "step": 1e-4, "widget_type": "FloatSpinBox"}),
    "downscale": ("Down scaling", "Shrink images by this factor before training and prediction (1 = full "
                  "size). Speeds up large images with large objects.", {"min": 0.05, "max": 1.0, "step": 0.05}),
    # settings
    "optimizer": ("Optimizer", "How weights are updated. Adam works well almost always.",
                  {"choices": S.OPTIMIZERS}),
    "loss": ("Loss", "What training minimises. Dice (the default) scores the overlap with your labels and "
             "copes with small objects; cross entropy and focal score each pixel.", {"choices": S.LOSSES}),
    "metric": ("Metric", "The score shown while training (IoU: overlap of prediction and labels, 1 = perfect).",
               {"choices": S.METRICS}),
    "lr_schedule": ("LR schedule", "cosine: warm up, then lower the learning rate smoothly to a small fraction at "
                    "the end of the run. constant: keep it. plateau: lower it when validation stops improving. "
                    "step: lower it every N epochs.", {"choices": S.LR_SCHEDULES}),
    "plateau_factor": ("Plateau factor", "Multiply the learning rate by this when validation stalls.",
                       {"min": 0.01, "max": 0.99, "step": 0.05}),
    "plateau_patience": ("Plateau patience", "Epochs without improvement before lowering the learning rate.",
                         {"min": 0, "max": 100}),
    "step_factor": ("Step factor", "Multiply the learning rate by this every N epochs.",
                    {"min": 0.01, "max": 0.99, "step": 0.05}),
    "step_every": ("Step every N epochs", "How often the step schedule lowers the learning rate.",
                   {"min": 1, "max": 1000}),
    "class_weighting": ("Class weighting", "none: all classes count the same. auto: rare classes count more. "
                        "manual: your weights below.", {"choices": S.CLASS_WEIGHTING}),
    "class_weights": ("Class weights", "Manual weights, background first, separated by commas (e.g. 1, 3).",
                      {"widget_type": "LineEdit"}),
    "val_split": ("Validation split", "Share of labelled images held out to check the model honestly. "
                  "Needs at least two labelled images (or frames); 0 = no validation.",
                  {"min": 0.0, "max": 0.9, "step": 0.05, "widget_type": "FloatSlider"}),
    "load_full": ("Load full data set", "Keep all training images in memory (fast). Untick for data sets "
                  "larger than memory.", {}),
    "preview_every": ("Predict every N epochs", "Re-predict the selected image every N epochs to watch the "
                      "model improve (0 = off).", {"min": 0, "max": 1000}),
    "normalization": ("Preprocessing", "How intensities are scaled per image. percentile (1-99.8%) suits "
                      "most microscopy.", {"choices": S.NORMALIZATIONS}),
    "same_object_size": ("One object size", "Scale each training image, from its labels, so that its objects have "
                         "the size the model learns (the median of all labelled objects); prediction brings each "
                         "image to it (Estimate it for each image). Untick to train every image at its own scale.",
                         {}),
    "steps_per_epoch": ("Steps per epoch", "0 = enough patches to cover the training images once per epoch.",
                        {"min": 0, "max": 100000}),
    "separate_contours": ("Separate contours", "Weigh the background between nearby objects more, so touching "
                          "objects are split (U-Net border weights).", {}),
    "contour_weight": ("Contour weight", "How much more the gaps between objects count.",
                       {"min": 0.0, "max": 100.0}),
    "contour_sigma": ("Contour width (px)", "How far from objects the extra weight reaches.",
                      {"min": 0.5, "max": 50.0}),
    "prefer_labelled": ("Prefer labelled parts", "Draw patches from where you labelled, not from empty "
                        "background.", {}),
    "prefer_tries": ("Discard up to N patches", "How many nearly empty patches to skip before taking one.",
                     {"min": 0, "max": 100}),
    "prefer_min_pixels": ("…with fewer labelled pixels than", "A patch counts as empty below this many "
                          "labelled pixels.", {"min": 0, "max": 1000000}),
    "keep": ("Weights to use", "Which weights Predict, Save and Export use. best epoch: those of the epoch that "
             "scored best on the validation images (training may overfit after it). last epoch: the latest. "
             "Without validation images the latest are used.",
             {"choices": [("best epoch", "best"), ("last epoch", "last")]}),
    "seed": ("Random seed", "The same seed and settings repeat a training exactly.", {"min": 0, "max": 2**31 - 1}),
    # augmentations
    "patch_width": ("Input width", "Width of the training patches in pixels (a multiple of 32).",
                    {"min": 32, "max": 2048, "step": 32}),
    "patch_height": ("Input height", "Height of the training patches in pixels (a multiple of 32).",
                     {"min": 32, "max": 2048, "step": 32}),
    "hflip": ("Horizontal flip", "Probability of mirroring a patch left-right.", {"min": 0.0, "max": 1.0,
                                                                                   "step": 0.1}),
    "vflip": ("Vertical flip", "Probability of mirroring a patch up-down.", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "blur": ("Gaussian blur", "Probability of blurring a patch (teaches robustness to focus).",
             {"min": 0.0, "max": 1.0, "step": 0.1}),
    "blur_limit": ("Blur kernel (px)", "Smallest and largest blur kernel (odd numbers).", {}),
    "piecewise_affine": ("Piecewise affine", "Probability of a local elastic warp. Very slow: keep it off "
                         "unless needed.", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "dropout": ("Dropout", "Probability of hiding small rectangles of the image.",
                {"min": 0.0, "max": 1.0, "step": 0.1}),
    "affine": ("Affine", "Probability of scaling, moving, shearing and rotating a patch (ranges below).",
               {"min": 0.0, "max": 1.0, "step": 0.1}),
    "scale": ("Scale range", "Smallest and largest zoom factor.", {}),
    "translate": ("Translate range", "Shift as a fraction of the patch size.", {}),
    "shear": ("Shear range (°)", "Smallest and largest shear angle.", {}),
    "rotate": ("Rotation range (°)", "Smallest and largest rotation angle.", {}),
    "zoom": ("Zoom", "Probability of zooming a patch in or out (no shear or rotation; range below). Helps "
             "when the objects' size varies between images.", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "zoom_range": ("Zoom range", "Smallest and largest zoom factor (1 = unchanged; 0.67, 1.5: objects up to a "
                   "third smaller or half bigger).", {"options": {"min": 0.1, "max": 10.0, "step": 0.05}}),
    "brightness_contrast": ("Brightness/contrast", "Probability of changing a patch's brightness and contrast "
                            "(ranges below). Helps when staining or exposure varies.", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "brightness_range": ("Brightness range", "Brightness added, as a fraction of the intensity range (-0.2, 0.2: "
                         "up to a fifth darker or brighter).", {"options": {"min": -1.0, "max": 1.0,
                                                                              "step": 0.05}}),
    "contrast_range": ("Contrast range", "Contrast change as a fraction (-0.3, 0.3: up to 30% less or more "
                       "contrast).", {"options": {"min": -0.95, "max": 2.0, "step": 0.05}}),
    "gamma": ("Gamma", "Probability of a gamma change: mid-tones darker or brighter, black and white kept "
              "(range below).", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "gamma_range": ("Gamma range", "Smallest and largest gamma (1 = unchanged).",
                    {"options": {"min": 0.1, "max": 5.0, "step": 0.05}}),
    "noise": ("Noise", "Probability of adding random (gaussian) noise to a patch (range below). Helps with "
              "noisy images, e.g. in low light.", {"min": 0.0, "max": 1.0, "step": 0.1}),
    "noise_range": ("Noise range", "Smallest and largest noise strength (standard deviation as a fraction of "
                    "the intensity range).", {"options": {"min": 0.0, "max": 1.0, "step": 0.01}}),
    # data
    "label_mode": ("Label mode", "classes: each label value is a class (1 = first class...). instances: each "
                   "object has its own value; the model learns to separate touching objects.",
                   {"choices": S.LABEL_MODES}),
    "sparse": ("Sparse labels", "Label only part of the image: 0 = not labelled (the model ignores it), "
               "1 = background painted on purpose, 2, 3, … = objects (in classes mode: value v is class v-1). "
               "Off: every unpainted pixel is background.", {}),
    "device": ("Device", "Where to train: auto picks a GPU when there is one.", {"choices": ["auto", "cpu"]}),
    "precision": ("Mixed precision", "Compute in 16-bit floats where it is safe: about twice as fast on recent NVIDIA "
                  "GPUs, same results within noise. auto: on for NVIDIA GPUs, off elsewhere; on: also on Apple GPUs "
                  "and on CPUs with bfloat16 instructions (AVX-512 or newer; usually slower there; other CPUs "
                  "stay 32-bit, as bfloat16 is several times slower on them); off: always 32-bit.",
                  {"choices": list(S.PRECISIONS)}),
    # detection
    "object_size": ("Object size (px)", "Diameter of the objects in pixels: the width of the bump the model "
                    "learns on each point, and how close two found objects may be.",
                    {"min": 1.0, "max": 500.0, "step": 1.0}),
    "object_intensity": ("Object intensity", "Height of the bump the model learns on each point. The default "
                         "suits almost every case.", {"min": 1.0, "max": 10000.0, "step": 10.0}),
}

MODEL_FIELDS = ["architecture", "encoder", "pretrained", "weights_path"]
PARAM_FIELDS = ["channels", "batch_size", "epochs", "minutes", "learning_rate", "downscale"]
# What a control shows at its lowest value, where that value means something else than a number.
SPECIAL_VALUES = {"epochs": "as time allows", "minutes": "off"}


def dock_settings() -> S.Settings:
    """The dock's defaults: the engine's, but trained for a time rather than for epochs, since the epochs a
    handful of small images make (a step or two each) learn nothing, and people think in minutes."""
    s = S.Settings()
    s.train.epochs, s.train.minutes = 0, 5.0
    return s
SETTINGS_FIELDS = ["optimizer", "loss", "metric", "lr_schedule", "plateau_factor", "plateau_patience", "step_factor",
                   "step_every", "class_weighting", "class_weights", "val_split", "load_full", "preview_every",
                   "normalization", "same_object_size", "steps_per_epoch", "separate_contours", "contour_weight", "contour_sigma",
                   "prefer_labelled", "prefer_tries", "prefer_min_pixels", "keep", "seed"]
AUGMENT_FIELDS = ["patch_width", "patch_height", "hflip", "vflip", "blur", "blur_limit", "piecewise_affine",
                  "dropout", "affine", "scale", "translate", "shear", "rotate", "zoom", "zoom_range",
                  "brightness_contrast", "brightness_range", "contrast_range", "gamma", "gamma_range", "noise",
                  "noise_range"]


def _default(field: str):
    s = dock_settings()
    for section in (s.model, s.data, s.train, s.augment):
        if hasattr(section, field):
            return getattr(section, field)
    raise KeyError(field)


def make_control(field: str):
    label, tip, options = SPECS[field]
    options = dict(options)
    widget_type = options.pop("widget_type", None)
    value = _default(field)
    annotation = None
    if field == "class_weights":
        value = ""
    elif field == "weights_path":
        value = ""
    elif isinstance(value, tuple):
        annotation = tuple[type(value[0]), type(value[1])]
    elif "choices" in options:
        widget_type = "ComboBox"
    w = create_widget(value=value, annotation=annotation, name=field, label=label, widget_type=widget_type,
                      options=options)
    w.tooltip = tip
    if field in SPECIAL_VALUES and hasattr(w.native, "setSpecialValueText"):
        w.native.setSpecialValueText(SPECIAL_VALUES[field])
    return w


def to_value(field: str, widget):
    v = widget.value
    if field == "class_weights":
        text = str(v).strip()
        try:
            return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
        except ValueError as e:
            raise S.SettingsError(f"Class weights must be numbers separated by commas, got '{text}'.") from e
    if field == "weights_path":
        # an empty FileEdit reads as the current folder
        text = str(v) if v else ""
        return text if text and not Path(text).is_dir() else None
    if isinstance(v, tuple):
        return tuple(v)
    return v


def to_widget(field: str, value):
    if field == "class_weights":
        return ", ".join(f"{x:g}" for x in value)
    if field == "weights_path":
        return value or ""
    return value


def read_settings(controls: dict, base: S.Settings | None = None, **extra) -> S.Settings:
    """A Settings from the controls; `extra` settings (e.g. the task) are validated together with them."""
    s = (base or dock_settings()).copy()
    s.update(**{**{f: to_value(f, w) for f, w in controls.items() if f not in ("weights_path",)}, **extra})
    s.model.weights_path = to_value("weights_path", controls["weights_path"]) if "weights_path" in controls else None
    return s


def write_settings(controls: dict, s: S.Settings) -> None:
    for section in (s.model, s.data, s.train, s.augment):
        for f in dataclasses.fields(section):
            if f.name in controls:
                w = controls[f.name]
                value = to_widget(f.name, getattr(section, f.name))
                if f.name == "channels" and value not in [c[1] if isinstance(c, tuple) else c
                                                          for c in w.choices]:
                    w.choices = list(w.choices) + [(f"{value} channels", value)]
                if f.name == "device" and value not in w.choices:
                    w.choices = list(w.choices) + [value]
                if f.name == "weights_path" and not value:
                    # FileEdit turns "" into the current folder's full path: leave the field empty instead.
                    w.line_edit.value = ""
                    continue
                w.value = value
