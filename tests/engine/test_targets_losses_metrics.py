import numpy as np
import pytest
import torch

from napari_mia.engine.losses import LOSSES
from napari_mia.engine.metrics import foreground_confusion, score
from napari_mia.engine.targets import IGNORE, decode_instances, encode_instances


def _matched(truth, pred, thr=0.5):
    """Fraction of true objects matched by a predicted object with IoU > thr."""
    hits = 0
    ids = [i for i in np.unique(truth) if i]
    for i in ids:
        m = truth == i
        cand = np.bincount(pred[m]).argmax() if pred[m].any() else 0
        if cand and (m & (pred == cand)).sum() / (m | (pred == cand)).sum() > thr:
            hits += 1
    return hits / len(ids)


def test_instances_encode_and_decode_back_including_touching(dsb_pairs):
    for _, truth, _ in dsb_pairs[:4]:
        target = encode_instances(truth)
        probs = np.eye(3, dtype=np.float32)[target].transpose(2, 0, 1)
        back = decode_instances(probs)
        assert back.dtype == np.uint16
        assert _matched(truth, back) > 0.9


def test_touching_objects_are_split():
    truth = np.zeros((40, 60), np.uint16)
    truth[10:30, 10:30], truth[10:30, 30:50] = 1, 2  # share an edge
    probs = np.eye(3, dtype=np.float32)[encode_instances(truth)].transpose(2, 0, 1)
    back = decode_instances(probs)
    assert len(np.unique(back)) == 3 and _matched(truth, back) == 1.0


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_reward_the_right_answer_and_respect_weights(name):
    loss = LOSSES[name]
    # A fixed draw: with some draws the classes' errors come out so alike that weighting them changes nothing.
    y = torch.randint(0, 3, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    good = torch.nn.functional.one_hot(y, 3).permute(0, 3, 1, 2).float() * 8
    bad = torch.roll(good, 1, dims=1)
    assert loss(good, y) < loss(bad, y)
    # Ignored pixels do not count, whatever the prediction there.
    y_ign = y.clone()
    y_ign[:, :8] = IGNORE
    mixed = good.clone()
    mixed[:, :, :8] = bad[:, :, :8]
    assert torch.isclose(loss(mixed, y_ign), loss(good, y_ign), atol=1e-5)
    # Class weights change the loss of errors on the weighted class.
    cw = torch.tensor([1.0, 5.0, 1.0])
    assert not torch.isclose(loss(bad, y, None, cw), loss(bad, y))


def test_pixel_weights_scale_the_loss():
    y = torch.zeros(1, 8, 8, dtype=torch.long)
    logits = torch.zeros(1, 2, 8, 8)
    w = torch.full((1, 8, 8), 3.0)
    assert torch.isclose(LOSSES["cross_entropy"](logits, y, w), 3 * LOSSES["cross_entropy"](logits, y))


def test_metrics_on_a_known_confusion_matrix():
    cm = np.array([[50, 10], [5, 35]])
    assert score(cm, "iou") == pytest.approx(35 / 50)
    assert score(cm, "dice") == pytest.approx(70 / 85) == score(cm, "f1")
    assert score(cm, "precision") == pytest.approx(35 / 45)
    assert score(cm, "recall") == pytest.approx(35 / 40)
    assert score(cm, "accuracy") == pytest.approx(85 / 100)
    three = np.array([[50, 5, 5], [2, 20, 8], [1, 4, 5]])
    assert foreground_confusion(three).tolist() == [[50, 10], [3, 37]]
