"""What every application (segmentation, detection, classification, ...) tells the engine.

The trainer, the predictor, the data pipeline, the export and the command line
hold the machinery (patches, tiling, optimisation, packages, files); an
``Application`` says what the targets are and what the network's output means.
Each method names its caller; docs/adding-an-application.md walks through them.

Instances hold no state: one per application, shared (see ``applications.get``).
Defaults below are those of the applications that learn a map per pixel from a
label image whose value is a class (segmentation in classes mode, detection).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data import PatchDataset, validation_crops, validation_patches
from ..errors import DataError, MiaError, SettingsError
from ..evaluate import mean_scores
from ..images import image_frames, is_stack
from ..metrics import score
from ..models import build_smp_model
from ..samples import Sample, SampleSource, array_sources
from ..settings import ModelSettings, Settings
from ..targets import IGNORE
from ..tasks import TaskRules

# More values than this in 'classes' mode almost surely are instance ids.
MAX_CLASSES = 50


class Application:
    """One application: its targets, its network head, its loss and score, its predictions, its files."""

    #: The name in settings (``model.task``), on the command line (``--task``) and in model files.
    name: str = ""
    #: What the settings know of the task (``engine.tasks``): its losses, output count and refused choices.
    rules: TaskRules = TaskRules()
    #: The metric the command line switches to when a --config was written for another application.
    default_metric: str | None = None
    #: The network sees each image whole (resized to the patch size) and gives one vector per image:
    #: no down scaling, no tiles, no spatial output axes in an exported package.
    whole_image: bool = False
    #: Prediction estimates each image's object size and rescales it to the model's unless told otherwise
    #: (``default_diameter``): where the objects' size can be estimated from an image without labels.
    auto_diameter: bool = False
    #: Augmentations (``AugmentSettings`` probabilities) this application's targets cannot follow.
    augment_skip: tuple[str, ...] = ()
    #: What a result is (``Predictor.result``), in words, for docstrings and messages.
    result_type: str = ""

    # -- settings (engine.tasks) ---------------------------------------------------------------------
    @property
    def losses(self) -> tuple[str, ...]:
        """Losses that fit; the first choice of a new model is ``default_loss``."""
        return self.rules.losses

    @property
    def default_loss(self) -> str:
        return self.rules.default_loss

    @property
    def has_background(self) -> bool:
        """``class_names[0]`` is background (not scored, not an output of its own where the rules say so)."""
        return self.rules.has_background

    # -- targets (engine.samples, Trainer.train) --------------------------------------------------------------
    def sources(self, items: Sequence[tuple], settings: Settings, rgb: Sequence[bool | None] | None = None,
                regions: Sequence[np.ndarray | None] | None = None) -> list[SampleSource]:
        """Array items (the dock's, Python's) -> training sources (``task_data.sources_for_task``). `regions`: per
        item, its reviewed regions (nonzero = fully labelled) or None (``samples.supervision``)."""
        return array_sources(self, [it[:4] for it in items], settings, rgb=rgb, regions=regions)

    def make_sample(self, frame: np.ndarray, labels: np.ndarray, settings: Settings, name: str) -> Sample:
        """One labelled (H, W, C) frame and its (H, W) labels -> a prepared Sample (``samples.array_sources``)."""
        raise NotImplementedError

    def mask_unknown(self, target: np.ndarray, known: np.ndarray, settings: Settings) -> np.ndarray:
        """A prepared target with nothing learned where the labels are not `known` (sparse labels, reviewed
        regions; ``samples.make_sample``): IGNORE there. `known` has the target's shape."""


        return np.where(known, target, IGNORE).astype(target.dtype)

    def background_ring(self, settings: Settings) -> float:
        """Sparse labels: the ring of background taken around each painted object, as a share of its diameter
        (``samples.background_ring``); 0: none (the labels' painted values need not be whole objects)."""
        return 0.0

    def learn_unknown(self, sample: Sample, settings: Settings) -> None:
        """Teach something where the labels are not known (``sample.known``), in place; by default nothing
        (``mask_unknown`` left IGNORE there)."""

    def label_mode_guess(self, labels: np.ndarray, settings: Settings) -> str | None:
        """What raw labels look like (``images.guess_label_mode``), kept for ``check_classes``; None: no check."""
        return None

    def check_classes(self, settings: Settings, sources: Sequence[SampleSource], new_model: bool) -> None:
        """Raise DataError if the targets do not fit the classes; a new model may take its classes from the data.

        Called by ``Trainer.train`` before the model is built (``new_model``: none exists yet).
        """
        m = settings.model
        top = max(s.max_label for s in sources)
        if top < len(m.class_names):
            return
        if new_model:
            if top > MAX_CLASSES:
                raise DataError(
                    f"The labels hold values up to {top}. In 'classes' label mode every value is a class; if each "
                    "object has its own value (instance labels), choose the label mode 'instances'."
                )
            # Classes the user has not named, taken from labels that look like one id per object: almost
            # surely instance labels. Naming the classes first (class_names) says they are intended.
            guesses = [s.label_mode_guess for s in sources if s.label_mode_guess is not None]
            if guesses and guesses.count("instances") * 2 > len(guesses):
                name = next(s.name for s in sources if s.label_mode_guess == "instances")
                raise DataError(
                    f"The labels of '{name}' look like one value per object ({top} values, each a separate "
                    f"blob), not classes: in 'classes' label mode this would train a model of {top + 1} "
                    "classes. Choose the label mode 'instances' to learn to find and separate the objects."
                )
            # A new model takes its classes from the data.
            m.class_names = m.class_names + [f"class {k}" for k in range(len(m.class_names), top + 1)]
            return
        n = len(m.class_names)
        raise DataError(
            f"The labels contain class {top}, but the model knows {n} classes (0-{n - 1}). "
            "Relabel, or press Reset Model to train a new model with more classes."
        )

    # -- training (engine.trainer) --------------------------------------------------------------------
    def dataset(self, sources: list[SampleSource], settings: Settings, augment=None, epoch_seed: int = 0):
        """The training items of one epoch, map-style for a DataLoader: (image, target, weight) tensors."""

        return PatchDataset(sources, settings, augment, epoch_seed=epoch_seed)

    def validation_sample(self, sources: list[SampleSource], settings: Settings, max_items: int,
                          seed: int) -> list:
        """What every validation of a run scores (``Trainer``): a fixed sample of at most `max_items` crops of
        the validation images (``data.validation_crops``), so that validation costs a bounded share of the run."""

        return validation_crops(sources, settings, max_items, seed)

    def validation_items(self, sources: list[SampleSource], settings: Settings):
        """What the validation loop scores (``task_data.validation_items``): an iterable of tensor triples."""

        return validation_patches(sources, settings)

    def head(self, settings: Settings):
        """The loss head: ``n_cm`` (confusion matrix size) and ``(out, y, w, class_weights) -> (loss, pred, true)``
        with pred and true as class ids for the confusion matrix (``Trainer._step``, ``Trainer._validate``)."""
        raise NotImplementedError

    def score(self, cm: np.ndarray, settings: Settings) -> float:
        """The training metric of a confusion matrix (``Trainer._score``): the curves and 'best'."""

        return score(cm, settings.train.metric, skip_background=self.has_background)

    def validation_objects(self, predictor, sources: list[SampleSource], settings: Settings,
                           stop: Callable[[], object] = lambda: None) -> float | str | None:
        """An object-level score of the validation images, averaged per image, that picks the best epoch
        (``Trainer._loop``, ``EpochEnd.val_objects``); None: the pixel metric does. "stopped" if `stop()`
        said so meanwhile. `predictor` predicts the live weights; its ``maps`` takes prepared images."""
        return None

    def out_of_memory_message(self, settings: Settings) -> str:
        """What to change when a training step runs out of memory (``Trainer._step``)."""
        d = settings.data
        return (f"Out of memory during a training step (batch size {settings.train.batch_size}, "
                f"patch {d.patch_width}x{d.patch_height}). Lower the batch size or the patch size, or use down "
                "scaling. The model's weights are kept.")

    def calibrate(self, model, sources: list[SampleSource]) -> float:
        """Set a decoding threshold of `model` (a ``TrainedModel``; None: none trained yet) from its run's training
        `sources` (``Trainer.calibrate_detection``)."""
        raise SettingsError("Calibration needs a detection model that has been trained.")

    # -- the network (engine.models) ------------------------------------------------------------------
    def build_model(self, ms: ModelSettings, pretrained: bool):
        """The torch network, ImageNet-started if `pretrained` (``models.build_model``)."""

        return build_smp_model(ms, pretrained)

    # -- object scale (engine.scale, Predictor's diameter) -----------------------------------------------
    def object_diameters(self, labels: np.ndarray, settings: Settings) -> np.ndarray | None:
        """The diameters of the objects in raw `labels`, in the network's pixels (``data`` sources); None: this
        application's targets have no objects to measure. Their median is the model's ``object_diameter``."""
        return None

    def default_diameter(self, settings: Settings) -> str | None:
        """What prediction takes as the objects' diameter when none is given: "auto" where the model knows its
        objects' size and their size can be estimated; None (the model's own scale) otherwise."""
        return "auto" if self.auto_diameter and not self.whole_image and self.model_diameter(settings) else None

    def model_diameter(self, settings: Settings) -> float | None:
        """The objects' typical diameter the model was trained on, in the network's pixels (``Predictor``)."""
        return settings.data.object_diameter

    # -- prediction (engine.predictor) --------------------------------------------------------------
    def activation(self, out):
        """Network output (torch) -> what the predictor blends and decodes (``Predictor.forward``)."""
        import torch  # lazy: torch (the dock imports this before training)

        return torch.softmax(out, 1)

    def check_maps(self, settings: Settings) -> None:
        """Raise SettingsError if this application's model gives no per-pixel map (``Predictor.probabilities``)."""

    def decode(self, probs: np.ndarray, settings: Settings, post) -> np.ndarray:
        """(classes, H, W) probabilities -> label image (``Predictor.decode``), after the ``PostProcess`` `post`."""
        raise SettingsError(f"A {self.name} model gives {self.result_type}, not a label image.")

    def detect(self, predictor, frame: np.ndarray, threshold: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(H, W[, C]) image -> (N, 4) y, x, class, score of the objects found (``Predictor.detect``)."""
        raise SettingsError(f"A {self.name} model gives {self.result_type}, not points.")

    def classify(self, predictor, image: np.ndarray, rgb: bool | None = None,
                 progress: Callable[[int, int], None] | None = None, name: str = "image") -> list:
        """One (class index, probabilities over the classes) per frame (``Predictor.classify``)."""
        raise SettingsError(f"A {self.name} model gives {self.result_type}, not a class per image.")

    def result(self, predictor, image: np.ndarray, rgb: bool | None = None, post=None,
               progress: Callable[[int, int], None] | None = None, name: str = "image"):
        """What a prediction gives for an image or a stack (``Predictor.result``; the dock's layers, Preview)."""
        raise NotImplementedError

    # -- training job folders (engine.job) ------------------------------------------------------------
    def write_job_targets(self, items: Sequence[tuple], folder: Path, settings: Settings, names) -> dict[str, str]:
        """Write the dock's items (``training_items``: copies with names, reviewed regions) into `folder` in the
        forms ``train`` reads: the images in images/ (TIFF, channels last, one file per labelled frame) and the
        targets as ``train`` reads them, reviewed regions in regions/ (``engine.job``). `names`: a
        ``job.FileNames``. Returns {option without '--': path relative to `folder`}, e.g. {"images": "images",
        "masks": "masks"}."""
        raise NotImplementedError

    def _job_frames(self, item: tuple, settings: Settings) -> tuple[np.ndarray, bool]:
        """An item's image as (N, H, W, C) frames, and whether it is a stack (its files then name the frame)."""


        image, rgb = np.asarray(item[0]), item[4] if len(item) > 4 else None
        return image_frames(image, settings.model.channels, item[2], rgb=rgb), \
            is_stack(image, settings.model.channels, rgb)

    # -- evaluation (workflows.evaluation, the dock's Evaluate) ---------------------------------------
    #: The per-image scores ``evaluate`` prints, in this order (keys of ``evaluate_item``'s dict).
    evaluate_columns: tuple[str, ...] = ()
    #: The scores a round's test result is told by, (column, words); the last one ranks rounds.
    headline_scores: tuple[tuple[str, str], ...] = ()

    def evaluate_item(self, predictor, image: np.ndarray, target, settings: Settings,
                      tolerance: float | None = None) -> dict:
        """Score the prediction of one image against its target (as ``workflows.formats`` reads it, or an
        array): a dict of numbers, ``evaluate_columns`` first."""
        raise NotImplementedError

    def evaluate_summary(self, rows: list[dict], settings: Settings) -> list[str]:
        """Lines after the per-image table: the means over images (each image weighs the same)."""

        means = mean_scores(rows)
        return [f"Mean over {len(rows)} image(s): " + ", ".join(f"{k} {means[k]:.3f}" for k in self.evaluate_columns
                                                                 if k in means)]


def write_csv(out: Path, header: list, rows: list) -> Path:
    """A CSV of predictions (points, classes), with a MiaError that names the file when it cannot be written."""

    try:
        with out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    except OSError as e:
        raise MiaError(f"Cannot write {out}: {e.strerror}.") from e
    return out
