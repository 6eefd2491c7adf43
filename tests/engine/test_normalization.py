"""Issue #13, defect 4: what Predict gives after a short training matches what the training curve shows.

BatchNorm running statistics follow the weights slowly (momentum 0.1); the
engine re-estimates them from training patches before it predicts.
"""

import threading

import numpy as np
import torch

from napari_mia.engine.images import prepare_image
from napari_mia.engine.events import IterationEnd
from napari_mia.engine.predictor import Predictor
from napari_mia.engine.trainer import Trainer
from tests.conftest import small_settings


def _semantic(pairs):
    return [(img, (m > 0).astype(np.uint8), n) for img, m, n in pairs]


def _foreground(t, img, train_mode: bool) -> np.ndarray:
    x = torch.from_numpy(prepare_image(img[..., None], t.settings).transpose(2, 0, 1)[None].copy())
    t.model.train(train_mode)
    with torch.no_grad():
        return torch.softmax(t.model(x), 1)[0, 1].numpy()


def test_five_steps_predict_what_the_curve_shows(dsb_pairs):
    """Measured (patch 128, 5 steps, classes mode): eval output vs train-mode output on a training image,
    mean |difference| of the foreground probability 0.15 with the stale statistics, 0.06 settled."""
    pairs = _semantic(dsb_pairs[:6])
    t = Trainer(small_settings(label_mode="classes", steps_per_epoch=5, val_split=0, patch_width=128,
                               patch_height=128))
    list(t.train(pairs))
    img, mask, _ = pairs[0]
    reference = _foreground(t, img, train_mode=True)  # what the training steps saw (batch statistics)
    stale = Predictor(t.model, t.settings, t.device, tile=None).probabilities(img[..., None])[1]
    settled = t.predictor(tile=None).probabilities(img[..., None])[1]
    before, after = np.abs(stale - reference).mean(), np.abs(settled - reference).mean()
    print(f"mean |eval - train-mode| foreground probability: stale {before:.3f}, settled {after:.3f}")
    assert after < 0.1 and after < before - 0.04

    def iou(p):
        return ((p > .5) & (mask > 0)).sum() / ((p > .5) | (mask > 0)).sum()

    assert iou(settled) >= iou(reference) - 0.05
    # Settled once: nothing changes until the next optimizer step.
    assert not t.settle_normalization()


def test_snapshot_predicts_during_training_without_disturbing_it(dsb_pairs):
    """A snapshot predictor taken from another thread at every step leaves the run exactly as without it."""
    pairs = _semantic(dsb_pairs[:3])

    def run(snapshots: bool):
        t = Trainer(small_settings(label_mode="classes", steps_per_epoch=2, batch_size=2, val_split=0,
                                   patch_width=64, patch_height=64))
        found = []
        for ev in t.train(pairs):
            if snapshots and isinstance(ev, IterationEnd):
                rng = torch.get_rng_state()
                live = {k: v.clone() for k, v in t.model.state_dict().items()}
                th = threading.Thread(target=lambda: found.append(
                    t.predictor(tile=None, snapshot=True).predict(pairs[0][0][:64, :64])))
                th.start()
                th.join()
                assert torch.equal(rng, torch.get_rng_state())
                assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in live.items())
                assert t._norm_stale  # the live model's statistics were left to the live model
        return t, found

    quiet, _ = run(False)
    busy, found = run(True)
    assert len(found) == 2 and all(f.shape == (64, 64) for f in found)
    assert all(torch.equal(v, busy.model.state_dict()[k]) for k, v in quiet.model.state_dict().items())
