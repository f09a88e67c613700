"""Figures of notebook 01 (evaluation)."""

from __future__ import annotations


def plot_win_rates(names, rates, stderrs, *, title="Win rate of output A (ties = half a win)"):
    """Horizontal bars of win rates with ±1 standard-error bars and the 50% line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.5 * len(names)))
    ax.barh(list(names), list(rates), xerr=list(stderrs), color="tab:blue", alpha=0.8, capsize=4)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def plot_position_bias(names, flip_rates, first_position_rates):
    """Two panels: share of pairs whose verdict flips under swap, and share of picks of the first-shown answer."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 0.8 + 0.5 * len(names)), sharey=True)
    left.barh(list(names), list(flip_rates), color="tab:orange")
    left.set_xlim(0, 1)
    left.set_xlabel("flip rate under position swap")
    right.barh(list(names), list(first_position_rates), color="tab:purple")
    right.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    right.set_xlim(0, 1)
    right.set_xlabel("share of picks: first-shown answer")
    left.invert_yaxis()
    fig.tight_layout()
    return fig


def plot_agreement(names, rates, rates_without_ties, *, chance=None):
    """Judge-human agreement per judge, over all pairs and over pairs the human did not call a tie."""
    import matplotlib.pyplot as plt
    import numpy as np

    positions = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(positions - 0.2, list(rates), width=0.4, label="all pairs")
    ax.bar(positions + 0.2, list(rates_without_ties), width=0.4, label="without human ties")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance (3 verdicts)")
    ax.set_xticks(positions, list(names))
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with human labels")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_mc_accuracy_by_category(reports, *, chance=None):
    """Grouped bars: accuracy per category for each ``{name: MCReport}``."""
    import matplotlib.pyplot as plt
    import numpy as np

    categories = sorted({c for r in reports.values() for c in r.accuracy_by_category()})
    positions = np.arange(len(categories))
    width = 0.8 / max(len(reports), 1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k, (name, report) in enumerate(reports.items()):
        by_category = report.accuracy_by_category()
        ax.bar(
            positions + (k - (len(reports) - 1) / 2) * width,
            [by_category.get(c, (0.0, 0))[0] for c in categories],
            width=width,
            label=name,
        )
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(positions, categories)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_mc_margins(report):
    """Per-item log-likelihood margin: log p(correct) minus the best wrong choice; right of 0 = answered right."""
    import matplotlib.pyplot as plt

    margins = [r.margin for r in report.items]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist([m for m in margins if m > 0], bins=15, color="tab:green", alpha=0.8, label="correct")
    ax.hist([m for m in margins if m <= 0], bins=15, color="tab:red", alpha=0.8, label="wrong")
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel("log p(correct) − max log p(wrong)")
    ax.set_ylabel("items")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_single_ratings(groups, *, low=1, high=10, title="MT-Bench single-answer ratings"):
    """One column per ``{group name: ratings}``: every rating as a dot, the mean with ±1 standard-error bars."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(groups), 3.5))
    spread = np.random.default_rng(0)  # fixed horizontal jitter, so that equal ratings do not hide each other
    for position, ratings in enumerate(groups.values()):
        ratings = np.asarray(list(ratings), float)
        ax.scatter(position + spread.uniform(-0.15, 0.15, len(ratings)), ratings, s=14, alpha=0.6, color="tab:blue")
        stderr = ratings.std(ddof=1) / np.sqrt(len(ratings)) if len(ratings) > 1 else 0.0
        ax.errorbar(position + 0.3, ratings.mean(), yerr=stderr, fmt="o", color="black", capsize=4)
    ax.set_xticks(range(len(groups)), list(groups), rotation=15, ha="right")
    ax.set_ylim(low - 0.5, high + 0.5)
    ax.set_ylabel(f"rating ({low}-{high})")
    ax.set_title(title)
    fig.tight_layout()
    return fig
