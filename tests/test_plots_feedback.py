"""The notebook 04 figures hold the data they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from zephyr_tutorial import plots  # noqa: E402
from zephyr_tutorial.evaluation.rating import ASPECTS  # noqa: E402


def test_rating_distributions_one_box_per_policy_and_aspect():
    data = {"good": {a: [4, 5, 4.5] for a in ASPECTS}, "weak": {a: [1, 2] for a in ASPECTS}}
    fig = plots.plot_rating_distributions(data)
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["good", "weak"]
    medians = [
        line.get_ydata()[0]
        for line in fig.axes[2].lines
        if len(line.get_xdata()) == 2 and line.get_xdata()[0] != line.get_xdata()[1] and line.get_color() != "black"
    ]
    assert 4.5 in medians and 1.5 in medians


def test_score_margins_histogram_counts_every_pair():
    pairs = [{"score_chosen": c, "score_rejected": r} for c, r in [(4, 2), (3.5, 3), (5, 1)]]
    fig = plots.plot_score_margins(pairs, bins=4)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert sum(heights) == 3
    assert "median 2.00" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_aspect_correlation_heatmap_writes_the_values():
    matrix = np.eye(4)
    matrix[0, 1] = matrix[1, 0] = 0.25
    fig = plots.plot_aspect_correlations(matrix)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("1.00") == 4 and texts.count("0.25") == 2


def test_chosen_policies_bars():
    pairs = [{"policy_chosen": "a", "policy_rejected": "b"}, {"policy_chosen": "a", "policy_rejected": "c"}]
    fig = plots.plot_chosen_policies(pairs)
    left, right = fig.axes
    assert [p.get_width() for p in left.patches] == [2, 0, 0]
    assert [p.get_width() for p in right.patches] == [0, 1, 1]
