"""The optimiser, the learning-rate schedule, and re-estimating BatchNorm statistics (``Trainer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .data import auto_class_weights, class_frequencies
from .errors import SettingsError
from .settings import Settings, TrainSettings
from .tasks import rules

# Patches whose batch statistics become the BatchNorm running statistics before
# the model predicts (see Trainer.settle_normalization). Measured on a 5-step Unet
# on DSB nuclei (256 px patches): eval-mode IoU on a training image 0.62 stale,
# 0.73 with 16 patches, 0.72 with 32, train-mode 0.68; 16 cost 4 forward passes of 4.
SETTLE_PATCHES = 16
# The patches are drawn with their own seed: the training's own draws are untouched.
SETTLE_EPOCH = 2**31 - 1


def build_optimizer(model, t: TrainSettings):
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    params, lr = model.parameters(), t.learning_rate
    return {
        "adam": lambda: torch.optim.Adam(params, lr=lr),
        "adamax": lambda: torch.optim.Adamax(params, lr=lr),
        "adadelta": lambda: torch.optim.Adadelta(params, lr=lr),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=lr),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }[t.optimizer]()


def build_scheduler(optimizer, t: TrainSettings):
    """The learning-rate schedule, or None for a constant rate."""
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    if t.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=t.plateau_factor,
                                                          patience=t.plateau_patience)
    if t.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.step_every, gamma=t.step_factor)
    return None


def norm_layers(model) -> list:
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def train_mode(model, frozen_norm: bool = False) -> None:
    """`model` in training mode; `frozen_norm`: its BatchNorm layers stay in eval mode, normalising with the
    statistics they have and leaving them as they are (their scale and shift still learn)."""
    model.train()
    for layer in norm_layers(model) if frozen_norm else ():
        layer.eval()


def settle_batchnorm(model, dataset, batch_size: int) -> None:
    """Reset `model`'s BatchNorm statistics to the cumulative average over ``SETTLE_PATCHES`` items of `dataset`.

    No gradient, no weight change; the model's train/eval mode and the layers' momenta are restored.
    """
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    layers = norm_layers(model)
    # Batches of at least 2: a BatchNorm after global pooling cannot normalise a single value.
    batch = max(2, batch_size)
    # Patches are indexed past the dataset's length freely: each index seeds its own draw.
    batches = [[dataset[i + k][0] for k in range(batch)] for i in range(0, max(SETTLE_PATCHES, batch), batch)]
    device = next(model.parameters()).device
    was_training = model.training
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    try:
        with torch.no_grad():
            for x in batches:
                model(torch.stack(x).to(device))
    finally:
        for m, mom in zip(layers, momenta):
            m.momentum = mom
        model.train(was_training)


@dataclass
class Run:
    """Everything a stopped run needs to continue exactly where it was."""

    train: list
    val: list
    optimizer: object
    scheduler: object
    class_weights: object
    epochs: int
    epoch: int = 0  # epochs completed
    iteration: int = 0
    step: int = 0  # steps done in the current epoch
    batches: Iterator | None = None
    loss_sum: float = 0.0
    cm: np.ndarray | None = None
    epoch_seconds: float = 0.0
    in_validation: bool = False
    deadline: float | None = None
    history: list = field(default_factory=list)
    # One DataLoader for the whole run (its workers persist between epochs) and its epoch sampler.
    loader: object = None
    sampler: object = None
    scaler: object = None  # float16 loss scaling (accel.grad_scaler)
    stop_reason: str | None = None  # several processes: the reason they agreed on at the last check
    # The plan (engine.plan): the run's clock, whether a time budget sets the periods between validations,
    # whether the plan was made (after the first steps), the learning rate's progress (0-1) for a resume.
    clock: object = None
    timed: bool = False
    planned: bool = False
    lr_progress: float = 0.0
    spent: float = 0.0  # seconds of training and validation so far (a resumed time plan gets the rest)
    done: bool = False  # a time plan that ended: nothing to resume
    val_seconds: float = 0.0  # the last validation's
    # What each validation scores: a fixed sample of crops of ``val`` (or ``val`` itself), made once.
    val_sample: list | None = None
    # The best epoch so far: (score, -validation loss); a tie of the score goes to the lower loss.
    best_key: tuple = (float("-inf"), float("-inf"))


def class_weight_tensor(settings: Settings, sources, device):
    """The loss's class weights (None: unweighted), from the training sources or the settings."""
    import torch  # lazy: seconds to import, and napari-mia --help imports this module

    t, n = settings.train, settings.model.num_classes
    if t.class_weighting == "none":
        return None
    if t.class_weighting == "auto":
        w = auto_class_weights(class_frequencies(sources, n))
    else:
        if len(t.class_weights) != n:
            first = " (background first)" if rules(settings.model.task).has_background else ""
            raise SettingsError(f"Manual class weighting needs {n} weights{first}, got {len(t.class_weights)}.")
        w = np.asarray(t.class_weights, np.float32)
    return torch.as_tensor(w, dtype=torch.float32, device=device)
