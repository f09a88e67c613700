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


def test_judge_drift_counts_pairs_whose_preferred_answer_changes():
    from zephyr_tutorial.evaluation import judge_drift
    from zephyr_tutorial.evaluation.items import SingleJudgment

    def judged(ratings):
        return [SingleJudgment(i, r, None if r is not None else "unparsed", "") for i, r in ratings.items()]

    fp32 = judged({"p1:a": 5.0, "p1:b": 4.0, "p2:a": 3.0, "p2:b": 3.5, "p3:a": 6.0, "p3:b": 6.0, "p4:a": 2.0,
                   "p4:b": None})  # fmt: skip
    nf4 = judged({"p1:a": 4.5, "p1:b": 4.9, "p2:a": 3.1, "p2:b": 3.6, "p3:a": 6.0, "p3:b": 5.0, "p4:a": 2.0,
                  "p4:b": 1.0})  # fmt: skip
    drift = judge_drift(fp32, nf4)
    assert drift.pairs == 3  # p4 is left out: fp32 could not rate its b answer
    assert drift.changed_preferences.estimate == pytest.approx(2 / 3)  # p1 a -> b, p3 tie -> a; p2 stays b
    changes = [0.5, 0.9, 0.1, 0.1, 0.0, 1.0, 0.0]  # every answer both rated, p4:a included
    assert drift.rating_change.estimate == pytest.approx(sum(changes) / len(changes))
    assert "2 of 3 pairs" in drift.interpret()
    assert judge_drift(fp32, fp32).changed_preferences.estimate == 0.0
    with pytest.raises(ValueError, match="appears twice"):
        judge_drift(fp32 + fp32[:1], nf4)
    with pytest.raises(ValueError, match="no answer was rated by both"):
        judge_drift(judged({"x:a": None}), nf4)
