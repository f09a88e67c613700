"""Intervals and their interpretation lines: known values, edge cases, and the sentence they print."""

import math

import numpy as np
import pytest

from zephyr_tutorial.stats import (
    Interval,
    bootstrap,
    cohen_kappa,
    kappa_interval,
    paired_difference,
    proportion,
    wilson,
)


def test_wilson_matches_published_values():
    # Wilson score intervals, 95%: 0/10 -> [0, 0.2775], 10/10 -> [0.7225, 1], 5/10 -> [0.2366, 0.7634]
    assert wilson(0, 10).high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10).low == pytest.approx(0.7225, abs=1e-4)
    half = wilson(5, 10)
    assert (half.low, half.high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 10).low == 0 and wilson(10, 10).high == 1
    assert wilson(81, 100).method == "Wilson"


def test_wilson_narrows_with_more_trials():
    assert wilson(80, 100).high - wilson(80, 100).low < wilson(8, 10).high - wilson(8, 10).low


@pytest.mark.parametrize(("successes", "n"), [(1, 0), (-1, 5), (6, 5)])
def test_wilson_rejects_impossible_counts(successes, n):
    with pytest.raises(ValueError):
        wilson(successes, n)


def test_proportion_counts_true_flags():
    interval = proportion([True, False, True, True])
    assert interval.estimate == 0.75 and interval.n == 4


def test_bootstrap_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    small_interval, large_interval = bootstrap(small), bootstrap(large)
    assert small_interval.low < small.mean() < small_interval.high
    assert large_interval.high - large_interval.low < small_interval.high - small_interval.low
    assert large_interval.covers(1.0)
    with pytest.raises(ValueError):
        bootstrap([])


def test_paired_difference_sees_a_shift_that_unpaired_noise_would_hide():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 5, 200)
    shifted = base + 0.5 + rng.normal(0, 0.1, 200)
    difference = paired_difference(shifted, base)
    assert difference.relation_to(0.0) == "above"
    assert difference.covers(0.5)
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1])


def test_cohen_kappa():
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0
    assert cohen_kappa(["a", "b"], ["b", "a"]) == -1
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))
    interval = kappa_interval(["a", "b"] * 30, ["a", "b"] * 30)
    assert interval.estimate == 1 and interval.low == 1


def test_interpret_says_above_below_or_no_evidence():
    above = Interval(0.8, 0.7, 0.9, 50, "Wilson")
    covers = Interval(0.55, 0.4, 0.7, 50, "Wilson")
    below = Interval(0.2, 0.1, 0.3, 50, "Wilson")
    line = above.interpret("reward accuracy", 0.5, above="ranks as the judge did", below="ranks the other way")
    assert line.startswith("reward accuracy 0.80 (95% CI 0.70 to 0.90, n=50): above 0.50: ranks as the judge did")
    assert "no evidence either way" in covers.interpret("x", 0.5, above="a", below="b")
    assert "below chance: b" in below.interpret("x", 0.5, above="a", below="b", null_name="chance")
