"""The notebook-02 figures hold the data they were given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from zephyr_tutorial.generation.filtering import filter_dialogues  # noqa: E402
from zephyr_tutorial.plots import (  # noqa: E402
    plot_distinct_n,
    plot_filter_counts,
    plot_similarity_histograms,
    plot_threshold_sweep,
    plot_truncation_evidence,
    plot_turn_lengths,
)


def rows():
    def row(q, a):
        return {
            "prompt": q,
            "prompt_id": q,
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        }

    return [
        row("Why is it so?", "Because of many reasons."),
        row("Why is it so?", "Because of many reasons."),
        row("Name one thing.", "As an AI I cannot name things."),
    ]


def test_filter_counts_bars_match_the_report():
    _, report = filter_dialogues(rows())
    fig = plot_filter_counts(report)
    widths = [patch.get_width() for patch in fig.axes[0].patches]
    assert widths == [removed for _, removed, _ in report.as_rows()] + [report.output_rows] == [0, 0, 0, 1, 1, 0, 1]
    assert report.removed_rows + report.output_rows == len(rows())
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "kept"


def test_turn_length_histograms_count_every_message():
    fig = plot_turn_lengths({"a": rows()}, bins=5)
    user_ax, assistant_ax = fig.axes
    assert sum(p.get_height() for p in user_ax.patches) == 3
    assert sum(p.get_height() for p in assistant_ax.patches) == 3
    assert "a (n=3)" in [t.get_text() for t in assistant_ax.get_legend().get_texts()]


def test_similarity_and_distinct_plots():
    fig = plot_similarity_histograms({"x": [0.1, 0.2, 0.9], "y": [0.5]}, threshold=0.7)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"x (mean 0.40)", "y (mean 0.50)", "self-instruct cut-off 0.7"} == set(labels)
    fig = plot_distinct_n({"x": {1: 0.5, 2: 0.75, 3: 1.0}})
    assert [round(p.get_height(), 2) for p in fig.axes[0].patches] == [0.5, 0.75, 1.0]
    fig = plot_distinct_n(
        {"x": {1: 0.5, 2: 0.75, 3: 0.9}}, intervals={"x": {1: (0.4, 0.6), 2: (0.7, 0.8), 3: (0.9, 0.9)}}, title="t"
    )
    (container,) = [c for c in fig.axes[0].containers if hasattr(c, "errorbar") and c.errorbar]
    segments = container.errorbar.lines[2][0].get_segments()
    assert [(round(s[0][1], 2), round(s[1][1], 2)) for s in segments] == [(0.4, 0.6), (0.7, 0.8), (0.9, 0.9)]
    assert fig.axes[0].get_title() == "t"


def test_truncation_evidence_bars_split_each_recorded_reason():
    counts = {("length", True): 54, ("length", False): 28, ("stop", True): 4, ("stop", False): 283}
    ax = plot_truncation_evidence(counts).axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [54, 4, 28, 283]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "cut at the token limit (n=82)",
        "ended by the model (n=287)",
    ]


def test_threshold_sweep_draws_both_counts():
    ax = plot_threshold_sweep([0.3, 0.5, 0.7], [5, 20, 40], [55, 40, 20]).axes[0]
    kept, rejected = ax.get_lines()
    assert list(kept.get_ydata()) == [5, 20, 40] and list(rejected.get_ydata()) == [55, 40, 20]


def test_every_plot_function_is_exported_from_the_plots_package():
    import importlib
    import inspect
    import pkgutil

    import zephyr_tutorial.plots as plots

    defined = {
        name
        for module in pkgutil.iter_modules(plots.__path__)
        for name, obj in inspect.getmembers(importlib.import_module(f"{plots.__name__}.{module.name}"))
        if name.startswith("plot_") and inspect.isfunction(obj)
    }
    assert defined and defined <= set(plots.__all__), sorted(defined - set(plots.__all__))
