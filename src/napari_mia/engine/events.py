"""Progress events the trainer yields; the plot dock, CLI and tests consume them.

Plain frozen dataclasses (numbers, strings, numpy arrays) so that they cross
threads safely and can be written to a CSV record.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainingStarted:
    epochs: int
    steps_per_epoch: int
    device: str
    num_train: int
    num_val: int
    start_epoch: int = 0
    resumed: bool = False
    # A plain-words note to show the user, e.g. why there is no validation curve ("" if none).
    note: str = ""
    # Mixed precision in use: "bf16", "fp16", or "" (float32).
    precision: str = ""
    # Training processes working together (torchrun) and how they talk ("gloo", "nccl"; "" alone).
    processes: int = 1
    backend: str = ""
    # The time budget in minutes (0: none). With no epoch limit (``epochs`` 0) the plan is made from the
    # speed of the first steps and comes as ``PlanMade``; ``steps_per_epoch`` is then 0.
    minutes: float = 0.0
    # Said before training starts when the plan cannot give a useful model (an epoch plan of a few steps).
    warning: str = ""
    # The BatchNorm statistics stay as the model learned them (``TrainSettings.freeze_normalization``: a model
    # trained further on a few new images).
    kept_normalization: bool = False


@dataclass(frozen=True)
class PlanMade:
    """The run's plan, once the first steps are timed (``engine.plan``): what will happen, in plain words."""

    message: str  # e.g. "5 minutes: about 190 steps, validation every 19 steps (on 24 crops)."
    steps: int  # planned training steps of the run
    validate_every: int  # steps between validations (0: none)
    seconds_per_step: float
    seconds: float  # expected length of the run
    timed: bool
    warning: str = ""  # the plan is too short to learn, or a time limit cuts it before its first validation
    validation_crops: int = 0


@dataclass(frozen=True)
class IterationEnd:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    iteration: int  # 1-based over the whole run
    loss: float
    metric: float
    lr: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float
    train_metric: float
    val_loss: float | None
    val_metric: float | None
    lr: float
    seconds: float
    # The best validation score of the run so far: Predict, Save and Export use these weights
    # (TrainSettings.keep = "best").
    best: bool = False
    # Instance mode: object F1 at IoU 0.5 on the whole validation images, averaged per image (the
    # score users judge results by); it picks the best epoch when there is one. None otherwise.
    val_objects: float | None = None
    # Of ``seconds``, those the validation took (a time plan keeps their share small, engine.plan).
    val_seconds: float = 0.0


@dataclass(frozen=True)
class Preview:
    epoch: int
    name: str
    prediction: object = field(repr=False)  # what Predictor.result gives for the model's task


@dataclass(frozen=True)
class TrainingFinished:
    reason: str  # "completed", "stopped" or "time_limit"
    epoch: int
    iteration: int


Event = TrainingStarted | PlanMade | IterationEnd | EpochEnd | Preview | TrainingFinished
