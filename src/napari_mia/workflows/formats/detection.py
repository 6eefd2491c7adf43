"""Detection's files: a points CSV (name,y,x[,class]) in, points.csv with scores out."""

from __future__ import annotations

from ...engine.applications.base import write_csv
from ...engine.applications.detection import sources_from_points
from ...engine.applications.heatmaps import read_points_csv, score_detection
from ...engine.errors import MiaError
from ...engine.images import read_image
from .base import PredictionWriter, TargetFiles


class _PointsWriter(PredictionWriter):
    """points.csv: one row per object found (name, y, x, class, score)."""

    def __init__(self, predictor, out):
        self.predictor, self.out = predictor, out
        self.rows: list[tuple] = []
        self.done: list[str] = []

    def add(self, f, image) -> None:
        found = self.predictor.result(image, name=f.name)
        if found.shape[1] != 4:
            raise MiaError(f"{f.name} is a stack: detection predicts 2D images. Save one file per frame.")
        self.rows.extend((f.name, int(y), int(x), int(cls), round(float(score), 4)) for y, x, cls, score in found)
        self.done.append(f.name)

    def finish(self) -> str:
        out = write_csv(self.out / "points.csv", ["name", "y", "x", "class", "score"], self.rows)
        return f"Wrote {len(self.rows)} point(s) of {len(self.done)} image(s) to {out}"


class DetectionFiles(TargetFiles):
    name = "detection"
    targets = "points"
    missing_targets = "Detection needs --points CSV (columns name,y,x[,class])."
    measured = "points"

    def read_targets(self, images, path):
        return read_points_csv(path, images)

    def sources(self, pairs, settings, read, notes, channel_axis=None):
        # (image file, points[, reviewed regions file or None]), see training_inputs.with_regions
        regions = [read_image(p[2]) if len(p) > 2 and p[2] is not None else None for p in pairs]
        return sources_from_points([(read(p[0]), p[1], p[0].name) for p in pairs], settings, regions=regions)

    def after_training(self, trainer) -> list[str]:
        thr = trainer.calibrate_detection()
        return [f"Detection threshold set from the training images: peaks above {thr:.2f} x the object intensity."]

    def _validation_what(self, settings) -> str:
        return " (objects' bumps)"

    def validation_report(self, trainer, pairs, read) -> list[str]:
        lines = super().validation_report(trainer, pairs, read)
        val_names = {src.name for src in trainer.validation_sources}
        r = score_detection(trainer.predictor(), [(read(f), pts) for f, pts, *_ in pairs if f.name in val_names],
                            tolerance=6)
        lines.append(f"Validation counts: mean absolute error {r['count_mae']:.1f} objects "
                     f"({r['count_mae_percent']:.1f}% of {r['mean_count']:.0f} per image); points F1 {r['f1']:.3f} "
                     f"(within 6 px; {r['tp']} found, {r['fp']} extra, {r['fn']} missed)")
        return lines

    def prediction_writer(self, predictor, out, post):
        return _PointsWriter(predictor, out)
