"""Figures of notebook 04 (feedback)."""

from __future__ import annotations


def plot_rating_distributions(
    scores_by_policy: dict, aspects=("instruction_following", "honesty", "truthfulness", "helpfulness")
):
    """One panel per aspect: box plots of the judge's 1-5 ratings per policy (``feedback.scores_by_policy`` output)."""
    import matplotlib.pyplot as plt

    policies = list(scores_by_policy)
    fig, axes = plt.subplots(1, len(aspects), figsize=(3.2 * len(aspects), 3.2), sharey=True)
    for ax, aspect in zip(axes, aspects):
        ax.boxplot([scores_by_policy[p].get(aspect, []) for p in policies], showmeans=True)
        ax.set_xticks(range(1, len(policies) + 1), policies, rotation=35, ha="right")
        ax.set_title(aspect.replace("_", " "))
        ax.set_ylim(0.8, 5.2)
    axes[0].set_ylabel("rating (1-5)")
    fig.tight_layout()
    return fig


def plot_score_margins(pairs, *, bins: int = 20):
    """Histogram of ``score_chosen - score_rejected`` over preference pairs, with the median marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    margins = np.array([row["score_chosen"] - row["score_rejected"] for row in pairs], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(margins, bins=bins, color="tab:green", alpha=0.8)
    if len(margins):
        ax.axvline(float(np.median(margins)), color="black", linestyle="--", label=f"median {np.median(margins):.2f}")
        ax.legend()
    ax.set_xlabel("score(chosen) - score(rejected)")
    ax.set_ylabel("pairs")
    ax.set_title(f"Chosen-rejected margins ({len(margins)} pairs)")
    fig.tight_layout()
    return fig


def plot_aspect_correlations(matrix, aspects=("instruction_following", "honesty", "truthfulness", "helpfulness")):
    """Heatmap of the Pearson correlations between aspect ratings, values written in the cells."""
    import matplotlib.pyplot as plt

    labels = [a.replace("_", "\n") for a in aspects]
    fig, ax = plt.subplots(figsize=(4.6, 4))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="coolwarm")
    ax.set_xticks(range(len(aspects)), labels, fontsize=8)
    ax.set_yticks(range(len(aspects)), labels, fontsize=8)
    for i in range(len(aspects)):
        for j in range(len(aspects)):
            ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Agreement between aspects")
    fig.tight_layout()
    return fig


def plot_chosen_policies(pairs):
    """Two bar panels: how often each policy's completion was chosen, and how often it was rejected."""
    from collections import Counter

    import matplotlib.pyplot as plt

    chosen = Counter(row["policy_chosen"] for row in pairs)
    rejected = Counter(row["policy_rejected"] for row in pairs)
    policies = sorted(set(chosen) | set(rejected))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 0.8 + 0.45 * len(policies)), sharey=True)
    left.barh(policies, [chosen[p] for p in policies], color="tab:blue")
    left.set_xlabel("times chosen")
    right.barh(policies, [rejected[p] for p in policies], color="tab:red")
    right.set_xlabel("times rejected")
    left.invert_yaxis()
    fig.tight_layout()
    return fig
