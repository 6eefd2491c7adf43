"""Per-image scores on cases small enough to check by hand."""

import numpy as np
import pytest

from napari_mia.engine.evaluate import (classification_scores, detection_scores, mean_scores, object_ious,
                                        segmentation_scores)


def _two_objects():
    truth = np.zeros((10, 10), np.uint16)
    truth[0:4, 0:4] = 1   # 16 px
    truth[6:10, 6:10] = 7  # 16 px, ids need not be consecutive
    pred = np.zeros_like(truth)
    pred[0:4, 0:3] = 3    # 12 px inside object 1: IoU 12/16 = 0.75
    pred[6:8, 6:10] = 4   # 8 px inside object 7: IoU 8/16 = 0.5, not a match (> 0.5 needed)
    pred[0:2, 8:10] = 5   # 4 px of background: a false positive
    return pred, truth


def test_object_ious_by_hand():
    pred, truth = _two_objects()
    iou = object_ious(pred, truth)
    assert iou.shape == (3, 2)
    np.testing.assert_allclose(iou, [[0.75, 0], [0, 0.5], [0, 0]])


def test_segmentation_scores_by_hand():
    pred, truth = _two_objects()
    s = segmentation_scores(pred, truth)
    # foreground: truth 32 px, prediction 24 px, 20 px in both -> 20 / 36
    assert s["fg_iou"] == pytest.approx(20 / 36)
    # one match (0.75) of 3 predicted and 2 true objects
    assert s["object_f1"] == pytest.approx(2 * 1 / 5)
    assert (s["precision"], s["recall"]) == (pytest.approx(1 / 3), 0.5)
    # the match holds at thresholds 0.5..0.70 (5 of 10): TP/(TP+FP+FN) = 1/4 there, 0 above
    assert s["ap"] == pytest.approx(5 * 0.25 / 10)
    assert (s["true_objects"], s["predicted_objects"]) == (2, 3)


def test_perfect_and_empty():
    _, truth = _two_objects()
    s = segmentation_scores(truth * 2, truth)  # other ids, same objects
    assert s["object_f1"] == s["ap"] == s["fg_iou"] == 1.0
    empty = np.zeros_like(truth)
    assert segmentation_scores(empty, empty)["object_f1"] == 1.0
    none_found = segmentation_scores(empty, truth)
    assert none_found["object_f1"] == none_found["recall"] == none_found["fg_iou"] == 0.0


def test_class_labels_are_scored_by_connected_regions():
    _, truth = _two_objects()
    binary = (truth > 0).astype(np.uint8)  # both objects carry the same class value
    assert segmentation_scores(binary, binary, instances=False)["true_objects"] == 2


def test_detection_scores_by_hand():
    truth = np.array([[10, 10], [50, 50], [90, 90]])
    pred = np.array([[12, 11], [50, 58], [20, 80], [21, 80]])  # one within 3 px, one 8 px off, two extra
    s = detection_scores(pred, truth, tolerance=5)
    assert (s["precision"], s["recall"]) == (0.25, pytest.approx(1 / 3))
    assert s["point_f1"] == pytest.approx(2 / 7)
    assert (s["count_error"], s["abs_count_error"]) == (1, 1)
    assert detection_scores(np.zeros((0, 2)), truth, 5)["recall"] == 0.0


def test_classification_scores_and_means():
    s = classification_scores([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
    assert s["accuracy"] == 0.75
    np.testing.assert_array_equal(s["confusion"], [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    assert s["class_recall"] == [1.0, 1.0, 0.5]
    means = mean_scores([{"a": 1.0, "n": 2, "name": "x"}, {"a": 0.0, "n": 4, "name": "y"}])
    assert means == {"a": 0.5, "n": 3.0}
