"""Figures of notebook 02 (generation)."""

from __future__ import annotations


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
        ax.hist(
            values, bins=edges, alpha=0.55, density=True, label=f"{name} (mean {sum(values) / max(len(values), 1):.2f})"
        )
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
