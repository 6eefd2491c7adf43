"""Validation scores of a model trained by the CLI on a folder of instance masks.

    .venv/bin/python benchmarks/instance_scores.py MODEL IMAGES MASKS

Rebuilds the CLI's validation split (same settings, same seed) and prints the
foreground IoU (pixels pooled over the validation images) and the object F1:
predicted and true objects matched at IoU > 0.5 (a match is unique above 0.5).
"""

from __future__ import annotations

import sys

import numpy as np


def match_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of objects at IoU > 0.5."""
    pred, truth = pred.astype(np.int64), truth.astype(np.int64)
    n_p, n_t = int(pred.max()) + 1, int(truth.max()) + 1
    inter = np.bincount((pred * n_t + truth).ravel(), minlength=n_p * n_t).reshape(n_p, n_t)[1:, 1:]
    area_p = np.bincount(pred.ravel(), minlength=n_p)[1:]
    area_t = np.bincount(truth.ravel(), minlength=n_t)[1:]
    iou = inter / np.maximum(area_p[:, None] + area_t[None, :] - inter, 1)
    tp = int((iou > 0.5).sum())
    return tp, len(area_p) - tp, len(area_t) - tp


def main(model: str, images: str, masks: str) -> None:
    from pathlib import Path

    from napari_mia.engine.data import split_train_val
    from napari_mia.engine.images import pair_files, read_image
    from napari_mia.engine.task_data import sources_from_files
    from napari_mia.engine.targets import BACKGROUND, decode_instances
    from napari_mia.engine.trainer import Trainer

    trainer = Trainer.load(model)
    s = trainer.settings
    sources = sources_from_files(pair_files(images, masks), s)
    _, val = split_train_val(sources, s.train.val_split, s.train.seed)
    predictor = trainer.predictor()
    inter = union = 0
    counts = np.zeros(3, np.int64)
    for source in val:
        raw = read_image(Path(images) / source.name)
        probs = predictor.probabilities(raw[..., None] if raw.ndim == 2 else raw)
        truth = read_image(Path(masks) / source.name)
        fg, truth_fg = probs[BACKGROUND] < 0.5, truth > 0
        inter += int((fg & truth_fg).sum())
        union += int((fg | truth_fg).sum())
        counts += match_counts(decode_instances(probs), truth)
    tp, fp, fn = counts
    print(f"{len(val)} validation images: foreground IoU {inter / union:.3f}; objects TP {tp} FP {fp} FN {fn}, "
          f"F1 @ IoU 0.5 {2 * tp / (2 * tp + fp + fn):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
