"""Segmentation losses with per-class weights, per-pixel weights and ignored pixels.

All take logits (N, C, H, W), targets (N, H, W) with ``IGNORE`` where there is
no supervision, pixel weights (N, H, W) and optional class weights (C,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .targets import IGNORE

FOCAL_GAMMA = 2.0
# KL divergence against one-hot targets would equal cross entropy; MIA's
# users choose it for softer targets, so the target is label-smoothed.
KL_SMOOTHING = 0.05


def _prepare(logits, target, class_weights):
    valid = target != IGNORE
    safe = torch.where(valid, target, torch.zeros_like(target))
    logp = F.log_softmax(logits.float(), dim=1)
    cw = class_weights[safe] if class_weights is not None else torch.ones_like(safe, dtype=logp.dtype)
    return valid, safe, logp, cw


def _reduce(per_pixel, valid, pixel_weight, cw):
    w = valid.to(per_pixel.dtype) * cw * (pixel_weight if pixel_weight is not None else 1.0)
    return (per_pixel * w).sum() / valid.sum().clamp(min=1)


def cross_entropy(logits, target, pixel_weight=None, class_weights=None):
    valid, safe, logp, cw = _prepare(logits, target, class_weights)
    nll = -logp.gather(1, safe[:, None])[:, 0]
    return _reduce(nll, valid, pixel_weight, cw)


def focal(logits, target, pixel_weight=None, class_weights=None):
    valid, safe, logp, cw = _prepare(logits, target, class_weights)
    logp_t = logp.gather(1, safe[:, None])[:, 0]
    per_pixel = -((1 - logp_t.exp()) ** FOCAL_GAMMA) * logp_t
    return _reduce(per_pixel, valid, pixel_weight, cw)


def kl_divergence(logits, target, pixel_weight=None, class_weights=None):
    valid, safe, logp, cw = _prepare(logits, target, class_weights)
    c = logits.shape[1]
    q = F.one_hot(safe, c).permute(0, 3, 1, 2).to(logp.dtype) * (1 - KL_SMOOTHING) + KL_SMOOTHING / c
    per_pixel = (q * (q.log() - logp)).sum(1)
    return _reduce(per_pixel, valid, pixel_weight, cw)


def dice(logits, target, pixel_weight=None, class_weights=None, smooth: float = 1.0):
    valid, safe, logp, _ = _prepare(logits, target, None)
    c = logits.shape[1]
    p = logp.exp() * valid[:, None]
    g = F.one_hot(safe, c).permute(0, 3, 1, 2).to(p.dtype) * valid[:, None]
    if pixel_weight is not None:
        p, g = p * pixel_weight[:, None], g * pixel_weight[:, None]
    inter = (p * g).sum((0, 2, 3))
    score = (2 * inter + smooth) / (p.sum((0, 2, 3)) + g.sum((0, 2, 3)) + smooth)
    w = class_weights if class_weights is not None else torch.ones(c, device=p.device)
    return 1 - (score * w).sum() / w.sum().clamp(min=1e-6)


LOSSES = {"cross_entropy": cross_entropy, "focal": focal, "kl_divergence": kl_divergence, "dice": dice}


# -- detection: (N, C, H, W) predicted and target heatmaps, (N, H, W) valid mask --
def _masked_mean(per_pixel, valid):
    w = valid[:, None].to(per_pixel.dtype).expand_as(per_pixel)
    return (per_pixel * w).sum() / w.sum().clamp(min=1)


def mse(pred, heat, valid):
    return _masked_mean((pred.float() - heat) ** 2, valid)


def rmse(pred, heat, valid):
    return torch.sqrt(mse(pred, heat, valid) + 1e-12)


def msle(pred, heat, valid):
    return _masked_mean((torch.log1p(F.relu(pred.float())) - torch.log1p(heat)) ** 2, valid)


def mae(pred, heat, valid):
    return _masked_mean((pred.float() - heat).abs(), valid)


REGRESSION_LOSSES = {"mse": mse, "rmse": rmse, "msle": msle, "mae": mae}
