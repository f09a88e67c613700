"""Estimates with 95% intervals, and the sentence that says what they mean.

Every number a notebook asks a reader to believe comes with its uncertainty: a
share of successes (stop rate, reward accuracy, agreement) gets a Wilson score
interval, a mean or a difference of means (judge scores, reply lengths, win
rates with ties) a percentile bootstrap interval. :meth:`Interval.interpret`
turns an interval and the value that would mean "no effect" (chance, zero, the
baseline) into one line: above it, below it, or *no evidence either way* when
the interval covers it. Prose in the notebooks never states a result that a
line printed by this module does not show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = CONFIDENCE

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def relation_to(self, value: float) -> str:
        """``"above"``, ``"below"`` or ``"covers"``: where the whole interval lies relative to ``value``."""
        if self.low > value:
            return "above"
        if self.high < value:
            return "below"
        return "covers"

    def format(self, digits: int = 2) -> str:
        """``0.74 (95% CI 0.63 to 0.83, n=70)``."""
        level = round(100 * self.confidence)
        return f"{self.estimate:.{digits}f} ({level}% CI {self.low:.{digits}f} to {self.high:.{digits}f}, n={self.n})"

    def interpret(
        self, name: str, null: float, *, above: str, below: str, digits: int = 2, null_name: str | None = None
    ) -> str:
        """One line: the estimate, its interval and what it means relative to ``null``.

        ``above``/``below`` say what it would mean for the whole interval to lie above/below ``null``;
        when the interval covers ``null`` the line says there is no evidence either way.
        """
        where = null_name or f"{null:.{digits}f}"
        relation = self.relation_to(null)
        if relation == "above":
            meaning = f"above {where}: {above}"
        elif relation == "below":
            meaning = f"below {where}: {below}"
        else:
            meaning = f"the interval covers {where}: no evidence either way"
        return f"{name} {self.format(digits)}: {meaning}"

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "n": self.n, "method": self.method}


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, *, confidence: float = CONFIDENCE) -> Interval:
    r"""Wilson score interval for a proportion (good at small n and at 0 or n successes).

    .. math::

        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}
             {1 + \frac{z^2}{n}}
    """
    if n <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, where rounding would leave 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, n, "Wilson", confidence)


def proportion(flags: Sequence[bool], *, confidence: float = CONFIDENCE) -> Interval:
    """Wilson interval of the share of true ``flags``."""
    flags = list(flags)
    return wilson(sum(bool(f) for f in flags), len(flags), confidence=confidence)


def bootstrap(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampling items with replacement)."""
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        raise ValueError("no values to estimate from")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, data.size, size=(resamples, data.size))
    replicates = np.array([statistic(data[row]) for row in draws])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return Interval(float(statistic(data)), float(low), float(high), int(data.size), "bootstrap", confidence)


def paired_difference(a: Sequence[float], b: Sequence[float], **kwargs) -> Interval:
    """Bootstrap interval of the mean of ``a[i] - b[i]`` (the same items measured twice)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples must have equal length, got {len(a)} and {len(b)}")
    return bootstrap([x - y for x, y in zip(a, b)], **kwargs)


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Agreement of two raters beyond chance: (p_o - p_e) / (1 - p_e); 1 is perfect, 0 is chance."""
    first, second = list(first), list(second)
    if len(first) != len(second) or not first:
        raise ValueError("kappa needs two equally long, non-empty lists of labels")
    labels = set(first) | set(second)
    observed = sum(x == y for x, y in zip(first, second)) / len(first)
    expected = sum((first.count(v) / len(first)) * (second.count(v) / len(second)) for v in labels)
    return (observed - expected) / (1 - expected) if expected < 1 else float("nan")


def kappa_interval(first: Sequence[str], second: Sequence[str], **kwargs) -> Interval:
    """Cohen's kappa with a bootstrap interval over items."""
    pairs = list(zip(first, second))
    index = np.arange(len(pairs))

    def statistic(rows: np.ndarray) -> float:
        chosen = [pairs[int(i)] for i in rows]
        value = cohen_kappa([x for x, _ in chosen], [y for _, y in chosen])
        return 0.0 if math.isnan(value) else value

    return bootstrap(index, statistic, **kwargs)
