"""Augmentation settings -> an albumentations pipeline applied to each patch."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .settings import AugmentSettings
from .targets import IGNORE


def build_augment(a: AugmentSettings, skip: tuple[str, ...] = ()):
    """A callable (image, target, weight, rng) -> augmented copies, or None.

    `skip`: augmentations the application cannot take (``Application.augment_skip``)."""
    import albumentations as A  # lazy: seconds to import, and napari-mia --help imports this module

    a = dataclasses.replace(a, **{name: 0.0 for name in skip})
    steps = []
    if a.hflip:
        steps.append(A.HorizontalFlip(p=a.hflip))
    if a.vflip:
        steps.append(A.VerticalFlip(p=a.vflip))
    if a.blur:
        steps.append(A.GaussianBlur(blur_limit=tuple(a.blur_limit), p=a.blur))
    if a.piecewise_affine:
        warnings.warn(
            "Piecewise affine augmentation is very slow (it can dominate training time).", stacklevel=2
        )
        steps.append(A.PiecewiseAffine(p=a.piecewise_affine, fill_mask=IGNORE))
    if a.dropout:
        # Holes in the image only: the network learns to infer hidden parts.
        steps.append(A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.2),
                                     hole_width_range=(0.05, 0.2), fill=0, p=a.dropout))
    if a.zoom:
        # Zoom alone, in and out equally often: objects of other sizes than the labelled ones.
        steps.append(A.Affine(scale=tuple(a.zoom_range), balanced_scale=True, keep_ratio=True, fill=0,
                              fill_mask=IGNORE, p=a.zoom))
    if a.affine:
        steps.append(A.Affine(scale=tuple(a.scale), translate_percent=tuple(a.translate), shear=tuple(a.shear),
                              rotate=tuple(a.rotate), fill=0, fill_mask=IGNORE, p=a.affine))
    # Intensity changes come last: they act on the image only, on normalised values (about 0-1).
    if a.brightness_contrast:
        steps.append(A.RandomBrightnessContrast(brightness_limit=tuple(a.brightness_range),
                                                contrast_limit=tuple(a.contrast_range), p=a.brightness_contrast))
    if a.gamma:
        steps.append(A.RandomGamma(gamma_limit=tuple(100 * g for g in a.gamma_range), p=a.gamma))
    if a.noise:
        steps.append(A.GaussNoise(std_range=tuple(a.noise_range), p=a.noise))
    if not steps:
        return None
    pipeline = A.Compose(steps, additional_targets={"weight": "mask"})

    def apply(image: np.ndarray, target: np.ndarray, weight: np.ndarray, rng: np.random.Generator):
        # Seeded per patch so that a run can be repeated exactly.
        pipeline.set_random_seed(int(rng.integers(2**31)))
        if a.gamma:  # a power of the few values normalised below 0 would be NaN
            image = np.maximum(image, 0.0)
        out = pipeline(image=image, mask=target, weight=weight)
        return out["image"], out["mask"], out["weight"]

    return apply
