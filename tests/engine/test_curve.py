"""Learning curves (engine.curve, workflows.curve): the fit recovers a known power law, the forecast says what
twice the labels would give with an interval, nested subsets are nested, and too little data is said plainly."""

import numpy as np
import pytest

from napari_mia.engine.curve import fit_curve, power_law
from napari_mia.engine.errors import DataError
from napari_mia.engine.rounds import Round
from napari_mia.workflows.curve import forecast_from_rounds, nested_subsets, subset_sizes

TRUTH = (0.9, 1.2, 0.6)  # top, gap, rate
LABELS = np.array([10, 20, 40, 80, 160])


def test_the_fit_recovers_a_known_power_law():
    exact = fit_curve(LABELS, [power_law(n, *TRUTH) for n in LABELS])
    assert np.allclose((exact.top, exact.gap, exact.rate), TRUTH, rtol=1e-2)
    assert exact.doubled == pytest.approx(power_law(320, *TRUTH), abs=1e-3)


def test_with_noisy_test_images_the_interval_holds_the_true_gain():
    rng = np.random.default_rng(0)
    # The same 40 test images at every point: each has its own difficulty, and a little noise per training.
    difficulty = rng.normal(0, 0.1, 40)
    per_image = [power_law(n, *TRUTH) + difficulty + rng.normal(0, 0.01, 40) for n in LABELS]
    fit = fit_curve(LABELS, per_image, seed=0)
    true_gain = power_law(320, *TRUTH) - power_law(160, *TRUTH)
    assert fit.top == pytest.approx(TRUTH[0], abs=0.05)
    assert fit.low is not None and fit.low <= true_gain <= fit.high and fit.high - fit.low < 0.05
    words = fit.words()
    assert words.startswith("Twice the labelled objects (about 320) would raise object F1") and "to about" in words


def test_a_flat_curve_says_to_label_different_images():
    fit = fit_curve([8, 16, 32, 64], [0.50, 0.60, 0.61, 0.60])
    assert fit.flat and "The curve has flattened" in fit.words() and "label different images" in fit.words()


def test_too_few_points_are_refused_plainly():
    with pytest.raises(DataError, match="at least 3 different numbers of labels"):
        fit_curve([10, 10, 20], [0.1, 0.2, 0.3])


def test_nested_subsets_are_nested_and_keep_every_class():
    names = [f"{i:02d}.tif" for i in range(16)]
    subsets = nested_subsets(names, seed=1)
    assert [len(s) for s in subsets] == subset_sizes(16) == [2, 4, 8, 16]
    assert all(set(a) <= set(b) for a, b in zip(subsets, subsets[1:]))
    groups = ["a"] * 12 + ["b"] * 4  # few of one class: a small subset still holds both
    assert {groups[names.index(n)] for n in nested_subsets(names, 1, groups)[0]} == {"a", "b"}
    with pytest.raises(DataError, match="at least 4 labelled images; there are 3"):
        nested_subsets(names[:3])


def _round(number, objects, score, test_data=("t1", "t2")):
    return Round(number=number, images=objects // 10, objects=objects, test={"object_f1": score, "images": 2},
                 test_data=list(test_data))


def test_the_rounds_forecast_needs_three_rounds_on_the_same_test_pairs():
    rounds = [_round(1, 20, 0.5), _round(2, 40, 0.62)]
    fit, words = forecast_from_rounds(rounds, "object_f1", "object F1", "labelled objects")
    assert fit is None and "after 3 rounds" in words and "(2 so far)" in words
    rounds.append(_round(3, 80, 0.7, test_data=("t9",)))  # scored on other test pairs: only it counts
    assert forecast_from_rounds(rounds, "object_f1", "object F1", "labelled objects")[0] is None
    rounds = [_round(1, 20, 0.5), _round(2, 40, 0.62), _round(3, 80, 0.7), _round(4, 160, 0.74)]
    fit, words = forecast_from_rounds(rounds, "object_f1", "object F1", "labelled objects")
    assert fit is not None and fit.labels == 160 and 0 < fit.gain < 0.1
    assert words.startswith("Forecast: ") and "your test pairs" in words
