"""Semantic segmentation: a class for every pixel, or single objects (label mode 'instances').

* ``classes``: the label value is the class id (0 = background).
* ``instances``: each object has its own id; the network learns background /
  interior / boundary (``targets.encode_instances``) and prediction cuts the
  interiors apart again (``targets.decode_instances``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..evaluate import mean_scores, object_ious, segmentation_scores
from ..images import check_labels, guess_label_mode, prepare_image, read_image, rescale
from ..job_files import image_file_array, labels_file_array, write_tiff
from ..metrics import foreground_confusion
from ..samples import Sample
from ..targets import (
    BACKGROUND, BOUNDARY, IGNORE, INTERIOR, PostProcess, contour_weights, decode_instances, encode, fill_holes,
    remove_small,
)
from ..tasks import SegmentationRules
from .base import Application



class _SegmentationHead:
    """Loss and scored classes for segmentation: the network's classes are the labels' classes."""

    def __init__(self, settings):
        from ..losses import LOSSES  # lazy: torch (the dock imports this before training)

        self.loss_fn = LOSSES[settings.train.loss]
        self.n_cm = settings.model.num_classes

    def __call__(self, out, y, w, class_weights):
        """(loss, predicted class ids, target class ids) of a batch."""
        return self.loss_fn(out, y, w, class_weights), out.argmax(1), y


def _instances(settings) -> bool:
    return settings.model.label_mode == "instances"


class Segmentation(Application):
    name = "segmentation"
    rules = SegmentationRules()
    # Nuclei and cells: their size is estimated from the image alone (engine.scale), so images of another
    # magnification reach the network at the size it learned without the user knowing to ask.
    auto_diameter = True
    result_type = "a label image like the image (class ids, or one id per object in instance mode)"

    # -- targets --------------------------------------------------------------------------------
    def make_sample(self, frame, labels, settings, name):
        from skimage.measure import label  # lazy: seconds to import; the dock imports this module

        image = prepare_image(frame, settings)
        labels = rescale(labels, settings.data.downscale, order=0)
        t = settings.train
        weight = None
        if t.separate_contours:
            inst = labels if _instances(settings) else label(labels)
            weight = contour_weights(inst, t.contour_weight, t.contour_sigma)
        return Sample(image, encode(labels, settings.model.label_mode), weight, name)

    def mask_unknown(self, target, known, settings):
        from scipy.ndimage import binary_dilation  # lazy: seconds to import; the dock imports this module

        target = super().mask_unknown(target, known, settings)
        if _instances(settings):

            # An object's edge is taught as boundary only where the other side is known too: an object
            # cut by a region's edge, or painted beside unlabelled pixels, may go on there.
            near_unknown = binary_dilation(~known, structure=np.ones((3, 3), bool))
            target[(target == BOUNDARY) & near_unknown] = IGNORE
        return target

    def background_ring(self, settings):
        # Instance mode: every id is one whole object, so its surroundings are known. A class may be painted
        # as a stroke inside a larger region of that class: no ring.
        return settings.data.sparse_ring if _instances(settings) else 0.0

    def learn_unknown(self, sample, settings):
        w = settings.data.sparse_unlabelled
        if not (settings.data.sparse and w > 0) or sample.known is None:
            return

        # Most unlabelled pixels are background: taught so, weakly, they pull false objects down while
        # the unlabelled nuclei (a few) weigh little against the painted ones.
        unknown = ~sample.known & (sample.target == IGNORE)
        sample.target = np.where(unknown, BACKGROUND, sample.target).astype(sample.target.dtype)
        weight = np.ones(sample.target.shape, np.float32) if sample.weight is None else sample.weight.copy()
        weight[unknown] *= w
        sample.weight = weight

    def object_diameters(self, labels, settings):
        from ..scale import object_diameters  # lazy: scale imports scipy (seconds); the dock imports this

        return object_diameters(labels, instances=_instances(settings)) * settings.data.downscale

    evaluate_columns = ("fg_iou", "object_f1", "ap", "precision", "recall", "true_objects", "predicted_objects")
    headline_scores = (("fg_iou", "fg IoU"), ("object_f1", "object F1"))

    def evaluate_item(self, predictor, image, target, settings, tolerance=None):
        truth = check_labels(read_image(target), Path(target).name) if isinstance(target, (str, Path)) else target
        pred = predictor.predict(image)
        if pred.shape != truth.shape:
            raise DataError(f"The labels {truth.shape} and the image's prediction {pred.shape} differ in size.")
        # Class labels: each connected region of a class is an object.
        return segmentation_scores(pred, truth, instances=_instances(settings))

    def validation_objects(self, predictor, sources, settings, stop=lambda: None):
        # Instances are what users count and judge: object F1 at IoU 0.5 per whole validation image.
        if not _instances(settings):
            return None

        d = settings.data
        post = PostProcess(min_size=d.min_object_size, fill_holes=d.fill_holes, split_touching=d.split_touching)
        rows = []
        for source in sources:
            sample = source.get()
            pred = decode(predictor.maps(sample.image), settings, post)
            truth = _target_instances(sample.target)
            if getattr(source, "background", None) is not None:  # partly labelled (sparse labels, regions)
                known = sample.known if sample.known is not None else sample.target != IGNORE
                rows.append({"object_f1": partial_object_f1(pred, truth, known)})
            else:
                rows.append(segmentation_scores(pred, truth))
            if stop():
                return "stopped"
        return mean_scores(rows)["object_f1"] if rows else None

    def label_mode_guess(self, labels, settings):
        # Instance ids need no check: every value is an object, whatever the count.

        return None if _instances(settings) else guess_label_mode(labels)

    def check_classes(self, settings, sources, new_model: bool) -> None:
        if not _instances(settings):
            super().check_classes(settings, sources, new_model)

    # -- training -------------------------------------------------------------------------------
    def head(self, settings):
        return _SegmentationHead(settings)

    def score(self, cm, settings) -> float:
        if _instances(settings):

            cm = foreground_confusion(cm)
        return super().score(cm, settings)

    # -- prediction ----------------------------------------------------------------------------
    def decode(self, probs, settings, post):
        return decode(probs, settings, post)

    def result(self, predictor, image, rgb=None, post=None, progress=None, name="image"):
        return predictor.predict(image, rgb=rgb, post=post, progress=progress, name=name)

    # -- training job folders -------------------------------------------------------------------
    def write_job_targets(self, items, folder, settings, names):
        out = {"images": "images", "masks": "masks"}
        for item in items:
            frames, stack = self._job_frames(item, settings)
            labels = labels_file_array(item[1], item[3] or f"{item[2]} labels")
            region = item[5] if len(item) > 5 else None
            lab = labels if stack else labels[None]
            reg = None if region is None else (np.asarray(region) if stack else np.asarray(region)[None])
            for i in range(len(lab)):
                # The frames training reads (data.labelled_frames): labelled, or with a reviewed region.
                if not lab[i].any() and (reg is None or not reg[i].any()):
                    continue
                stem = names.stem(item[2], i if stack else None)
                write_tiff(folder / "images" / f"{stem}.tif", image_file_array(frames[i]))
                write_tiff(folder / "masks" / f"{stem}.tif", lab[i], compress=True)
                if reg is not None:  # images without a region file are fully labelled (--regions)
                    write_tiff(folder / "regions" / f"{stem}.tif", (reg[i] > 0).astype(np.uint8), compress=True)
                    out["regions"] = "regions"
        if not (folder / "images").is_dir():
            raise DataError("The labels of the training set are empty: paint at least one object first.")
        return out



# A predicted object that matches no painted one is judged where at least this share of it lies on labelled
# pixels; elsewhere it may be an object nobody painted.
JUDGED_SHARE = 0.5


def partial_object_f1(pred: np.ndarray, truth: np.ndarray, known: np.ndarray) -> float:
    """Object F1 at IoU 0.5 of a prediction against partial labels: `truth` the labelled objects' ids (0 elsewhere),
    `known` where the labels are known (painted objects, painted or reviewed background, the ring around
    painted objects).

    Scoring only the painted objects would be blind to false objects: a model that calls everything an object
    finds every painted nucleus and scores 1. So a predicted object that matches no labelled one is a false
    object where at least ``JUDGED_SHARE`` of its pixels are labelled: there the labels say background, or a
    differently shaped object (a fragment of a painted nucleus, or one merged with its neighbour). One lying
    mostly on unlabelled pixels is not counted either way: it may be a nucleus nobody painted, and counting
    it false would teach the best-epoch choice to prefer models that miss objects."""

    iou = object_ious(pred, truth)
    n_p, n_t = iou.shape
    matched = (iou > 0.5).any(1) if n_t else np.zeros(n_p, bool)
    tp = int(matched.sum())
    ids = np.unique(pred[pred > 0])  # the rows of `iou`
    area = np.bincount(np.searchsorted(ids, pred[pred > 0]), minlength=n_p)
    on_known = np.bincount(np.searchsorted(ids, pred[(pred > 0) & known]), minlength=n_p)
    false = int(np.count_nonzero(~matched & (on_known >= JUDGED_SHARE * np.maximum(area, 1))))
    judged = 2 * tp + false + (n_t - tp)
    return 2 * tp / judged if judged else 1.0


def _target_instances(target: np.ndarray) -> np.ndarray:
    """Instance ids back from an instance-mode target (interiors grown into their boundaries)."""

    onehot = np.stack([(target == BACKGROUND) | (target == IGNORE), target == INTERIOR, target == BOUNDARY])
    return decode_instances(onehot.astype(np.float32))


def decode(probs: np.ndarray, settings, post) -> np.ndarray:
    """(classes, H, W) probabilities -> label image, after the post-processing `post` (``Predictor.decode``)."""
    from skimage.measure import label  # lazy: seconds to import; the dock imports this module

    if _instances(settings):
        if post.split_touching:
            labels = decode_instances(probs, post.min_size)
        else:
            labels = label(probs[0] < 0.5).astype(np.uint32)
            labels = remove_small(labels, post.min_size) if post.min_size else labels
            labels = labels.astype(np.uint16 if labels.max() < 2**16 else np.uint32)
    else:
        labels = probs.argmax(0).astype(np.uint8 if probs.shape[0] < 256 else np.uint16)
        if post.min_size:
            comps = label(labels > 0)
            labels = np.where(remove_small(comps, post.min_size) > 0, labels, 0).astype(labels.dtype)
    if post.fill_holes:
        labels = fill_holes(labels)
    return labels
