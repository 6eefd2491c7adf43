"""What the settings know of each task: its losses, its network's output count, and the choices it refuses.

Settings count a model's outputs and refuse unfit choices the moment they are made (``Settings.validate``),
before any application is imported; these rules are what they need for that, and nothing more. Each
application (``engine.applications``) takes its ``losses`` and ``default_loss`` from here; everything else a
task means (targets, loss head, score, decoding) is the application's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SettingsError

if TYPE_CHECKING:  # pragma: no cover - types only: settings imports this module
    from .settings import ModelSettings, Settings

SEGMENTATION_LOSSES = ("cross_entropy", "focal", "kl_divergence", "dice")
# Detection regresses a heatmap.
REGRESSION_LOSSES = ("mse", "rmse", "msle", "mae")
# Classification: one class per image. Dice scores overlaps of regions, which a
# single class per image does not have.
CLASSIFICATION_LOSSES = ("cross_entropy", "focal", "kl_divergence")


class TaskRules:
    """The default: a network with one output channel per class name, any loss and label mode."""

    losses: tuple[str, ...] = ()
    default_loss: str = ""
    #: ``class_names[0]`` is background (not scored, not an output of its own where ``num_outputs`` says so).
    has_background: bool = True

    def num_outputs(self, model: ModelSettings) -> int:
        """The network's output channels (``ModelSettings.num_classes``)."""
        return len(model.class_names)

    def validate(self, settings: Settings) -> None:
        """Raise SettingsError for a loss or label mode this task cannot use."""

    def check_class_names(self, model: ModelSettings) -> None:
        """Raise SettingsError for a class list this task cannot use."""


class SegmentationRules(TaskRules):
    losses = SEGMENTATION_LOSSES
    # Dice, not cross entropy: see TrainSettings.loss.
    default_loss = "dice"

    def num_outputs(self, model) -> int:
        # Instance mode: background / interior / boundary, whatever the objects' ids.
        return 3 if model.label_mode == "instances" else len(model.class_names)

    def validate(self, settings) -> None:
        loss = settings.train.loss
        if loss in REGRESSION_LOSSES:
            raise SettingsError(f"The loss '{loss}' is for detection; segmentation uses "
                                f"{', '.join(SEGMENTATION_LOSSES)}.")


class DetectionRules(TaskRules):
    losses = REGRESSION_LOSSES
    default_loss = "mse"

    def num_outputs(self, model) -> int:
        return len(model.class_names) - 1  # one heatmap per kind of point; class_names[0] is background

    def validate(self, settings) -> None:
        loss = settings.train.loss
        if loss not in REGRESSION_LOSSES:
            raise SettingsError(f"Detection learns a map of the objects: choose the loss "
                                f"{', '.join(REGRESSION_LOSSES)}; got '{loss}'.")
        if settings.model.label_mode != "classes":
            raise SettingsError("Detection takes points, not instance labels: use the label mode 'classes'.")


class ClassificationRules(TaskRules):
    losses = CLASSIFICATION_LOSSES
    default_loss = "cross_entropy"
    has_background = False

    def validate(self, settings) -> None:
        m, loss = settings.model, settings.train.loss
        if loss not in CLASSIFICATION_LOSSES:
            raise SettingsError(f"Classification gives one class to each image: choose the loss "
                                f"{', '.join(CLASSIFICATION_LOSSES)}; got '{loss}'.")
        if m.label_mode != "classes":
            raise SettingsError("Classification gives one class to each image, not instance labels: use the label "
                                "mode 'classes'.")

    def check_class_names(self, model) -> None:
        if len(model.class_names) < 2:
            raise SettingsError("Classification needs at least two classes to tell apart.")


# In the order of the command line's --task choices and of the dock's list (``settings.TASKS``).
RULES: dict[str, TaskRules] = {"segmentation": SegmentationRules(), "detection": DetectionRules(),
                               "classification": ClassificationRules()}


def rules(task: str) -> TaskRules:
    """The rules of `task`. An unknown name is refused by ``Settings.validate``; until then it reads as the first
    task's."""
    return RULES.get(task, next(iter(RULES.values())))


def task_losses(task: str) -> tuple[str, ...]:
    """The losses that fit a task."""
    return rules(task).losses


def default_loss(task: str) -> str:
    """The loss a new model of this task starts with (segmentation: dice, see TrainSettings.loss)."""
    return rules(task).default_loss
