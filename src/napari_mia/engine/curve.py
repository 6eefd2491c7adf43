"""Learning curves: will more labels help?

A model's test score against the number of labels it learned from is fitted with an inverse power law,

    score(n) = top - gap * n ** -rate,

which rises fast and then flattens towards `top` (Figueroa et al. 2012, BMC Med Inform Decis Mak 12:8). The
forecast is what the fitted curve gives for twice the labels, against what it gives for the labels there are;
its interval comes from refitting the curve to bootstrap resamples of the test images (the same images are
scored at every point, so they are resampled together) and, with more points than the curve's three
parameters, of the fit's residuals (the noise of the trainings themselves, which resampling the test images
does not see). How far to believe it was measured: benchmarks/label_efficiency.py, docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

MIN_POINTS = 3  # three parameters: fewer points do not fit a curve
BOOTSTRAP = 200
INTERVAL = (10, 90)  # percentiles: an 80% interval
FLAT = 0.01  # a doubling forecast to add less than this: the curve has flattened


def power_law(n, top: float, gap: float, rate: float):
    return top - gap * np.power(np.asarray(n, dtype=float), -rate)


@dataclass
class CurveFit:
    """An inverse power law fitted to (labels, score) points, and what it forecasts for twice the labels."""

    top: float
    gap: float
    rate: float
    labels: float  # the most labels measured
    now: float  # the fitted score there
    doubled: float  # the fitted score at twice as many
    low: float | None = None  # the interval of (doubled - now); None where there was nothing to resample
    high: float | None = None

    def __call__(self, n) -> np.ndarray:
        return power_law(n, self.top, self.gap, self.rate)

    @property
    def gain(self) -> float:
        return self.doubled - self.now

    @property
    def flat(self) -> bool:
        return self.gain < FLAT

    def words(self, score: str = "object F1", unit: str = "labelled objects", where: str = "your test images") \
            -> str:
        """The forecast in a sentence."""
        interval = "" if self.low is None else f" ({max(self.low, -1):.2f} to {self.high:.2f})"
        if self.flat:
            return (f"The curve has flattened: twice the {unit} would change {score} on {where} by about "
                    f"{self.gain:+.2f}{interval}. More of the same labels will not help much; label different "
                    f"images (other conditions, the kinds the model gets wrong).")
        return (f"Twice the {unit} (about {2 * self.labels:.0f}) would raise {score} on {where} by about "
                f"{self.gain:.2f}{interval}, to about {self.doubled:.2f}.")


RATES = np.geomspace(0.02, 3.0, 80)  # the rates tried; then a finer grid around the best


def _fit_rates(n: np.ndarray, y: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each rate, the least-squares top and gap (linear once the rate is fixed), within 0 <= gap and
    top <= 1; and the squared error of each."""
    x = np.power(n[None, :], -rates[:, None])  # (rates, points)
    xm, ym = x.mean(1), y.mean()
    var = ((x - xm[:, None]) ** 2).sum(1)
    gap = -((x - xm[:, None]) * (y - ym)).sum(1) / np.where(var > 0, var, 1)
    gap = np.clip(gap, 0, None)
    top = ym + gap * xm
    over = top > 1  # a score cannot pass 1: the best gap with the top at 1
    if over.any():
        top[over] = 1.0
        gap[over] = np.clip(((1 - y)[None, :] * x[over]).sum(1) / (x[over] ** 2).sum(1), 0, None)
    sse = ((top[:, None] - gap[:, None] * x - y[None, :]) ** 2).sum(1)
    return top, gap, sse


def _fit(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(top, gap, rate) of least squares: closed form for each rate on a grid, then a finer grid around the best
    (milliseconds: the bootstrap fits hundreds, and the dock fits on its main thread)."""
    top, gap, sse = _fit_rates(n, y, RATES)
    i = int(np.argmin(sse))
    fine = np.geomspace(RATES[max(i - 1, 0)], RATES[min(i + 1, len(RATES) - 1)], 41)
    top, gap, sse = _fit_rates(n, y, fine)
    i = int(np.argmin(sse))
    return float(top[i]), float(gap[i]), float(fine[i])


def fit_curve(labels, scores, seed: int = 0) -> CurveFit:
    """Fit `scores` against `labels` (one number of labels per point).

    `scores`: one score per point, or per point one score per test image (the same images at every point, in
    the same order: the interval then comes from resampling them). Scores live in [0, 1] (F1,
    IoU, accuracy). Raises DataError with fewer than ``MIN_POINTS`` different numbers of labels."""
    n = np.asarray(labels, dtype=float)
    per_image = [np.atleast_1d(np.asarray(s, dtype=float)) for s in scores]
    if len(per_image) != len(n):
        raise DataError("A learning curve needs one score (or one row of scores) per number of labels.")
    if len(set(n.tolist())) < MIN_POINTS or (n <= 0).any():
        raise DataError(f"A learning curve needs at least {MIN_POINTS} different numbers of labels (each above 0); "
                        f"there are {len(set(n[n > 0].tolist()))}.")
    y = np.array([np.nanmean(s) if np.isfinite(s).any() else np.nan for s in per_image])
    if len({len(s) for s in per_image}) == 1 and len(per_image[0]) > 1:
        # A test image without a score at some point (e.g. no object to find) is left out of the resampling.
        table = np.stack(per_image)
        kept = np.isfinite(table).all(0)
        per_image = list(table[:, kept]) if kept.sum() > 1 else [np.atleast_1d(v) for v in y]
    if not np.isfinite(y).all():
        raise DataError("A learning curve needs a score at every point; one has none (no test image scored).")
    top, gap, rate = _fit(n, y)
    most = float(n.max())
    fit = CurveFit(top, gap, rate, most, 0.0, 0.0)
    fit.now, fit.doubled = float(fit(most)), float(fit(2 * most))
    gains = _bootstrap(n, y, per_image, seed)
    if gains is not None:
        fit.low, fit.high = (float(v) for v in np.nanpercentile(gains, INTERVAL))
    return fit


def _bootstrap(n, y, per_image, seed) -> np.ndarray | None:
    """The forecast gain refitted to resampled data: the test images resampled together where every point has
    them, and, with more points than the curve's parameters, the fit's residuals added back at random (scaled up
    for the parameters fitted), which holds the noise of the trainings themselves; None with nothing to resample."""
    rng = np.random.default_rng(seed)
    sizes = {len(s) for s in per_image}
    paired = len(sizes) == 1 and sizes.pop() > 1
    spare = len(n) - MIN_POINTS
    if not paired and spare <= 0:
        return None
    residuals = y - power_law(n, *_fit(n, y))
    inflate = np.sqrt(len(n) / spare) if spare > 0 else 0.0
    table = np.stack(per_image) if paired else None  # (points, images)
    gains = []
    for _ in range(BOOTSTRAP):
        if paired:
            pick = rng.integers(0, table.shape[1], table.shape[1])
            yb = np.nanmean(table[:, pick], 1)
        else:
            yb = y.copy()
        if spare > 0:
            yb = yb + inflate * rng.choice(residuals, len(n))
        gains.append(_gain(n, np.clip(yb, 0, 1)))
    return np.asarray(gains)


def _gain(n, y) -> float:
    params = _fit(n, y)
    most = n.max()
    return float(power_law(2 * most, *params) - power_law(most, *params))
