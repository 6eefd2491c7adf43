"""Object detection from points, as MIA does it: one point per object in, a map with a bump per object
learnt, the map's peaks out. The maths (dots, heatmaps, peaks) is in ``applications.heatmaps``."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..evaluate import detection_scores
from ..images import finite_frames, is_stack, prepare_image
from ..job_files import image_file_array, write_tiff
from ..samples import Sample, array_sources
from ..targets import IGNORE
from ..tasks import DetectionRules
from .base import Application, write_csv
from .heatmaps import (
    blob_classes, calibrate_threshold, dots_to_points, find_points, points_to_dots, rescale_dots,
    sigma_of, target_heatmap,
)


class _DetectionHead:
    """Detection: the loss compares heatmaps; bumps above half height are scored as classes."""

    def __init__(self, settings):
        from ..losses import REGRESSION_LOSSES as FUNCTIONS  # lazy: torch (the dock imports this before training)

        self.loss_fn = FUNCTIONS[settings.train.loss]
        self.n_out = settings.model.num_classes
        self.n_cm = self.n_out + 1
        d = settings.data
        # object_size is in the image's pixels; the network sees the down-scaled image.
        self.sigma, self.intensity = sigma_of(d.object_size * d.downscale), d.object_intensity

    def __call__(self, out, y, w, class_weights):
        import torch  # lazy: torch (the dock imports this before training)


        heat, valid = target_heatmap(y, self.n_out, self.sigma, self.intensity)
        truth = torch.where(valid, blob_classes(heat, self.intensity), torch.full_like(y, IGNORE))
        return self.loss_fn(out, heat, valid), blob_classes(out.detach().float(), self.intensity), truth


def sources_from_points(pairs, settings, regions=None) -> list:
    """Detection: (image, points[, name]) with (N, 2) y, x or (N, 3) y, x, class points -> sources.

    `regions`: per pair, the reviewed regions (nonzero: every object there has its point) or None; outside
    them nothing is learned."""

    out = []
    for k, pair in enumerate(pairs):
        image, points = np.asarray(pair[0]), pair[1]
        name = pair[2] if len(pair) > 2 else f"image {k + 1}"
        rgb = image.ndim == 3 and image.shape[-1] == settings.model.channels and settings.model.channels > 1
        if image.ndim != (3 if rgb else 2):
            raise DataError(f"'{name}': detection takes 2D images (one set of points per image).")
        dots = points_to_dots(points, image.shape[:2], f"{name} points")
        region = None if regions is None else regions[k]
        # Points are never sparse labels: a region alone says where the points are complete.
        out += array_sources(Detection(), [(image, dots, name, f"{name} points")], settings, rgb=[rgb],
                             regions=[region], sparse=False)
    return out


def detect(predictor, frame: np.ndarray, threshold: float | None = None, progress=None) -> np.ndarray:
    """(H, W[, C]) image -> (N, 4) y, x, class, score of the objects found (``Predictor.detect``)."""

    frame = frame[..., None] if frame.ndim == 2 else frame
    if progress is not None:
        predictor.start_progress(progress, frame[None])
    d = predictor.settings.data
    threshold = d.detection_threshold if threshold is None else threshold
    heat = predictor.probabilities(frame)
    # With an object diameter given, the image's objects are that big in its own pixels (the maps are
    # scaled back to them); otherwise the training's object size holds.
    size = d.object_size if predictor.last_diameter is None else predictor.last_diameter
    return find_points(heat, size, d.object_intensity, threshold)


class Detection(Application):
    name = "detection"
    rules = DetectionRules()
    result_type = "(N, 4) y, x, class, score of the objects; (N, 5) frame, y, x, class, score for a stack"
    # A zoom resamples the one-pixel dots of the targets: zooming out loses some, zooming in doubles them.
    augment_skip = ("zoom",)

    def model_diameter(self, settings):
        # The bumps are drawn this wide on the network's (down-scaled) targets.
        return settings.data.object_size

    # -- targets --------------------------------------------------------------------------------
    def sources(self, items, settings, rgb=None, regions=None):
        return sources_from_points([it[:3] for it in items], settings, regions=regions)

    def make_sample(self, frame, labels, settings, name):
        image = prepare_image(frame, settings)
        # Labels are dots: moved, not resampled, when down scaled.
        return Sample(image, rescale_dots(labels.astype(np.uint8), image.shape[:2]), None, name)

    # -- training -------------------------------------------------------------------------------
    def head(self, settings):
        return _DetectionHead(settings)

    def calibrate(self, model, sources) -> float:
        if model is None:
            return super().calibrate(model, sources)
        pairs = []
        # Images with reviewed regions would count the objects found outside them as false: only whole
        # images calibrate, unless there are none.
        whole = [src for src in sources if getattr(src, "background", None) is None]
        for src in whole or sources:
            sample = src.get()
            # The sample is already normalised and down-scaled: predict it as such, in its own pixels.
            pairs.append((sample.image, dots_to_points(sample.target)))
        s = model.settings
        scaled = s.copy()
        scaled.data.normalization, scaled.data.downscale = "none", 1.0
        scaled.data.object_size = s.data.object_size * s.data.downscale
        thr = calibrate_threshold(model.with_settings(scaled).predictor(), pairs,
                                  scaled.data.object_size / 2)
        s.data.detection_threshold = thr
        return thr

    # -- prediction ----------------------------------------------------------------------------
    def activation(self, out):
        import torch  # lazy: torch (the dock imports this before training)

        return torch.relu(out)  # heatmaps have no negative heights

    def detect(self, predictor, frame, threshold=None, progress=None):
        return detect(predictor, frame, threshold, progress)

    def result(self, predictor, image, rgb=None, post=None, progress=None, name="image"):
        channels = predictor.settings.model.channels
        frames = finite_frames(image, channels, rgb, name)
        predictor.start_progress(progress, frames)
        found = [predictor.detect(f) for f in frames]
        if not is_stack(image, channels, rgb):
            return found[0]
        return np.concatenate([np.c_[np.full(len(p), i), p] for i, p in enumerate(found)]).reshape(-1, 5)

    # -- evaluation, training job folders -------------------------------------------------------
    evaluate_columns = ("point_f1", "precision", "recall", "count_error", "true_objects", "predicted_objects")
    headline_scores = (("point_f1", "point F1"),)

    def evaluate_item(self, predictor, image, target, settings, tolerance=None):
        found = predictor.detect(image)
        # Within half an object's diameter (in the image's pixels) a point found is the object's.
        size = predictor.last_diameter or settings.data.object_size
        return detection_scores(found[:, :2], np.asarray(target)[:, :2], tolerance or size / 2)

    def write_job_targets(self, items, folder, settings, names):
        out, rows = {"images": "images", "points": "points.csv"}, []
        for item in items:
            frames, stack = self._job_frames(item, settings)
            if stack:
                raise DataError(f"'{item[2]}' is a stack: detection trains on 2D images.")
            points = np.asarray(item[1], float)
            if not len(points):
                continue  # points.csv cannot name an image without points: the command line would not read it
            stem = names.stem(item[2])
            write_tiff(folder / "images" / f"{stem}.tif", image_file_array(frames[0]))
            cls = points[:, 2] if points.shape[1] > 2 else np.ones(len(points))
            # The CSV's name is the image's file (read_points_csv); pixels keep their fractions.
            rows += [(f"{stem}.tif", round(float(y), 3), round(float(x), 3), int(c))
                     for (y, x), c in zip(points[:, :2], cls)]
            region = item[5] if len(item) > 5 else None
            if region is not None:
                write_tiff(folder / "regions" / f"{stem}.tif", (np.asarray(region) > 0).astype(np.uint8),
                           compress=True)
                out["regions"] = "regions"
        if not rows:
            raise DataError("The training set has no points yet: put one point on each object first.")
        write_csv(folder / "points.csv", ["name", "y", "x", "class"], rows)
        return out

