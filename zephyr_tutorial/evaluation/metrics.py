"""Summaries of judgments: win rate with its standard error, length-controlled win rate, mean score, agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..stats import Interval, bootstrap, proportion

VERDICTS = ("a", "b", "tie")
LENGTH_CONTROLLED_LABEL = (
    "length-controlled win rate (simplified AlpacaEval 2 LC: no instruction-difficulty term, no regularisation)"
)
"""How to label :func:`length_controlled_win_rate` wherever it is printed or plotted."""


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float
    n: int


@dataclass(frozen=True)
class WinRate(Estimate):
    wins: int = 0
    ties: int = 0
    losses: int = 0


def preference_scores(verdicts: Sequence[str], side: str = "a") -> np.ndarray:
    """1 when ``side`` wins, 0.5 for a tie, 0 when it loses."""
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', got {side!r}")
    unknown = [v for v in verdicts if v not in VERDICTS]
    if unknown:
        raise ValueError(f"verdicts must be one of {VERDICTS}, got {unknown[:3]}")
    return np.array([1.0 if v == side else 0.5 if v == "tie" else 0.0 for v in verdicts])


def _mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    if len(values) == 0:
        return float("nan"), float("nan")
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), stderr


def win_rate(verdicts: Sequence[str], side: str = "a") -> WinRate:
    """Win rate of ``side``, ties counted as half a win, with the standard error of the mean.

    .. math::  \\mathrm{WR} = \\frac{1}{n}\\sum_i s_i,\\quad s_i \\in \\{0, \\tfrac12, 1\\},\\qquad
               \\mathrm{SE} = \\frac{\\operatorname{std}(s)}{\\sqrt{n}}
    """
    scores = preference_scores(verdicts, side)
    value, stderr = _mean_and_stderr(scores)
    return WinRate(
        value, stderr, len(scores), int((scores == 1).sum()), int((scores == 0.5).sum()), int((scores == 0).sum())
    )


def _fit_soft_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 100) -> np.ndarray:
    """Newton's method for ``p = sigmoid(w0 + w1 x)`` with soft labels ``y`` in [0, 1] and a small L2 penalty."""
    features = np.column_stack([np.ones_like(x), x])
    weights = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-features @ weights))
        gradient = features.T @ (p - y) + l2 * weights
        hessian = (features * (p * (1 - p))[:, None]).T @ features + l2 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    return weights


def length_controlled_win_rate(
    verdicts: Sequence[str],
    length_a: Sequence[int],
    length_b: Sequence[int],
    *,
    side: str = "a",
    bootstrap: int = 200,
    seed: int = 0,
) -> Estimate:
    """Win rate of ``side`` predicted at zero length difference: a **simplified variant** of AlpacaEval 2's
    length-controlled win rate, not the published metric (print it with :data:`LENGTH_CONTROLLED_LABEL`).

    Dubois et al. (2024, "Length-Controlled AlpacaEval", arXiv:2404.04475) fit a
    GLM to the judge's preferences with a length term and report the win rate
    with that term set to zero. Their GLM also has an instruction-difficulty term (fitted across all the
    leaderboard's models) and regularises its weights; this variant omits both, so its numbers are not
    comparable with AlpacaEval 2's LC win rates. With two fixed systems and no difficulty term the GLM reduces
    to a logistic regression on the standardized length difference

    .. math::  P(\\text{side wins}) =
               \\sigma\\big(\\beta_0 + \\beta_1 \\tanh(\\Delta\\ell / \\operatorname{std}(\\Delta\\ell))\\big),
               \\qquad \\mathrm{LC} = \\sigma(\\beta_0),

    fitted on soft labels (tie = 0.5). Its standard error is a bootstrap over items.
    """
    scores = preference_scores(verdicts, side)
    if not len(scores) == len(length_a) == len(length_b):
        raise ValueError("verdicts, length_a and length_b must have the same length")
    sign = 1.0 if side == "a" else -1.0
    difference = sign * (np.asarray(length_a, float) - np.asarray(length_b, float))

    def estimate(indices: np.ndarray) -> float:
        d = difference[indices]
        spread = d.std()
        x = np.tanh(d / spread) if spread > 0 else np.zeros_like(d)
        return float(1 / (1 + np.exp(-_fit_soft_logistic(x, scores[indices])[0])))

    everything = np.arange(len(scores))
    rng = np.random.default_rng(seed)
    resampled = [estimate(rng.integers(0, len(scores), len(scores))) for _ in range(bootstrap)]
    return Estimate(
        estimate(everything), float(np.std(resampled, ddof=1)) if bootstrap > 1 else float("nan"), len(scores)
    )


def mean_score(scores: Sequence[float]) -> Estimate:
    """MT-Bench style mean of 1-10 ratings with its standard error (parse failures must be left out by the caller)."""
    values = np.asarray(scores, float)
    value, stderr = _mean_and_stderr(values)
    return Estimate(value, stderr, len(values))


@dataclass(frozen=True)
class Agreement:
    rate: float
    """Share of pairs where judge and human give the same verdict (a, b or tie)."""
    rate_without_ties: float
    """The same over pairs where the human did not call a tie (MT-Bench's "w/o tie" agreement)."""
    n: int
    n_without_ties: int
    cohen_kappa: float
    """Agreement corrected for chance: (p_o - p_e) / (1 - p_e)."""


def agreement(judge: Sequence[str], human: Sequence[str]) -> Agreement:
    """How often the judge's verdicts match the human labels, pair by pair."""
    judge, human = list(judge), list(human)
    if len(judge) != len(human):
        raise ValueError(f"{len(judge)} judge verdicts but {len(human)} human labels")
    if not judge:
        raise ValueError("no pairs to compare")
    preference_scores(judge), preference_scores(human)  # validates both
    same = [j == h for j, h in zip(judge, human)]
    decided = [s for s, h in zip(same, human) if h != "tie"]
    observed = sum(same) / len(same)
    expected = sum((judge.count(v) / len(judge)) * (human.count(v) / len(human)) for v in VERDICTS)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else float("nan")
    return Agreement(observed, sum(decided) / len(decided) if decided else float("nan"), len(same), len(decided), kappa)


@dataclass(frozen=True)
class JudgeDrift:
    """How far two versions of "the same" judge (float32 and NF4 weights, two API snapshots) disagree on one set
    of single-graded answers ``"<pair id>:a|b"``."""

    rating_change: Interval
    """Mean of ``|rating(second) - rating(first)|`` over the answers both rated, bootstrap interval."""
    changed_preferences: Interval
    """Share of pairs whose preferred answer (the higher-rated one; equal ratings: a tie) differs, Wilson interval."""
    pairs: int

    def interpret(self) -> str:
        changed = round(self.changed_preferences.estimate * self.pairs)
        return (
            f"mean rating change {self.rating_change.format(3)}; the preferred answer changes on {changed} of "
            f"{self.pairs} pairs ({self.changed_preferences.format()}): "
            + (
                "a verdict depends on the weights, not only on the judge's name"
                if self.changed_preferences.low > 0
                else "no change in verdicts beyond chance on this sample"
            )
        )


def judge_drift(first: Sequence, second: Sequence) -> JudgeDrift:
    """:class:`JudgeDrift` between two lists of :class:`~zephyr_tutorial.evaluation.items.SingleJudgment` of the same
    answers (ids ``"<pair id>:a"`` and ``":b"``, as :func:`~zephyr_tutorial.evaluation.items.single_items_from_pairs`
    makes them). Answers either judge failed to rate are left out; a pair counts when both its answers are rated by
    both."""
    ratings = [
        {j.id: j.rating for j in judgments if j.rating is not None} for judgments in (first, second)
    ]  # fmt: skip
    both = sorted(set(ratings[0]) & set(ratings[1]))
    if not both:
        raise ValueError("no answer was rated by both judges")
    if len(set(j.id for j in first)) != len(first) or len(set(j.id for j in second)) != len(second):
        raise ValueError("an answer id appears twice in one judge's list")

    def preferred(rated: dict, pair: str) -> str:
        a, b = rated[f"{pair}:a"], rated[f"{pair}:b"]
        return "a" if a > b else "b" if b > a else "tie"

    rated = set(both)
    pairs = [p for p in sorted({i.rsplit(":", 1)[0] for i in both}) if {f"{p}:a", f"{p}:b"} <= rated]
    changes = [abs(ratings[1][i] - ratings[0][i]) for i in both]
    changed = [preferred(ratings[0], p) != preferred(ratings[1], p) for p in pairs]
    return JudgeDrift(bootstrap(changes), proportion(changed), len(pairs))
