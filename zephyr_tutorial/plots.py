"""Plotting functions of the notebooks: plain functions that take data and return a matplotlib Figure.

They are tested in pytest (the figure holds the expected data) and used by the
notebooks and by the ipywidgets views. One section per notebook; each function
creates its own figure and never calls ``plt.show()`` (Jupyter displays the
returned figure).
"""

from __future__ import annotations

# --- setup (notebook 00) ---


def plot_parameter_breakdown(breakdown: dict[str, int], title: str = "Where the parameters are"):
    """Horizontal bars of parameter counts (millions) per kind of block, from ``models.parameter_breakdown``."""
    import matplotlib.pyplot as plt

    names = [name for name, count in breakdown.items() if count]
    millions = [breakdown[name] / 1e6 for name in names]
    fig, ax = plt.subplots(figsize=(6, 2.5))
    bars = ax.barh(names, millions, color="#4C72B0")
    ax.bar_label(bars, labels=[f"{m:.1f}M" for m in millions], padding=3)
    ax.set_xlabel("parameters (millions)")
    ax.set_title(title)
    ax.invert_yaxis()
    ax.set_xlim(0, max(millions) * 1.2)
    fig.tight_layout()
    return fig


# --- evaluation (notebook 01) ---


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
        ax.bar(positions + (k - (len(reports) - 1) / 2) * width,
               [by_category.get(c, (0.0, 0))[0] for c in categories], width=width, label=name)
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

# --- generation (notebook 02) ---


def plot_turn_lengths(dialogue_sets: dict, bins: int = 30):
    """Histograms of words per message, user and assistant side by side, one colour per dataset.

    ``dialogue_sets`` maps a name to rows with ``messages``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=False)
    for ax, role in zip(axes, ("user", "assistant")):
        for name, rows in dialogue_sets.items():
            lengths = [len(m["content"].split()) for r in rows for m in r["messages"] if m["role"] == role]
            ax.hist(lengths, bins=bins, alpha=0.55, label=f"{name} (n={len(lengths)})")
        ax.set_xlabel(f"words per {role} message")
        ax.set_ylabel("messages")
        ax.legend(fontsize=8)
    fig.suptitle("Turn lengths")
    fig.tight_layout()
    return fig


def plot_similarity_histograms(scores: dict, threshold: float | None = 0.7, bins: int = 20):
    """Histograms of pairwise ROUGE-L per strategy (``scores`` maps a name to a list in [0, 1])."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    edges = [i / bins for i in range(bins + 1)]
    for name, values in scores.items():
        ax.hist(values, bins=edges, alpha=0.55, density=True, label=f"{name} (mean {sum(values) / max(len(values), 1):.2f})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"self-instruct cut-off {threshold}")
    ax.set_xlabel("ROUGE-L F between two instructions")
    ax.set_ylabel("density")
    ax.set_title("How alike are the instructions? (left = more diverse)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_distinct_n(distinct: dict, ns=(1, 2, 3)):
    """Grouped bars of distinct-n; ``distinct`` maps a name to ``{n: value}``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    width = 0.8 / max(len(distinct), 1)
    for k, (name, values) in enumerate(distinct.items()):
        positions = [i + k * width for i in range(len(ns))]
        bars = ax.bar(positions, [values[n] for n in ns], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([i + width * (len(distinct) - 1) / 2 for i in range(len(ns))], [f"distinct-{n}" for n in ns])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("unique / total n-grams")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_filter_counts(report):
    """Horizontal bars: rows removed by each filter of a ``filtering.FilterReport``, and rows kept."""
    import matplotlib.pyplot as plt

    names = [name for name, _, _ in report.as_rows()] + ["kept"]
    counts = [removed for _, removed, _ in report.as_rows()] + [report.output_rows]
    fig, ax = plt.subplots(figsize=(6.5, 3))
    bars = ax.barh(names, counts, color=["#C44E52"] * (len(names) - 1) + ["#55A868"])
    ax.bar_label(bars, padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, max(counts + [1]) * 1.15)
    ax.set_xlabel("rows")
    ax.set_title(f"Filtering {report.input_rows} generated dialogues")
    fig.tight_layout()
    return fig

# --- sft (notebook 03) ---


def plot_sft_curves(curves: dict):
    """Loss and mean token accuracy per step (``zephyr_tutorial.sft.training_curves`` output), side by side."""
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_axis.plot(curves["step"], curves["loss"], marker=".")
    loss_axis.set(xlabel="optimizer step", ylabel="cross-entropy on assistant tokens", title="SFT loss")
    accuracy_axis.plot(curves["step"], curves["mean_token_accuracy"], marker=".", color="tab:green")
    accuracy_axis.set(xlabel="optimizer step", ylabel="next-token accuracy", title="Mean token accuracy")
    figure.tight_layout()
    return figure


def plot_memory_breakdown(estimates: dict, title: str = "Estimated training memory"):
    """Stacked bars of ``{label: MemoryEstimate}`` parts (weights, optimizer, activations...) in GiB."""
    import matplotlib.pyplot as plt

    labels = list(estimates)
    parts = [p for p in next(iter(estimates.values())).gib() if p != "total"]
    figure, axis = plt.subplots(figsize=(8, 3.5))
    bottoms = [0.0] * len(labels)
    for part in parts:
        values = [estimates[label].gib()[part] for label in labels]
        axis.bar(labels, values, bottom=bottoms, label=part)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    axis.set(ylabel="GiB", title=title)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    return figure


# --- feedback (notebook 04) ---


def plot_rating_distributions(scores_by_policy: dict, aspects=("instruction_following", "honesty", "truthfulness",
                                                               "helpfulness")):
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
    import matplotlib.pyplot as plt
    from collections import Counter

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

# --- dpo (notebook 05) ---

DPO_LOSS_COLORS = {"sigmoid": "#4C72B0", "ipo": "#DD8452", "hinge": "#55A868", "conservative": "#8172B3"}


def plot_dpo_losses(beta: float, margin: float | None = None, loss_types=("sigmoid", "ipo", "hinge"),
                    label_smoothing: float = 0.1, span: float | None = None):
    """Loss (left) and push on the margin :math:`-\\partial L/\\partial h` (right) against the log-ratio margin h.

    One line per loss type (``line.get_label()`` is the type), the current ``margin`` marked on each.
    """
    import matplotlib.pyplot as plt
    import torch

    from zephyr_tutorial.dpo.losses import loss_gradient_on_margin, preference_loss

    span = span or max(6.0 / beta, abs(margin or 0.0) * 1.2)
    h = torch.linspace(-span, span, 401, dtype=torch.float64)
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.6))
    for loss_type in loss_types:
        color = DPO_LOSS_COLORS.get(loss_type)
        ax_loss.plot(h, preference_loss(h, beta, loss_type, label_smoothing), label=loss_type, color=color)
        ax_grad.plot(h, loss_gradient_on_margin(h, beta, loss_type, label_smoothing), label=loss_type, color=color)
        if margin is not None:
            point = torch.tensor([float(margin)], dtype=torch.float64)
            ax_loss.plot(point, preference_loss(point, beta, loss_type, label_smoothing), "o", color=color)
            ax_grad.plot(point, loss_gradient_on_margin(point, beta, loss_type, label_smoothing), "o", color=color)
    for ax in (ax_loss, ax_grad):
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("log-ratio margin h = Δ_chosen − Δ_rejected")
        if margin is not None:
            ax.axvline(margin, color="black", ls=":", lw=1)
    ax_loss.set_ylim(0, float(preference_loss(torch.tensor([-span / 2.0]), beta, "sigmoid")) * 1.5 + 0.5)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(f"loss per pair (β = {beta:g})")
    ax_grad.set_ylabel("−dL/dh")
    ax_grad.set_title("how hard the gradient pushes h up")
    ax_grad.set_ylim(-2.5 * beta, 2.5 * beta)
    ax_loss.legend()
    fig.tight_layout()
    return fig


def plot_dpo_training_dynamics(history: list[dict], step: int | None = None, title: str = "DPO training"):
    """Rewards of chosen/rejected, their margin and the reward accuracy per logged step (TRL's ``log_history``).

    ``step`` draws a marker line there (the widget's slider).
    """
    import matplotlib.pyplot as plt

    entries = [e for e in history if "rewards/margins" in e and "step" in e]
    steps = [e["step"] for e in entries]
    panels = [("rewards", ["rewards/chosen", "rewards/rejected"]), ("margin", ["rewards/margins"]),
              ("reward accuracy", ["rewards/accuracies"]), ("loss", ["loss"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.2))
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            ax.plot(steps, [e.get(key, float("nan")) for e in entries], marker=".", label=key)
        if step is not None:
            ax.axvline(step, color="black", ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel("step")
    axes[0].axhline(0, color="grey", lw=0.6)
    axes[0].legend(fontsize=8)
    axes[2].set_ylim(-0.05, 1.05)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_dpo_ablation(results: dict[str, dict], metrics=("train_reward_accuracy", "reward_accuracy", "mean_margin")):
    """Grouped bars: one group per metric, one bar per run (``results[run][metric]``)."""
    import matplotlib.pyplot as plt
    import numpy as np

    runs = list(results)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        values = [results[run].get(metric, float("nan")) for run in runs]
        bars = ax.bar(range(len(runs)), values, color=[f"C{i}" for i in range(len(runs))])
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8)
        ax.set_xticks(range(len(runs)), runs, rotation=15, fontsize=8)
        ax.set_title(metric)
        ax.axhline(0, color="grey", lw=0.6)
    fig.tight_layout()
    return fig
