"""Object detection in the dock: Points layers in (one point per object, an optional 'class' feature),
'<image> detections' Points with their class and score out."""

from __future__ import annotations

import numpy as np

from ...engine.errors import DataError
from ...engine.evaluate import detection_scores
from .._layers import is_kind
from .base import DockApplication


class Detection(DockApplication):
    task = "detection"
    title = "Object detection"
    tooltip = "What the model learns: where the objects are, from a Points layer with one point per object."
    target_kind = "Points"
    target_tooltip = ("The points put on that image, one per object (a 'class' feature, if any, gives each "
                      "point's class).")
    add_tooltip = "Add this image with its points to the training set."
    predict_tooltip = "The image to predict (a new points layer appears)."
    add_prediction_tooltip = "After correcting '<image> detections' (add, move or delete points), train on it too."
    empty_message = "Add at least one image with its points to the training set first."
    shows = ("labels_combo", "regions_combo", "pair_list", "pair_buttons", "object_size", "object_intensity", "classes_label",
             "architecture", "diameter_row", "diameter_auto", "evaluate_row")
    lends = ("points_of",)

    def settings(self) -> dict:
        return {"label_mode": "classes"}

    # -- training set ---------------------------------------------------------------------
    def check_target(self, image, points) -> None:
        if not is_kind(points, "Points"):
            raise DataError(f"'{points.name}' is not a Points layer: detection learns from points, one per object.")
        spatial = len(image.shape) - (1 if image.rgb else 0)
        if spatial != 2:
            raise DataError(f"'{image.name}' is a stack: detection trains on 2D images. Split the stack into "
                            "single images (napari: right-click the layer, Split Stack).")
        if points.data.shape[1] != 2:
            raise DataError(f"'{points.name}' holds {points.data.shape[1]}D points, but '{image.name}' is 2D. "
                            "Put the points on a 2D image.")

    def points_of(self, image, points) -> np.ndarray:
        """(N, 3) y, x, class in the image's pixels: layers may be scaled or moved in the viewer."""
        yx = (np.asarray(points.data, float) * points.scale + points.translate - image.translate[-2:]) \
            / image.scale[-2:]
        cls = np.ones(len(yx))
        if "class" in points.features:
            try:
                cls = np.asarray(points.features["class"], float)
            except (TypeError, ValueError):
                raise DataError(f"'{points.name}': the 'class' feature must be numbers (1 = first kind of "
                                "object).") from None
            # Points given no class (napari fills 0 or nothing when points are set as data) are objects.
            cls[~np.isfinite(cls) | (cls == 0)] = 1
        return np.c_[yx, cls]

    target_of = points_of

    def scores(self, found, truth, diameter) -> dict:
        """Points found within an object's radius of a true point (one to one), and the count error."""
        settings = self.dock.session.trainer.settings
        radius = (diameter or settings.data.object_size / settings.data.downscale) / 2
        found, truth = np.asarray(found, float), np.asarray(truth, float)
        s = detection_scores(found[:, :2], truth[:, :2], tolerance=radius)
        return {f"point F1 (within {radius:.0f} px)": s["point_f1"], "precision": s["precision"],
                "recall": s["recall"], "count error": s["count_error"], "true objects": s["true_objects"],
                "predicted objects": s["predicted_objects"]}

    def show_classes(self) -> None:
        dock, layers = self.dock, self.viewer.layers
        counts: dict[int, int] = {}
        for img, pts in dock.pairs:
            if img in layers and pts in layers:
                for c in self.points_of(layers[img], layers[pts])[:, 2].astype(int):
                    counts[c] = counts.get(c, 0) + 1
        dock.classes_label.value = ", ".join(f"class {c}: {n} points" if len(counts) > 1 else f"{n} objects"
                                             for c, n in sorted(counts.items())) or "(add points)"

    # -- predictions ----------------------------------------------------------------------
    def show_prediction(self, image_layer, found) -> None:
        """'<image> detections' points (y, x, or frame, y, x for a stack) with their class and score."""
        dock = self.dock
        found = np.asarray(found, float)
        coords, cls, score = found[:, :-2], found[:, -2].astype(int), found[:, -1]
        ndim = coords.shape[1]
        # Points live in the image's pixels: the same scale and offset put them on it.
        scale, translate = image_layer.scale[-ndim:], image_layer.translate[-ndim:]
        features = {"class": cls, "score": np.round(score, 3)}
        size = max(2.0, float(dock.session.trainer.settings.data.object_size))
        layer = self.reusable(image_layer.name)
        if layer is not None:
            layer.data = coords
            layer.features = features
        else:
            layer = self.viewer.add_points(coords, name=f"{image_layer.name} detections", features=features,
                                           size=size, face_color="transparent", border_color="yellow",
                                           border_width=0.15, scale=scale, translate=translate, ndim=ndim)
            layer.feature_defaults = {"class": 1, "score": 1.0}  # points the user adds are objects of class 1
        self.mark(layer, image_layer, coords)
        dock._refresh_layers()
        dock.status.value = f"Found {len(coords)} objects in {image_layer.name}"

    @classmethod
    def after_training(cls, trainer) -> None:
        """The peak threshold comes from the training images, once the run has ended."""
        if trainer.model is not None:
            trainer.calibrate_detection()
