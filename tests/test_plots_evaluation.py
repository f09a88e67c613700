"""Notebook 01's figures hold the data they are given."""

from __future__ import annotations

import math

import pytest


def test_plots_hold_the_data():
    import matplotlib

    matplotlib.use("Agg")
    from zephyr_tutorial.evaluation.multiple_choice import MCItemResult, MCReport
    from zephyr_tutorial.plots import plot_mc_accuracy_by_category, plot_mc_margins, plot_position_bias, plot_win_rates

    figure = plot_win_rates(["x", "y"], [0.25, 0.75], [0.05, 0.1])
    assert [bar.get_width() for bar in figure.axes[0].patches] == [0.25, 0.75]
    figure = plot_position_bias(["judge"], [0.4], [0.9])
    assert [ax.patches[0].get_width() for ax in figure.axes] == [0.4, 0.9]
    report = MCReport(
        [
            MCItemResult("1", "sci", 0, [-1.0, -3.0], [True, False], 0, 0),
            MCItemResult("2", "math", 1, [-1.0, -2.0], [True, False], 0, 0),
        ]
    )
    assert [r.margin for r in report.items] == [2.0, -1.0]
    figure = plot_mc_margins(report)
    assert sum(bar.get_height() for bar in figure.axes[0].patches) == 2
    figure = plot_mc_accuracy_by_category({"continuation": report})
    assert sorted(bar.get_height() for bar in figure.axes[0].patches) == [0.0, 1.0]


def test_single_ratings_plot_holds_every_rating_and_the_group_means():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PathCollection

    from zephyr_tutorial.plots.evaluation import plot_single_ratings

    groups = {"better": [8.0, 9.0, 7.0], "worse": [2.0, 4.0]}
    axis = plot_single_ratings(groups).axes[0]
    dots = [c.get_offsets()[:, 1].tolist() for c in axis.collections if isinstance(c, PathCollection)]
    assert dots == [[8.0, 9.0, 7.0], [2.0, 4.0]]
    means = [container.lines[0].get_ydata()[0] for container in axis.containers]
    assert means == pytest.approx([8.0, 3.0])
    lower_caps = [min(cap.get_ydata()[0] for cap in container.lines[1]) for container in axis.containers]
    assert lower_caps == pytest.approx([8.0 - 1 / math.sqrt(3), 3.0 - 1.0])  # mean - standard error
    assert [label.get_text() for label in axis.get_xticklabels()] == ["better", "worse"]
