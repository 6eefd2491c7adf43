"""Image classification: one class for each image, or each frame of a stack.

The class belongs to the whole image, so the network (``bioimageio_network.Classifier``: an encoder,
global pooling and a linear layer) sees all of it, resized to the patch size; down scaling, tiles and
the label mode do not apply. The class list is the user's (it names the categories) and has no background.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, SettingsError
from ..evaluate import classification_scores
from ..images import finite_frames, image_frames, is_stack, list_images, normalize, resize_to
from ..job_files import image_file_array, write_tiff
from ..models import build_classifier
from ..samples import Sample, SampleSource
from ..settings import Settings
from ..tasks import ClassificationRules
from .base import Application, write_csv


def prepare_whole(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """Classification: (H, W, C) raw frame -> normalised float32 (patch_height, patch_width, C).

    The class belongs to the whole image, so the network sees all of it,
    resized to its input size (down scaling does not apply).
    """
    d = settings.data
    return resize_to(normalize(frame, d.normalization), (d.patch_height, d.patch_width), order=1)


def _class_id(value, n: int, name: str) -> int | None:
    """A class id in 0..n-1, or None for an unlabelled frame (-1 or None)."""
    if value is None:
        return None
    # 2.0 from a table of floats is a class; 0.5, True or "a" is not.
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating))
                                                     and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole:
        raise DataError(f"'{name}': the class must be a whole number (0 to {n - 1}, or -1 for no class), "
                        f"got {value!r}.")
    value = int(value)
    if value == -1:
        return None
    if not 0 <= value < n:
        raise DataError(f"'{name}' has class {value}, but there are {n} classes (0 to {n - 1}). "
                        "Add the class to the class list, or correct the image's class.")
    return value


def sources_from_classes(items: Sequence[tuple], settings: Settings,
                         rgb: Sequence[bool | None] | None = None) -> list:
    """Classification: (image, class ids[, name]) -> one source per labelled image or frame.

    The class ids are an int for a 2D (or colour) image, or one entry per
    frame for a stack; -1 or None leaves a frame out. Each source is the
    prepared image only (small), never the raw one.
    """
    n, channels = settings.model.num_classes, settings.model.channels

    sources = []
    for k, item in enumerate(items):
        image, ids = item[0], item[1]
        name = item[2] if len(item) > 2 else f"image {k + 1}"
        layer_rgb = None if rgb is None else rgb[k]
        frames = image_frames(image, channels, name, rgb=layer_rgb)
        stack = is_stack(image, channels, layer_rgb)
        if not stack:
            ids = [ids]
        elif np.ndim(ids) == 0:
            raise DataError(f"'{name}' is a stack of {len(frames)} frames: give one class per frame "
                            "(-1 for a frame with no class).")
        ids = list(ids)
        if len(ids) != len(frames):
            raise DataError(f"'{name}' has {len(frames)} frame{'s' if len(frames) != 1 else ''} but "
                            f"{len(ids)} classes were given: give one class per frame (-1 for none).")
        for i, (frame, value) in enumerate(zip(frames, ids)):
            fname = f"{name}[{i}]" if stack else name
            cid = _class_id(value, n, fname)
            if cid is None:
                continue
            sample = Sample(prepare_whole(frame, settings), np.array(cid, np.uint8), None, fname)
            sources.append(SampleSource(lambda sample=sample: sample, fname, sample.image.shape[:2], keep=True,
                                        max_label=cid))
    if not sources:
        raise DataError("No image has a class yet: give a class to at least two images (or frames) before "
                        "training.")
    return sources


def read_classes_csv(csv_path, images_dir) -> list[tuple[Path, str]]:
    """A classes CSV (name,class) and its images folder -> [(image path, class name)], sorted by name.

    Images the CSV does not name are skipped with a warning; a name with no
    image is an error.
    """

    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise DataError(f"Cannot read the classes file {csv_path}: {e.strerror}.") from e
    if not rows or not {"name", "class"} <= set(rows[0]):
        raise DataError(f"{csv_path.name} needs the columns name and class, one row per image "
                        "(name: the image's file name; class: its class, e.g. treated).")
    by_name: dict[str, str] = {}
    for r in rows:
        name, cls = (r["name"] or "").strip(), (r["class"] or "").strip()
        if not name or not cls:
            raise DataError(f"{csv_path.name}: every row needs a name and a class; one has "
                            f"name '{name}' and class '{cls}'.")
        if by_name.setdefault(name, cls) != cls:
            raise DataError(f"{csv_path.name} gives '{name}' two classes ('{by_name[name]}' and '{cls}').")
    files = {f.name: f for f in list_images(images_dir)}
    missing = sorted(set(by_name) - set(files))
    if missing:
        raise DataError(f"{csv_path.name} names {len(missing)} image(s) not in {images_dir}, e.g. '{missing[0]}'.")
    skipped = sorted(set(files) - set(by_name))
    if skipped:

        warnings.warn(f"{len(skipped)} image(s) have no class in {csv_path.name} and are skipped, e.g. "
                      f"{skipped[0]}.", stacklevel=2)
    return [(files[n], c) for n, c in sorted(by_name.items())]



class ClassificationDataset:
    """Whole training images, augmented, for classification (map-style for DataLoader).

    ``len`` = images per epoch: every image once (rounded up to whole
    batches), or ``steps_per_epoch`` batches. Each pass over the images has an
    order of its own, seeded, so a run can be repeated exactly.
    """

    def __init__(self, sources: list, settings: Settings, augment=None, epoch_seed: int = 0):
        self.sources, self.settings, self.augment = sources, settings, augment
        self.epoch_seed = epoch_seed
        t = settings.train
        if t.steps_per_epoch > 0:
            self.length = t.steps_per_epoch * t.batch_size
        else:
            self.length = max(t.batch_size, math.ceil(len(sources) / t.batch_size) * t.batch_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        t, n = self.settings.train, len(self.sources)
        order = np.random.default_rng((t.seed, self.epoch_seed, i // n)).permutation(n)
        sample = self.sources[order[i % n]].get()
        img = sample.image
        if self.augment is not None:
            rng = np.random.default_rng((t.seed, self.epoch_seed, n, i))
            # The pipeline is shared with segmentation and moves a mask along: give it a blank one.
            h, w = img.shape[:2]
            img, _, _ = self.augment(img, np.zeros((h, w), np.uint8), np.ones((h, w), np.float32), rng)
        return _class_tensors(img, sample.target)


def _class_tensors(img, target):
    import torch  # lazy: torch (the dock imports this before training)

    # The weight is a placeholder: the trainer's batches are always (image, target, weight).
    return (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)),
            torch.tensor(int(target), dtype=torch.int64), torch.tensor(1.0, dtype=torch.float32))




class _ClassificationHead:
    """Classification: the segmentation losses, each image's logits seen as a one-pixel image."""

    def __init__(self, settings):
        from ..losses import LOSSES  # lazy: torch (the dock imports this before training)

        self.loss_fn = LOSSES[settings.train.loss]
        self.n_cm = settings.model.num_classes

    def __call__(self, out, y, w, class_weights):
        """(N, classes) logits, (N,) class ids -> (loss, predicted class ids, target class ids)."""
        loss = self.loss_fn(out[:, :, None, None], y[:, None, None], None if w is None else w[:, None, None],
                            class_weights)
        return loss, out.argmax(1), y


def classify(predictor, image: np.ndarray, rgb: bool | None = None, progress=None,
             name: str = "image") -> list[tuple[int, np.ndarray]]:
    """One (class index, probabilities over the classes) per frame (``Predictor.classify``).

    A 2D or colour image gives a one-element list. Frames are prepared as in
    training (normalised, resized to the input size) and predicted in batches.
    """

    s = predictor.settings
    if s.model.task != Classification.name:
        raise SettingsError(f"This model does not classify images: it was trained for {s.model.task}.")
    frames = finite_frames(image, s.model.channels, rgb, name)
    predictor.start_progress(progress, frames, per_frame_tiles=False)
    predictor.model.eval()
    out = []
    for i in range(0, len(frames), predictor.batch_size):
        chunk = frames[i:i + predictor.batch_size]
        batch = np.stack([prepare_whole(f, s).transpose(2, 0, 1) for f in chunk])
        out += [(int(p.argmax()), p) for p in predictor.forward(np.ascontiguousarray(batch))]
        predictor.tick(len(chunk))
    return out


class Classification(Application):
    name = "classification"
    rules = ClassificationRules()
    # Images are scored by the share classified right.
    default_metric = "accuracy"
    whole_image = True
    result_type = "[(class id, probabilities)], one per frame"

    # -- targets --------------------------------------------------------------------------------
    def sources(self, items, settings, rgb=None, regions=None):
        if regions is not None and any(r is not None for r in regions):
            raise DataError("Classification learns one class per whole image: reviewed regions do not apply.")
        return sources_from_classes([it[:3] for it in items], settings, rgb=rgb)

    def check_classes(self, settings, sources, new_model: bool) -> None:
        m = settings.model
        top = max(s.max_label for s in sources)
        # The class list is the user's (it names the categories): never extended from the data.
        if top >= len(m.class_names):
            n = len(m.class_names)
            raise DataError(f"An image has class {top}, but there are {n} classes (0-{n - 1}: "
                            f"{', '.join(m.class_names)}). Add the class to the class list, or correct the "
                            "image's class.")

    # -- training -------------------------------------------------------------------------------
    def dataset(self, sources, settings, augment=None, epoch_seed: int = 0):
        return ClassificationDataset(sources, settings, augment, epoch_seed=epoch_seed)

    def validation_sample(self, sources, settings, max_items, seed):
        # One small resized image each: whole images are cheap to score, and a crop would change the class.
        return list(sources)

    def validation_items(self, sources, settings):
        return (_class_tensors(sample.image, sample.target) for sample in (s.get() for s in sources))

    def head(self, settings):
        return _ClassificationHead(settings)

    def out_of_memory_message(self, settings) -> str:
        # No down scaling: images are resized to the input size.
        d = settings.data
        return (f"Out of memory during a training step (batch size {settings.train.batch_size}, "
                f"input {d.patch_width}x{d.patch_height}). Lower the batch size or the input size. "
                "The model's weights are kept.")

    def build_model(self, ms, pretrained: bool):
        return build_classifier(ms, pretrained)

    # -- prediction ----------------------------------------------------------------------------
    def check_maps(self, settings) -> None:
        raise SettingsError("This is a classification model: it gives one class to each image, not a label "
                            "image. Use classify.")

    def classify(self, predictor, image, rgb=None, progress=None, name="image"):
        return classify(predictor, image, rgb, progress, name)

    def result(self, predictor, image, rgb=None, post=None, progress=None, name="image"):
        return predictor.classify(image, rgb=rgb, progress=progress, name=name)

    # -- training job folders -------------------------------------------------------------------
    def write_job_targets(self, items, folder, settings, names):
        class_names, rows = settings.model.class_names, []
        for item in items:
            frames, stack = self._job_frames(item, settings)
            ids = list(item[1]) if stack else [item[1]]
            for i, (frame, value) in enumerate(zip(frames, ids)):
                cid = _class_id(value, len(class_names), item[2])
                if cid is None:
                    continue  # a frame without a class does not train
                # The command line takes one class per file: a stack's frames become files of their own.
                stem = names.stem(item[2], i if stack else None)
                write_tiff(folder / "images" / f"{stem}.tif", image_file_array(frame))
                rows.append((f"{stem}.tif", class_names[cid]))
        if not rows:
            raise DataError("No image has a class yet: give a class to at least two images (or frames) first.")
        write_csv(folder / "classes.csv", ["name", "class"], rows)
        return {"images": "images", "classes": "classes.csv"}

    evaluate_columns = ("correct", "probability")
    headline_scores = (("correct", "accuracy"),)

    def evaluate_item(self, predictor, image, target, settings, tolerance=None):
        names = settings.model.class_names
        truth = target if isinstance(target, (int, np.integer)) else (names.index(target) if target in names else None)
        if truth is None:
            raise DataError(f"The class '{target}' is not one of the model's classes ({', '.join(names)}).")
        found = predictor.classify(image)
        if len(found) != 1:
            raise DataError("Evaluation takes one image per file, not a stack.")
        cls, probs = found[0]
        return {"correct": int(cls == truth), "probability": float(probs[cls]), "true_class": names[truth],
                "predicted_class": names[cls], "_pair": (truth, cls)}

    def evaluate_summary(self, rows, settings):
        names = settings.model.class_names
        truth, pred = zip(*(r["_pair"] for r in rows)) if rows else ((), ())
        s = classification_scores(pred, truth, len(names))
        width = max(len(n) for n in names)
        lines = [f"Accuracy over {len(rows)} image(s): {s['accuracy']:.3f}",
                 "Confusion (rows: true class, columns: predicted):",
                 " " * (width + 2) + "  ".join(f"{n:>{max(len(n), 4)}}" for n in names)]
        for n, row in zip(names, s["confusion"]):
            lines.append(f"{n:>{width}}  " + "  ".join(f"{v:>{max(len(m), 4)}}" for m, v in zip(names, row)))
        return lines

