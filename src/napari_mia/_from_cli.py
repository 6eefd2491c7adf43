"""``napari-mia train --from MODEL``: a saved model's weights and settings, new data, a new run.

The scripted form of the dock's retrain cycle. Training images whose objects are another size than
the model's (another microscope, another magnification) are brought to the model's scale through the
down scaling, measured from their labels, so that fine-tuning needs no manual down scaling.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .engine.errors import MiaError

# Options that would change the network itself: a model given with --from keeps its own. Each is read off the
# model's settings, so that the value the model already has is accepted (only a change is refused).
_NETWORK_OPTIONS = {"arch": ("--arch", lambda s: s.model.architecture),
                    "backbone": ("--backbone", lambda s: s.model.encoder),
                    "label_mode": ("--label-mode", lambda s: s.model.label_mode),
                    "pretrained": ("--pretrained", lambda s: s.model.pretrained),
                    "weights": ("--weights", lambda s: s.model.weights_path),
                    "config": ("--config", None),
                    "channels": ("--channels", lambda s: s.model.channels)}
# Measured from the training data and written by training, not chosen: a --config cannot be expected to hold the
# model's values.
_MEASURED = {"data": ("object_diameter", "detection_threshold")}
# A scale this close to the model's is left alone: resampling costs detail for nothing.
_SAME_SCALE = 1.1


def add_train_options(t: argparse.ArgumentParser) -> None:
    from ._evaluate_cli import diameter_value

    t.add_argument("--from", dest="start_from", type=Path, metavar="MODEL",
                   help="start from this saved model's weights and settings (the options given override them), "
                        "with the new images: a new run. Images whose objects differ in size from the model's "
                        "are scaled to its objects' size (see --diameter)")
    t.add_argument("--keep", choices=["best", "last"],
                   help="which weights the saved model holds: the best validation epoch's (default) or the last "
                        "epoch's")
    t.add_argument("--diameter", type=diameter_value, metavar="D|auto|off",
                   help="with --from: the objects' typical diameter in these training images, in pixels, to "
                        "scale them to the model's objects (default 'auto': measured from the labels; 'off': "
                        "not scaled)")


def start_from(a, training_pairs):
    """(trainer holding the model's kept weights, ready for a new run, [(image file, targets)])."""
    from .engine import applications
    from .engine.trainer import Trainer

    if a.resume:
        raise MiaError("--from starts a new run from a saved model; --resume continues the run saved in --out. "
                       "Use one of them.")
    trainer = Trainer.load(a.start_from)
    s = trainer.settings
    changed = [flag for key, (flag, _) in _NETWORK_OPTIONS.items()
               if getattr(a, key, None) is not None and not _same(a, key, s)]
    if changed:
        raise MiaError(f"--from keeps the network and settings of {a.start_from.name}: {', '.join(changed)} cannot "
                       "change them. Give the training options to change (--epochs, --lr, --batch-size, --patch, "
                       "--downscale, ...), or train a new model without --from.")
    if a.task and a.task != s.model.task:
        raise MiaError(f"{a.start_from.name} is a {s.model.task} model; it cannot be trained for {a.task}.")
    # Start from the weights it predicts with (the best epoch's, unless it keeps the last).
    start = trainer.kept_model()
    if start is not trainer.model:
        trainer.model.load_state_dict(start.state_dict())
    s.update(object_size=a.object_size, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
             patch_width=a.patch, patch_height=a.patch, downscale=a.downscale, val_split=a.val_split, seed=a.seed,
             device=a.device, keep=a.keep, precision=a.precision, sparse=a.sparse)
    if a.device:
        from .engine.models import pick_device

        trainer.device = pick_device(a.device)
        trainer.model.to(trainer.device)
    a.task = s.model.task
    return trainer, training_pairs(a, applications.for_settings(s))


def _same(a, key: str, s) -> bool:
    """Whether the option `key` of `a` holds the value the model `s` already has."""
    value = getattr(a, key)
    if key == "config":
        from .engine.settings import Settings

        return _comparable(Settings.load(value)) == _comparable(s)
    if key == "weights":
        have = s.model.weights_path
        return have is not None and Path(have).expanduser().resolve() == Path(value).expanduser().resolve()
    return value == _NETWORK_OPTIONS[key][1](s)


def _comparable(s) -> dict:
    """The settings as a dict, without what training measures (the options --from may change still count)."""
    d = s.to_dict()
    for section, keys in _MEASURED.items():
        for key in keys:
            d[section].pop(key, None)
    return d


def to_model_scale(a, trainer, pairs, sources, read):
    """The training sources at the model's objects' size (down scaling set from their labels), said on stderr."""
    from .engine.samples import object_diameter

    s, app = trainer.settings, trainer.app
    model_d = app.model_diameter(s)
    if a.downscale or model_d is None or a.diameter == "off":
        return sources
    diameter = a.diameter if a.diameter not in (None, "auto") else None
    if diameter is None:
        found = object_diameter(sources)
        if found is None:  # nothing to measure (e.g. points): the model's own scale
            return sources
        diameter = found / s.data.downscale
    factor = model_d / diameter
    if abs(math.log(factor / s.data.downscale)) < math.log(_SAME_SCALE):
        return sources
    scale = min(factor, 1.0)
    note = "" if scale == factor else " (down scaling cannot enlarge images: they stay at their size)"
    print(f"Objects in these training images: about {diameter:.0f} px across; {a.start_from.name} learned objects "
          f"of {model_d:.0f} px: images are scaled by {scale:.3g}{note}.", file=sys.stderr)
    if math.isclose(scale, s.data.downscale):
        return sources
    s.data.downscale = scale
    return app.cli_sources(pairs, s, read, [], channel_axis=a.channel_axis)
