"""Training patches and validation crops of prepared samples, and how samples split for validation.

Samples and their sources are made in ``engine.samples``. Every step below copies: the arrays a
source holds are never modified.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .samples import Sample, SampleSource
from .settings import Settings
from .targets import IGNORE
from .tiling import STRIDE, ceil_to


def too_few_for_validation(n: int, val_split: float) -> str | None:
    """Why `n` labelled images (or frames) cannot be split for validation, in plain words; None if they can."""
    if val_split <= 0:
        return None
    n_val = max(1, round(n * val_split))
    if n - n_val >= 1:
        return None
    return (f"Only {n} labelled image{'s' if n != 1 else ''}: training without validation (a validation split of "
            f"{val_split:.0%} needs at least {n_val + 1}), so there is no validation curve. Label another image "
            "(or frame) to see how the model does on images it does not train on.")


def split_train_val(sources: list[SampleSource], val_split: float, seed: int) -> tuple[list, list]:
    """Hold out whole images for validation.

    Too few images to hold one out (e.g. a single labelled image with the
    default split of 10%): every image trains and none validates, rather than a
    refusal; ``too_few_for_validation`` gives the note the trainer sends with
    ``TrainingStarted``. A region of the image is not held out instead: a
    first training on one image needs all of its few labelled objects.
    """
    n = len(sources)
    if val_split <= 0 or too_few_for_validation(n, val_split):
        return list(sources), []
    n_val = max(1, round(n * val_split))
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(order[:n_val])
    return [sources[i] for i in range(n) if i not in set(val)], [sources[i] for i in val]


def class_frequencies(sources: Sequence[SampleSource], num_classes: int) -> np.ndarray:
    counts = np.zeros(num_classes, np.float64)
    for s in sources:
        t = s.get().target
        counts += np.bincount(t[t != IGNORE].ravel(), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def auto_class_weights(freq: np.ndarray) -> np.ndarray:
    """Median-frequency balancing: rare classes weigh more; absent classes 0."""
    present = freq > 0
    w = np.zeros_like(freq)
    w[present] = np.median(freq[present]) / freq[present]
    return w.astype(np.float32)


# -- patches ----------------------------------------------------------------
def _crop(sample: Sample, y: int, x: int, ph: int, pw: int):
    """Crop a patch at (y, x), padding past the image (IGNORE in the target)."""
    h, w = sample.target.shape
    img = np.zeros((ph, pw, sample.image.shape[2]), np.float32)
    tgt = np.full((ph, pw), IGNORE, np.uint8)
    wgt = np.ones((ph, pw), np.float32)
    ys, xs = slice(max(y, 0), min(y + ph, h)), slice(max(x, 0), min(x + pw, w))
    yd, xd = slice(ys.start - y, ys.stop - y), slice(xs.start - x, xs.stop - x)
    img[yd, xd] = sample.image[ys, xs]
    tgt[yd, xd] = sample.target[ys, xs]
    if sample.weight is not None:
        wgt[yd, xd] = sample.weight[ys, xs]
    return img, tgt, wgt


def fitted_patch(sources: Sequence[SampleSource], settings: Settings) -> tuple[int, int]:
    """The training patch: the settings' size, cut down to the largest image (up to the network's stride).

    Padding is not a field of view: a 122-px image (a fine-tune's images scaled to the model's objects) in
    a 256-px patch is three quarters zeros, which BatchNorm then averages into statistics no real image has,
    and every step computes four times the pixels it learns from.
    """
    d = settings.data
    if not sources:
        return d.patch_height, d.patch_width
    h = max(s.shape[0] for s in sources)
    w = max(s.shape[1] for s in sources)
    return min(d.patch_height, ceil_to(h, STRIDE)), min(d.patch_width, ceil_to(w, STRIDE))


class PatchDataset:
    """Random training patches, ``len`` = patches per epoch (map-style for DataLoader)."""

    def __init__(self, sources: list[SampleSource], settings: Settings, augment=None, epoch_seed: int = 0):
        self.sources, self.settings, self.augment = sources, settings, augment
        self.epoch_seed = epoch_seed
        t = settings.train
        self.ph, self.pw = fitted_patch(sources, settings)
        areas = np.array([s.shape[0] * s.shape[1] for s in sources], np.float64)
        self.p = areas / areas.sum()
        if t.steps_per_epoch > 0:
            self.length = t.steps_per_epoch * t.batch_size
        else:
            patches = sum(max(1, math.ceil(a / (self.ph * self.pw))) for a in areas)
            self.length = max(t.batch_size, math.ceil(patches / t.batch_size) * t.batch_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        t = self.settings.train
        rng = np.random.default_rng((t.seed, self.epoch_seed, i))
        # Sparse labels: a patch of unlabelled pixels teaches nothing, whatever prefer_labelled says.
        tries = t.prefer_tries if t.prefer_labelled or self.settings.data.sparse else 0
        for attempt in range(tries + 1):
            sample = self.sources[rng.choice(len(self.sources), p=self.p)].get()
            h, w = sample.target.shape
            y = int(rng.integers(0, max(h - self.ph, 0) + 1))
            x = int(rng.integers(0, max(w - self.pw, 0) + 1))
            img, tgt, wgt = _crop(sample, y, x, self.ph, self.pw)
            if attempt == tries or np.count_nonzero((tgt > 0) & (tgt != IGNORE)) >= t.prefer_min_pixels:
                break
        if self.augment is not None:
            img, tgt, wgt = self.augment(img, tgt, wgt, rng)
        return to_tensors(img, tgt, wgt)



def to_tensors(img, tgt, wgt):
    # torch stays lazy: the dock reads settings and samples before anything trains.
    import torch

    return (
        torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
        torch.from_numpy(tgt.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(wgt)),
    )


def validation_patches(sources: list[SampleSource], settings: Settings):
    """Non-overlapping patches covering every validation image, no augmentation."""
    ph, pw = settings.data.patch_height, settings.data.patch_width
    for s in sources:
        sample = s.get()
        h, w = sample.target.shape
        for y in range(0, h, ph):
            for x in range(0, w, pw):
                yield to_tensors(*_crop(sample, y, x, ph, pw))


def validation_crops(sources: list[SampleSource], settings: Settings, max_crops: int, seed: int) -> list:
    """A fixed sample of at most `max_crops` patch-sized crops of the validation images, as sources.

    Whole images when they hold no more patches than that (nothing changes for a few small images).
    Else as many images as possible each give a crop in turn, chosen with `seed`, skipping crops with
    nothing labelled: a 54-image validation set scored after every period would cost most of a short
    run. The same crops are scored at every validation, so the scores compare.
    """
    ph, pw = settings.data.patch_height, settings.data.patch_width
    tiles = []
    for s in sources:
        h, w = s.shape
        tiles.append([(y, x) for y in range(0, max(h - ph, 0) + 1, ph) for x in range(0, max(w - pw, 0) + 1, pw)])
    if sum(len(t) for t in tiles) <= max_crops:
        return list(sources)
    rng = np.random.default_rng((seed, 7))
    order = [list(rng.permutation(len(t))) for t in tiles]
    picked: list[tuple[int, int, int]] = []
    images = list(rng.permutation(len(sources)))
    while len(picked) < max_crops and any(order[i] for i in images):
        for i in images:
            if order[i] and len(picked) < max_crops:
                picked.append((i, *tiles[i][order[i].pop()]))
    crops = []
    for i in sorted({i for i, _, _ in picked}):
        src, sample = sources[i], sources[i].get()
        for j, y, x in picked:
            if j != i:
                continue
            part = _crop_within(sample, y, x, ph, pw)
            if not np.any(part.target != IGNORE):
                continue
            crops.append(SampleSource(lambda part=part: part, f"{src.name} [{y}:{y + ph}, {x}:{x + pw}]",
                                      part.target.shape[:2], keep=True, max_label=src.max_label,
                                      background=getattr(src, "background", None)))
    return crops


def _crop_within(sample: Sample, y: int, x: int, ph: int, pw: int) -> Sample:
    """The part of `sample` at (y, x), at most ph x pw and inside the image (no padding: a real field)."""
    part = (slice(y, y + ph), slice(x, x + pw))
    weight = None if sample.weight is None else sample.weight[part].copy()
    known = None if getattr(sample, "known", None) is None else sample.known[part].copy()
    return Sample(sample.image[part].copy(), sample.target[part].copy(), weight, sample.name, known)
