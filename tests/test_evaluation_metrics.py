"""Win rates with standard errors, the length-controlled win rate, mean scores and agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zephyr_tutorial.evaluation import (
    agreement,
    length_controlled_win_rate,
    mean_score,
    win_rate,
)


def test_win_rate_counts_ties_as_half_and_reports_standard_error():
    rate = win_rate(["a", "a", "b", "tie"])
    assert rate.value == pytest.approx(2.5 / 4)
    assert rate.stderr == pytest.approx(np.std([1, 1, 0, 0.5], ddof=1) / 2)
    assert (rate.wins, rate.ties, rate.losses) == (2, 1, 1)
    assert win_rate(["a", "a", "b", "tie"], side="b").value == pytest.approx(1.5 / 4)
    with pytest.raises(ValueError):
        win_rate(["a", "left"])


def test_length_controlled_win_rate_removes_a_pure_length_preference():
    rng = np.random.default_rng(0)
    difference = rng.normal(0, 100, 400)
    # the judge only rewards length: P(a wins) = sigmoid(3 * tanh(diff / std)), 0.5 at equal lengths
    p = 1 / (1 + np.exp(-3 * np.tanh(difference / difference.std())))
    verdicts = np.where(rng.random(400) < p, "a", "b").tolist()
    length_b = np.full(400, 500)
    length_a = length_b + difference.round().astype(int)
    # skew the sample so that A is usually longer: the raw win rate rises, the length-controlled one does not
    keep = [i for i in range(400) if difference[i] > 0 or i % 5 == 0]
    pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
    raw = win_rate(pick(verdicts)).value
    controlled = length_controlled_win_rate(pick(verdicts), pick(length_a), pick(length_b), bootstrap=50)
    assert raw > 0.65
    assert abs(controlled.value - 0.5) < 0.08
    assert 0 < controlled.stderr < 0.1


def test_length_controlled_equals_raw_when_lengths_are_equal():
    verdicts = ["a"] * 7 + ["b"] * 3
    controlled = length_controlled_win_rate(verdicts, [10] * 10, [10] * 10, bootstrap=0)
    assert controlled.value == pytest.approx(0.7, abs=1e-3)


def test_mean_score_and_agreement():
    score = mean_score([8, 6, 7])
    assert score.value == pytest.approx(7) and score.stderr == pytest.approx(1 / math.sqrt(3))
    result = agreement(["a", "b", "tie", "a"], ["a", "a", "tie", "a"])
    assert result.rate == 0.75
    assert result.rate_without_ties == pytest.approx(2 / 3) and result.n_without_ties == 3
    perfect = agreement(["a", "b", "tie"], ["a", "b", "tie"])
    assert perfect.cohen_kappa == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2 judge verdicts but 1"):
        agreement(["a", "b"], ["a"])


def test_the_length_controlled_win_rate_says_it_is_a_simplified_variant():
    from zephyr_tutorial.evaluation import LENGTH_CONTROLLED_LABEL

    for text in (LENGTH_CONTROLLED_LABEL, length_controlled_win_rate.__doc__):
        assert "simplified" in text and "instruction-difficulty" in text and "regularis" in text
