"""A label-efficiency curve: the same training on nested subsets of the labelled images, each scored on test
images, and the forecast of ``engine.curve`` (``napari-mia curve``); the same forecast from a model's rounds
(the dock's Rounds view).

The subsets are nested (every image of a small one is in the larger ones), drawn at random once with the
seed; for classification every class is drawn in turn, so that a small subset still has several classes.
"""

from __future__ import annotations

import csv
import os
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.applications.base import write_csv
from ..engine.curve import MIN_POINTS, CurveFit, fit_curve
from ..engine.errors import DataError, MiaError

FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
MIN_IMAGES = 4  # 1, 2 and 4 images: the fewest that give three points


@dataclass
class CurvePoint:
    """One subset's training, scored on the test images."""

    images: int
    labels: float  # labelled objects (segmentation, detection) or images (classification)
    score: float  # the mean test score the curve is fitted to (the application's headline)
    scores: dict = field(default_factory=dict)  # every mean test score
    per_image: list[float] = field(default_factory=list)  # the headline score of each test image, in order
    seconds: float = 0.0
    steps: int = 0
    model: str = ""
    objects: float | None = None  # labelled objects, where the application counts them


def subset_sizes(n: int, fractions=FRACTIONS) -> list[int]:
    """The nested subsets' sizes for `n` images: 1/8, 1/4, 1/2 and all of them (each at least 1, no repeats)."""
    return sorted({max(1, int(round(n * f))) for f in fractions})


def nested_subsets(names: list[str], seed: int = 0, groups: list | None = None,
                   fractions=FRACTIONS) -> list[list[str]]:
    """Nested subsets of `names`, smallest first. `groups` (e.g. each image's class): drawn in turn, so that
    every subset holds as many groups as it can. Raises DataError with too few images for a curve."""
    n = len(names)
    sizes = subset_sizes(n, fractions)
    if n < MIN_IMAGES or len(sizes) < MIN_POINTS:
        raise DataError(f"A learning curve trains on nested subsets of the labelled images ({_fractions(fractions)}) "
                        f"and fits a curve through at least {MIN_POINTS} of them: it needs at least {MIN_IMAGES} "
                        f"labelled images; there {'is' if n == 1 else 'are'} {n}.")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(n))
    if groups is not None:  # round robin over the groups, each in its random order
        seen: dict = {}
        rank = {}
        for i in order:
            rank[i] = seen.get(groups[i], 0)
            seen[groups[i]] = rank[i] + 1
        order.sort(key=lambda i: rank[i])  # stable: within a turn, the random order
    return [[names[i] for i in order[:k]] for k in sizes]


def _fractions(fractions) -> str:
    words = {1 / 8: "1/8", 1 / 4: "1/4", 1 / 2: "1/2", 1.0: "all"}
    return ", ".join(words.get(f, f"{f:g}") for f in fractions)


def _link(src: Path, dst: Path) -> None:
    """A hard link where the file system allows one (no copy of large images), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_subset(folder: Path, pairs: list[tuple], names: list[str], targets: Path, kind: str) -> dict[str, Path]:
    """The subset `names` of `pairs` as a folder that ``napari-mia train`` reads: images/, and masks/ or the
    rows of the points or classes CSV that name them. Returns {"images": ..., kind: ...}."""
    if folder.exists():
        shutil.rmtree(folder)
    images = folder / "images"
    images.mkdir(parents=True)
    keep = set(names)
    chosen = [p for p in pairs if Path(p[0]).name in keep]
    for p in chosen:
        _link(Path(p[0]), images / Path(p[0]).name)
    out = {"images": images}
    if kind == "masks":
        masks = folder / "masks"
        masks.mkdir()
        for p in chosen:
            _link(Path(p[1]), masks / Path(p[1]).name)
        out[kind] = masks
    else:
        with open(targets, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader)
            col = [h.strip().lower() for h in header].index("name")
            rows = [r for r in reader if r and r[col].strip() in keep]
        out[kind] = write_csv(folder / f"{kind}.csv", header, rows)
    return out


# -- the points and their forecast ------------------------------------------------------------------
def fit_points(points: list[CurvePoint], seed: int = 0) -> CurveFit:
    """The curve through the points: resampling the test images where every point has them per image."""
    per_image = [p.per_image for p in points]
    same = len({len(s) for s in per_image}) == 1 and len(per_image[0]) > 1
    scores = per_image if same else [p.score for p in points]
    return fit_curve([p.labels for p in points], scores, seed)


def rounds_points(rounds, key: str, objects: bool = True) -> list[CurvePoint]:
    """The dock's rounds as curve points: the rounds scored on the same test images as the latest one, with
    their labelled objects (`objects`; else their images), the latest round of each number of labels."""
    if not rounds:
        return []
    latest = rounds[-1].test_data
    by_labels: dict[float, CurvePoint] = {}
    for r in rounds:
        if r.test.get(key) is None or r.test_data != latest:
            continue
        labels = r.objects if objects else r.images + r.validation_images
        if labels:
            by_labels[float(labels)] = CurvePoint(r.images + r.validation_images, float(labels), float(r.test[key]),
                                                  dict(r.test))
    return [by_labels[k] for k in sorted(by_labels)]


def forecast_from_rounds(rounds, key: str, score_words: str, unit: str,
                         objects: bool = True) -> tuple[CurveFit | None, str]:
    """(the fit, the forecast in words) from the rounds; (None, what is missing) with fewer than 3 points."""
    points = rounds_points(rounds, key, objects)
    if len(points) < MIN_POINTS:
        return None, (f"Forecast: after {MIN_POINTS} rounds scored on the same test pairs, with different numbers of "
                      f"{unit}, the curve says whether more labels would help ({len(points)} so far).")
    try:
        fit = fit_points(points)
    except MiaError as e:
        return None, str(e)
    return fit, "Forecast: " + fit.words(score_words, unit, "your test pairs")


def write_curve_csv(path: Path, points: list[CurvePoint], fit: CurveFit | None, unit: str) -> Path:
    keys = list(points[0].scores) if points else []
    columns = ["images", unit.replace(" ", "_"), *keys, "fitted", "train_seconds", "steps", "model"]
    rows = [[p.images, round(p.labels, 1), *[_round(p.scores.get(k)) for k in keys],
             "" if fit is None else round(float(fit(p.labels)), 4), round(p.seconds, 1), p.steps, p.model]
            for p in points]
    return write_csv(path, columns, rows)


def _round(v):
    return "" if v is None else round(float(v), 4)


def plot_curve(path: Path, points: list[CurvePoint], fit: CurveFit | None, score_words: str, unit: str,
               title: str = "") -> Path:
    """The points, the fitted curve out to twice the labels, and the forecast's interval, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: seconds to import
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.6), dpi=100, tight_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    draw_curve(ax, points, fit)
    ax.set_xlabel(unit)
    ax.set_ylabel(f"test {score_words}")
    if title:
        ax.set_title(textwrap.fill(title, 80), fontsize=8)
    fig.savefig(path)
    return path


def draw_curve(ax, points: list[CurvePoint], fit: CurveFit | None, colour="tab:purple", fg=None) -> None:
    """The curve on matplotlib axes `ax` (also the dock's Rounds view): measured points, the fit (dashed beyond
    the labels measured) and the forecast's interval at twice the labels."""
    from matplotlib.ticker import NullFormatter  # lazy: seconds to import

    xs = [p.labels for p in points]
    ys = [p.score for p in points]
    ax.plot(xs, ys, "o", color=colour, label="measured")
    if fit is not None:
        grid = np.geomspace(min(xs), fit.labels, 50)
        ax.plot(grid, fit(grid), "-", color=colour, alpha=0.6, label="fitted")
        beyond = np.geomspace(fit.labels, 2 * fit.labels, 20)
        ax.plot(beyond, fit(beyond), "--", color=colour, alpha=0.6, label="forecast")
        if fit.low is not None:
            # A percentile interval need not hold the point forecast: the bars never go negative.
            ax.errorbar([2 * fit.labels], [fit.doubled], yerr=[[max(fit.gain - fit.low, 0)],
                                                               [max(fit.high - fit.gain, 0)]],
                        fmt="s", color=colour, capsize=3)
    ax.set_xscale("log")
    # Ticks where the points were measured (and at twice the labels), in plain numbers.
    ticks = xs + ([2 * fit.labels] if fit is not None else [])
    ax.set_xticks(ticks, [f"{t:.0f}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(min(0.0, *ys) - 0.03, 1.03)
    ax.legend(loc="lower right", fontsize=7, labelcolor=fg)
