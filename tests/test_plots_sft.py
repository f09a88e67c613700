"""Notebook 03's figures hold the data they are given."""

from __future__ import annotations

import pytest

from zephyr_tutorial import sft


def test_plots_show_the_curves_and_memory_parts():
    from zephyr_tutorial.memory import MISTRAL_7B, estimate_training_memory
    from zephyr_tutorial.plots import plot_memory_breakdown, plot_sft_curves

    curves = {"step": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "mean_token_accuracy": [0.3, 0.4, 0.5]}
    figure = plot_sft_curves(curves)
    assert list(figure.axes[0].lines[0].get_ydata()) == curves["loss"] and len(figure.axes[0].lines) == 1
    history = [{"step": 2, "eval_loss": 1.7}, {"step": 3, "loss": 1.2}, {"step": 3, "eval_loss": 1.6}]
    figure = plot_sft_curves(curves, history)
    assert list(figure.axes[0].lines[1].get_ydata()) == [1.7, 1.6]
    estimates = {m: estimate_training_memory(MISTRAL_7B, m, seq_len=512, batch_size=1) for m in ("lora", "qlora")}
    figure = plot_memory_breakdown(estimates)
    heights = [sum(p.get_height() for p in c.patches) for c in figure.axes[0].containers]
    assert sum(heights) == pytest.approx(sum(e.total for e in estimates.values()) / 2**30)


def test_answer_endings_plot_draws_one_step_curve_per_label_and_the_marked_budgets():
    from zephyr_tutorial.plots.sft import plot_answer_endings

    budgets = range(1, 9)
    shares = {"training replies": sft.ended_within([2, 5], budgets), "after SFT": sft.ended_within([3, 8], budgets)}
    figure = plot_answer_endings(budgets, shares, {"default budget": 4})
    lines = figure.axes[0].lines
    assert [line.get_label() for line in lines] == ["training replies", "after SFT", "default budget"]
    assert list(lines[0].get_ydata()) == [0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert list(lines[2].get_xdata()) == [4, 4]
