"""What an exported bioimage.io package says and does for each task (``engine.export``, ``engine.export_readme``):
its output channels and their postprocessing, the README's words, and the cover's drawing.

One class per application, keyed by the application's name (``for_task``); applications themselves only
describe their task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .settings import Settings
from .targets import INSTANCE_CLASS_NAMES


class ExportParts:
    """The defaults: a softmax over one channel per class."""

    def output_channel_names(self, settings: Settings) -> list[str]:
        """Names of the network's output channels, in order."""
        return list(settings.model.class_names)

    def what(self, settings: Settings) -> str:
        """The README's 'it finds ...'."""
        raise NotImplementedError

    def output_readme(self, settings: Settings, names: list[str]) -> list[str]:
        """The README's Output section."""
        return [f"Probabilities (softmax over the channel axis), one channel each: {', '.join(names)}."]

    def postprocess(self, out: np.ndarray, settings: Settings) -> np.ndarray:
        """The package's postprocessing, in numpy: the network's output -> the test output tensor."""
        import torch  # lazy: the README and cover need no torch

        return torch.softmax(torch.from_numpy(out), 1).numpy()

    def postprocessing(self, settings: Settings) -> list:
        """The same postprocessing as bioimage.io spec entries."""
        # bioimage.io is an optional extra, imported only when exporting.
        from bioimageio.spec.model.v0_5 import AxisId, SoftmaxDescr, SoftmaxKwargs

        return [SoftmaxDescr(kwargs=SoftmaxKwargs(axis=AxisId("channel")))]

    output_description: str = "probabilities"

    def predict(self, predictor, crop: np.ndarray) -> tuple[Any, Any]:
        """napari-mia's own prediction of the test crop, for the cover: (result, label image or None)."""
        shown = predictor.predict(crop)
        return shown, shown

    def cover(self, ax, result, shown, settings: Settings) -> None:
        """Draw the prediction on the cover's right panel (matplotlib axes, the image already shown)."""
        raise NotImplementedError


def _instances(settings: Settings) -> bool:
    return settings.model.label_mode == "instances"


class SegmentationParts(ExportParts):
    def output_channel_names(self, settings):
        return list(INSTANCE_CLASS_NAMES) if _instances(settings) else list(settings.model.class_names)

    def what(self, settings) -> str:
        return ("objects (instances): each pixel's probability of background, object interior and object "
                "boundary; napari-mia cuts touching objects apart along the boundaries") if _instances(settings) \
            else "a class for every pixel"

    def output_readme(self, settings, names):
        lines = super().output_readme(settings, names)
        if _instances(settings):
            lines.append("Objects are made from these by napari-mia (watershed from the interiors); other tools "
                         "can threshold the interior channel.")
        return lines

    def cover(self, ax, result, shown, settings) -> None:
        masked = np.ma.masked_equal(shown, 0)
        ax.imshow(masked % 20 if _instances(settings) else masked, cmap="tab20", alpha=0.6,
                  interpolation="nearest")
        ax.set_title("prediction")


class DetectionParts(ExportParts):
    def output_channel_names(self, settings):
        return list(settings.model.class_names[1:])

    def what(self, settings) -> str:
        return "objects as points: a map with a bump on each object, 1.0 at its centre"

    def output_readme(self, settings, names):
        d = settings.data
        return [f"One object map per kind of object ({', '.join(names)}), the network's map divided by the object "
                f"intensity ({d.object_intensity:g}) so that an object's centre is near 1.0.",
                f"napari-mia takes the map's local maxima above {d.detection_threshold:.2f} that lie at least "
                f"{max(1, round(d.object_size / 2))} pixels apart (object size {d.object_size:g} pixels) as the "
                "objects; other tools can do the same (e.g. Fiji's Find Maxima). That peak finding is not part "
                "of the package: the bioimage.io format has no step for it."]

    def postprocess(self, out, settings):
        return (out / np.float32(settings.data.object_intensity)).astype(np.float32)

    def postprocessing(self, settings):
        # bioimage.io is an optional extra, imported only when exporting.
        from bioimageio.spec.model.v0_5 import ScaleLinearDescr, ScaleLinearKwargs

        return [ScaleLinearDescr(kwargs=ScaleLinearKwargs(gain=1.0 / settings.data.object_intensity))]

    output_description = "object maps (1.0 at an object's centre)"

    def predict(self, predictor, crop):
        return predictor.detect(crop), None

    def cover(self, ax, result, shown, settings) -> None:
        ax.plot(result[:, 1], result[:, 0], "o", mfc="none", mec="yellow", ms=6)
        ax.set_title(f"{len(result)} objects")


class ClassificationParts(ExportParts):
    def what(self, settings) -> str:
        return "one class for each image"

    def output_readme(self, settings, names):
        return [f"Class probabilities (softmax), one per class: {', '.join(names)}."]

    def predict(self, predictor, crop):
        return predictor.classify(crop)[0], None

    def cover(self, ax, result, shown, settings) -> None:
        cls, probs = result
        ax.set_title(f"{settings.model.class_names[cls]} ({probs[cls]:.0%})")


_PARTS: dict[str, ExportParts] = {"segmentation": SegmentationParts(), "detection": DetectionParts(),
                                  "classification": ClassificationParts()}


def for_task(task: str) -> ExportParts:
    """The export parts of the application called `task` (``model.task``)."""
    return _PARTS[task]
