"""Semantic segmentation in the dock: Labels layers in, '<image> prediction' Labels out."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, Container, SpinBox
from qtpy.QtCore import QTimer

from ...engine.images import check_pair_shape, empty_labels, guess_label_mode, labelled_indices
from ...engine.errors import DataError, MiaError
from ...engine.evaluate import mean_scores, segmentation_scores
from ...engine.samples import label_one_as_background, labelled_counts
from ...engine.targets import PostProcess
from .._layers import is_kind
from .base import DockApplication


class Segmentation(DockApplication):
    task = "segmentation"
    title = "Semantic segmentation"
    tooltip = "What the model learns: a class for every pixel, from a Labels layer."
    target_kind = "Labels"
    add_tooltip = "Add this image with its labels to the training set."
    predict_tooltip = "The image to predict (a new labels layer appears)."
    add_prediction_tooltip = "After correcting '<image> prediction' with napari's label tools, train on it too."
    empty_message = "Add at least one image with its labels to the training set first."
    shows = ("labels_combo", "regions_combo", "pair_list", "pair_buttons", "label_mode", "sparse", "classes_label",
             "labelled_label", "architecture",
             "section_post_processing", "diameter_row", "diameter_auto", "evaluate_row", "zoom", "zoom_range")
    lends = ("min_size", "fill_holes", "split_touching")

    def __init__(self, dock):
        super().__init__(dock)
        self._guessed: dict[str, str | None] = {}  # labels layer name -> label mode its data suggests
        self._watched: set[int] = set()
        self.min_size = SpinBox(label="Min object size", min=0, max=1_000_000, value=0,
                                tooltip="Objects smaller than this many pixels are removed from predictions.")
        self.fill_holes = CheckBox(text="Fill holes", value=False,
                                   tooltip="Fill holes inside predicted objects.")
        self.split_touching = CheckBox(
            text="Split touching objects", value=True,
            tooltip="Instances: cut touching objects apart along the predicted boundaries. Off: each connected "
                    "blob is one object.")
        self.post = Container(widgets=[self.min_size, self.fill_holes, self.split_touching])
        dock.controls["label_mode"].changed.connect(lambda *_: dock._update_classes())

    def prediction_sections(self):
        return [("Post-processing", self.post, False)]

    # -- settings -------------------------------------------------------------------------
    def kept_settings(self) -> dict:
        """The Post-processing section as settings, so that a saved model predicts the same after loading."""
        return {"min_object_size": int(self.min_size.value), "fill_holes": bool(self.fill_holes.value),
                "split_touching": bool(self.split_touching.value)}

    def write_settings(self, settings) -> None:
        d = settings.data  # a model file older than these settings holds their defaults
        self.min_size.value, self.fill_holes.value = d.min_object_size, d.fill_holes
        self.split_touching.value = d.split_touching

    def post_process(self):
        return PostProcess(min_size=int(self.min_size.value), fill_holes=bool(self.fill_holes.value),
                           split_touching=bool(self.split_touching.value))

    def scores(self, labels, truth, diameter) -> dict:
        """Per image (the mean over a stack's frames): foreground IoU, objects matched at IoU 0.5, AP."""
        instances = self.dock.session.trainer.settings.model.label_mode == "instances"
        labels, truth = np.asarray(labels), np.asarray(truth)
        if labels.ndim == 2:
            labels, truth = labels[None], truth[None]
        rows = [segmentation_scores(p, t, instances=instances) for p, t in zip(labels, truth)]
        mean = mean_scores(rows)
        return {"foreground IoU": mean["fg_iou"], "object F1 (IoU 0.5)": mean["object_f1"],
                "precision": mean["precision"], "recall": mean["recall"], "AP (IoU 0.5-0.95)": mean["ap"],
                "true objects": sum(r["true_objects"] for r in rows),
                "predicted objects": sum(r["predicted_objects"] for r in rows)}

    # -- training set ---------------------------------------------------------------------
    def check_target(self, image, target) -> None:
        if not is_kind(target, "Labels"):
            raise DataError(f"'{target.name}' is not a Labels layer: segmentation learns from labels "
                            "painted on the image (0 = background).")
        check_pair_shape(image.shape, target.data.shape, image.name, target.name, rgb=image.rgb)

    def check_labelled(self, target, region) -> None:
        labels = np.asarray(target.data[0] if target.multiscale else target.data)
        if not labelled_indices(labels, None if region is None else np.asarray(region)):
            raise empty_labels(target.name)

    def target_added(self, name: str, target) -> None:
        if id(target) not in self._watched:  # the Labelled counts follow the painting
            self._watched.add(id(target))
            # Deferred: napari emits `paint` before it writes a single (not stroked) paint into the data.
            target.events.paint.connect(lambda *_: QTimer.singleShot(0, self.show_classes))
        labels = np.asarray(target.data)
        sparse = self.dock.controls["sparse"].value
        if not sparse:
            message = label_one_as_background(labels if labels.ndim == 2 else labels[:16], name)
            if message:
                # Said, not refused: in classes mode the pattern can be meant (Start refuses it in instance mode).
                # The label mode is left as it is: guessed from a mistake, it would hide the mistake.
                self.dock._notify(message)
                return
        self._label_mode_from_data(name, labels, sparse=sparse)

    def _label_mode_from_data(self, labels_name: str, labels: np.ndarray, sparse: bool = False) -> None:
        """Set the label mode from the labels where they are unambiguous, or say plainly that they disagree.

        Instance masks (many ids, each one compact blob) trained in 'classes' mode would make a model with one
        class per object; a few values spread over many blobs are classes.
        """
        dock = self.dock
        guessed = _guess_label_mode(labels, sparse)
        self._guessed[labels_name] = guessed
        control = dock.controls["label_mode"]
        if guessed is None or guessed == control.value:
            return
        what = {"instances": "each object has its own number (instances)",
                "classes": "each number is a kind of object (classes)"}[guessed]
        if dock.session.has_model:
            dock._notify(f"'{labels_name}' looks like labels where {what}, but the model was made for the label "
                         f"mode '{control.value}'. Press Reset Model to train a new model in the mode "
                         f"'{guessed}', or keep the mode if you are sure.")
            return
        others = {m for name, m in self._guessed.items() if m is not None and name != labels_name
                  and any(p[1] == name for p in dock.pairs)}
        if others - {guessed}:
            dock._notify(f"'{labels_name}' looks like labels where {what}, but the other labels in the training "
                         f"set do not. All labels of one model must use the same label mode ('{control.value}' "
                         "now): check the Label mode, or remove the pair that does not fit.")
            return
        control.value = guessed
        dock.status.value += f" Label mode set to '{guessed}': in '{labels_name}' {what}. Change it under " \
                             "Label mode if that is wrong."

    def show_classes(self) -> None:
        self._show_labelled()
        dock = self.dock
        sparse = dock.controls["sparse"].value
        if dock.controls["label_mode"].value == "instances":
            dock.classes_label.value = ("sparse: paint background with 1, each object with its own number from 2 "
                                        "on; 0 = not labelled") if sparse else \
                "objects (instances): background / object"
            return
        colours: dict[int, str] = {}
        for _, lab in dock.pairs:
            layer = self.viewer.layers[lab]
            data = np.asarray(layer.data)
            for v in np.unique(data[data > 0]).tolist()[:64]:
                if v not in colours:  # the colour the user sees for this class, from its labels layer
                    rgba = np.asarray(layer.get_color(v), dtype=float).ravel()[:3]
                    colours[v] = "#%02x%02x%02x" % tuple(int(round(255 * c)) for c in rgba)
        if sparse:  # value v is class v-1; 1 is background
            shown = [v for v in sorted(colours) if v >= 2]
            dock.classes_label.value = f'sparse: <span style="color:{colours.get(1, "#888")}">&#9632;</span> 1 = ' \
                "background" + "".join(f', <span style="color:{colours[v]}">&#9632;</span> {v} = class {v - 1}'
                                       for v in shown) + "; 0 = not labelled"
            return
        dock.classes_label.value = "background, " + ", ".join(
            f'<span style="color:{colours[v]}">&#9632;</span> {v}' for v in sorted(colours)) if colours \
            else "(add labels)"

    def _show_labelled(self) -> None:
        """How many pixels of the training set are labelled as what: with sparse labels or regions, what the
        model learns from (all of it otherwise)."""
        dock = self.dock
        total = {"background": 0, "objects": 0, "not labelled": 0}
        sparse = dock.controls["sparse"].value
        for pair in dock.pairs:
            img, lab = (self.viewer.layers[n] for n in pair)
            labels = np.asarray(lab.data)
            if labels.ndim > 2 and len(labels) > 16:
                continue  # a long stack: not counted on the main thread
            region, shapes = None, dock.pair_regions.get(pair)
            try:
                region = dock.region_of(img, lab, shapes) if shapes else None
            except MiaError:
                pass
            dense = pair in dock.prediction_pairs
            for k, v in labelled_counts(labels, sparse and not dense, region).items():
                total[k] += v
        n = sum(total.values())
        if not n:
            dock.labelled_label.value = ""
            return
        dock.labelled_label.value = (f"{total['objects']:,} px objects, {total['background']:,} px background, "
                                     f"{total['not labelled'] / n:.0%} not labelled (ignored)")

    # -- predictions ----------------------------------------------------------------------
    def show_prediction(self, image_layer, labels) -> None:
        """'<image> prediction' labels over the image."""
        dock = self.dock
        layer = self.reusable(image_layer.name)
        if layer is not None:
            layer.data = labels
        else:  # napari numbers a repeated name: "<image> prediction [1]"
            layer = self.viewer.add_labels(labels, name=f"{image_layer.name} prediction", scale=image_layer.scale,
                                           translate=image_layer.translate)
            source = [p[1] for p in dock.pairs if p[1] in self.viewer.layers]
            if source and dock.controls["label_mode"].value == "classes":  # the classes' colours, as drawn
                layer.colormap = self.viewer.layers[source[0]].colormap
        self.mark(layer, image_layer, labels)
        dock._refresh_layers()  # the new layer is a prediction: marked in the Labels list


def _guess_label_mode(labels: np.ndarray, sparse: bool = False) -> str | None:
    """'instances', 'classes' or None (ambiguous): the engine's rule (`data.guess_label_mode`).

    It runs on the main thread when a pair is added, so a long stack is judged on 16 of its frames.
    """
    labels = np.asarray(labels)
    if labels.ndim == 3 and len(labels) > 16:
        labels = labels[np.linspace(0, len(labels) - 1, 16).astype(int)]
    return guess_label_mode(labels, sparse)
