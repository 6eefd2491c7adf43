"""Fine-tune from a saved model: its weights and settings, new data, a new run.

The scripted form of the dock's retrain cycle. Training images whose objects are another size than the
model's (another microscope, another magnification) are brought to the model's scale through the down
scaling, measured from their labels, so that fine-tuning needs no manual down scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.samples import object_diameter
from ..engine.errors import MiaError
from ..engine.models import pick_device
from ..engine.settings import Settings
from ..engine.trainer import Trainer

# What a fine-tuned model keeps: the values that make its network, read off its settings. A value equal to the
# model's own is accepted; only a change is refused. "config": a whole settings file.
NETWORK_VALUES = {"architecture": lambda s: s.model.architecture,
                  "encoder": lambda s: s.model.encoder,
                  "label_mode": lambda s: s.model.label_mode,
                  "pretrained": lambda s: s.model.pretrained,
                  "weights_path": lambda s: s.model.weights_path,
                  "config": None,
                  "channels": lambda s: s.model.channels}
# Measured from the training data and written by training, or set by --from itself, not chosen: a config cannot
# be expected to hold the model's values.
_MEASURED = {"data": ("object_diameter", "detection_threshold"), "train": ("freeze_normalization",)}
# A scale this close to the model's is left alone: resampling costs detail for nothing.
_SAME_SCALE = 1.1


@dataclass
class Rescaling:
    """What was done to bring the training images to the model's objects' size."""

    diameter: float  # the objects' size in the training images, in pixels
    model_diameter: float  # the size the model learned
    scale: float  # the down scaling the images are trained at
    enlarging: bool  # the size asked would enlarge the images, which down scaling cannot

    def describe(self, model_name: str) -> str:
        note = " (down scaling cannot enlarge images: they stay at their size)" if self.enlarging else ""
        return (f"Objects in these training images: about {self.diameter:.0f} px across; {model_name} learned "
                f"objects of {self.model_diameter:.0f} px: images are scaled by {self.scale:.3g}{note}.")


def start_from(model: Path, network: dict[str, tuple[str, Any]], task: str | None, updates: dict,
               device: str | None = None) -> Trainer:
    """The model in `model`, holding the weights it predicts with, ready for a new run with `updates`
    (``Settings.update`` keywords; None: the model's). `network`: {name said when refused: (key of
    ``NETWORK_VALUES``, value or None)}, the network values given, each refused if it changes the model's."""
    trainer = Trainer.load(model)
    s = trainer.settings
    changed = [said for said, (key, value) in network.items() if value is not None and not _same(key, value, s)]
    if changed:
        raise MiaError(f"--from keeps the network and settings of {model.name}: {', '.join(changed)} cannot "
                       "change them. Give the training options to change (--epochs, --lr, --batch-size, --patch, "
                       "--downscale, ...), or train a new model without --from.")
    if task and task != s.model.task:
        raise MiaError(f"{model.name} is a {s.model.task} model; it cannot be trained for {task}.")
    # Start from the weights it predicts with (the best epoch's, unless it keeps the last).
    start = trainer.kept_model()
    if start is not trainer.model:
        trainer.model.load_state_dict(start.state_dict())
    s.update(**updates)
    # A few new images estimate BatchNorm's statistics far worse than the images the model learned them from.
    s.train.freeze_normalization = True
    if device:
        trainer.device = pick_device(device)
        trainer.model.to(trainer.device)
    return trainer


def _same(key: str, value, s) -> bool:
    """Whether `value` of the network value `key` is the one the model `s` already has."""
    if key == "config":
        return _comparable(Settings.load(value)) == _comparable(s)
    if key == "weights_path":
        have = s.model.weights_path
        return have is not None and Path(have).expanduser().resolve() == Path(value).expanduser().resolve()
    return value == NETWORK_VALUES[key](s)


def _comparable(s) -> dict:
    """The settings as a dict, without what training measures."""
    d = s.to_dict()
    for section, keys in _MEASURED.items():
        for key in keys:
            d[section].pop(key, None)
    return d


def to_model_scale(trainer, files, pairs, sources, read, diameter=None, downscale_given: bool = False,
                   channel_axis: int | None = None) -> tuple[list, Rescaling | None]:
    """(the training sources at the model's objects' size, with the down scaling set from their labels; what was
    done, None when nothing was). `diameter`: the objects' size in the images (None or 'auto': measured; 'off':
    not scaled); `downscale_given`: the user chose the down scaling, which is kept. `files`: the application's
    ``formats`` entry, which reads the sources again at the new scale."""
    s, app = trainer.settings, trainer.app
    model_d = app.model_diameter(s)
    if downscale_given or model_d is None or diameter == "off":
        return sources, None
    diameter = diameter if diameter not in (None, "auto") else None
    if diameter is None:
        found = object_diameter(sources)
        if found is None:  # nothing to measure (e.g. points): the model's own scale
            return sources, None
        diameter = found / s.data.downscale
    factor = model_d / diameter
    if abs(math.log(factor / s.data.downscale)) < math.log(_SAME_SCALE):
        return sources, None
    scale = min(factor, 1.0)
    done = Rescaling(diameter, model_d, scale, enlarging=scale != factor)
    if math.isclose(scale, s.data.downscale):
        return sources, done
    s.data.downscale = scale
    return files.sources(pairs, s, read, [], channel_axis=channel_axis), done
