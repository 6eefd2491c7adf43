"""Classification's files: a classes CSV (name,class) in, classes.csv with probabilities out."""

from __future__ import annotations

from ...engine.applications.base import write_csv
from ...engine.applications.classification import read_classes_csv, sources_from_classes
from ...engine.errors import MiaError
from ...engine.settings import ModelSettings
from .base import PredictionWriter, TargetFiles


class _ClassesWriter(PredictionWriter):
    """classes.csv: name, class, probability and the probability of each class, one row per image or frame."""

    def __init__(self, predictor, out):
        self.predictor, self.out = predictor, out
        self.names = predictor.settings.model.class_names
        self.rows: list[list] = []

    def add(self, f, image) -> None:
        found = self.predictor.classify(image, name=f.name)
        for i, (cls, probs) in enumerate(found):
            # A stack gets one row per frame: name[frame].
            self.rows.append([f.name if len(found) == 1 else f"{f.name}[{i}]", self.names[cls],
                              round(float(probs[cls]), 4), *(round(float(p), 4) for p in probs)])

    def finish(self) -> str:
        out = write_csv(self.out / "classes.csv", ["name", "class", "probability", *(f"p_{n}" for n in self.names)],
                        self.rows)
        return f"Wrote the classes of {len(self.rows)} image(s) to {out}"


class ClassificationFiles(TargetFiles):
    name = "classification"
    targets = "classes"
    missing_targets = ("Classification needs --classes CSV (columns name,class: each image's file name and its "
                       "class).")
    nothing_to_measure = "Classification: classes.csv already holds every image's class and probabilities."

    def read_targets(self, images, path):
        return read_classes_csv(path, images)

    def prepare_settings(self, settings, pairs, given_config: bool) -> None:
        """The model's classes: the CSV's, sorted, unless the config names them (then the CSV must use those)."""
        found = sorted({c for _, c in pairs})
        # A config that leaves class_names at the segmentation default names no categories.
        if given_config and settings.model.class_names != ModelSettings().class_names:
            unknown = [c for c in found if c not in settings.model.class_names]
            if unknown:
                raise MiaError(f"The classes CSV uses the class '{unknown[0]}', which is not among the --config's "
                               f"classes ({', '.join(settings.model.class_names)}).")
            return
        if len(found) < 2:
            raise MiaError(f"The classes CSV names only one class ('{found[0]}'): classification needs at least "
                           "two.")
        settings.model.class_names = found
        settings.validate()

    def sources(self, pairs, settings, read, notes, channel_axis=None):
        # One file at a time: only the resized image is kept.
        ids = {name: i for i, name in enumerate(settings.model.class_names)}
        sources = []
        for f, cls in pairs:
            if cls not in ids:
                raise MiaError(f"{f.name} has the class '{cls}', which the model does not know "
                               f"({', '.join(settings.model.class_names)}).")
            sources += sources_from_classes([(read(f), ids[cls], f.name)], settings)
        return sources

    def validation_report(self, trainer, pairs, read) -> list[str]:
        ev = trainer.evaluate()
        metric = trainer.settings.train.metric
        lines = [f"Validation accuracy: {ev['accuracy']:.4f} ({len(trainer.validation_sources)} images)  "
                 f"loss: {ev['loss']:.4f}"]
        if metric != "accuracy":
            lines.append(f"Validation {metric} (mean over the classes): {ev['metric']:.4f}")
        return lines

    def prediction_writer(self, predictor, out, post):
        return _ClassesWriter(predictor, out)
