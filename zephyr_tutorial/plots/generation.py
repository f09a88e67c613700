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


def plot_distinct_n(distinct: dict, ns=(1, 2, 3), intervals: dict | None = None, title: str | None = None):
    """Grouped bars of distinct-n; ``distinct`` maps a name to ``{n: value}``.

    ``intervals`` (optional) maps the same names to ``{n: (low, high)}``, drawn as error bars.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    width = 0.8 / max(len(distinct), 1)
    for k, (name, values) in enumerate(distinct.items()):
        positions = [i + k * width for i in range(len(ns))]
        heights = [values[n] for n in ns]
        errors = None
        if intervals and name in intervals:
            low = [max(h - intervals[name][n][0], 0.0) for h, n in zip(heights, ns)]
            high = [max(intervals[name][n][1] - h, 0.0) for h, n in zip(heights, ns)]
            errors = [low, high]
        bars = ax.bar(positions, heights, width, label=name, yerr=errors, capsize=3 if errors else 0)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=8 if errors else 0)
    ax.set_xticks([i + width * (len(distinct) - 1) / 2 for i in range(len(ns))], [f"distinct-{n}" for n in ns])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("unique / total n-grams")
    if title:
        ax.set_title(title)
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


def plot_truncation_evidence(counts: dict):
    """What the truncation heuristic says about replies whose finish reason was recorded.

    ``counts`` maps ``(finish_reason, flagged)`` (``"length"``/``"stop"``, bool) to a number of replies: two bars
    per recorded reason, split into flagged and not flagged.
    """
    import matplotlib.pyplot as plt

    reasons = ("length", "stop")
    labels = {"length": "cut at the token limit", "stop": "ended by the model"}
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    flagged = [counts.get((r, True), 0) for r in reasons]
    missed = [counts.get((r, False), 0) for r in reasons]
    names = [f"{labels[r]} (n={f + m})" for r, f, m in zip(reasons, flagged, missed)]
    bars = ax.barh(names, flagged, color="#C44E52", label="the heuristic says: cut off")
    ax.bar_label(bars, label_type="center", color="white")
    bars = ax.barh(names, missed, left=flagged, color="#8C8C8C", label="the heuristic says: complete")
    ax.bar_label(bars, label_type="center", color="white")
    ax.invert_yaxis()
    ax.set_xlabel("assistant replies (finish reason recorded by the generator)")
    ax.set_title("A guess against the record")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_threshold_sweep(thresholds, kept, rejected, xlabel: str = "ROUGE-L threshold", title: str | None = None):
    """Kept and rejected counts (two lines) against a filter's threshold."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.plot(thresholds, kept, marker="o", color="#55A868", label="kept")
    ax.plot(thresholds, rejected, marker="o", color="#C44E52", label="rejected")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("items")
    ax.set_title(title or "What the threshold keeps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
