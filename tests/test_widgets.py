"""The plotting functions behind notebook 05's widgets hold the data they claim, and the widgets build."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from zephyr_tutorial.dpo.losses import loss_gradient_on_margin, preference_loss
from zephyr_tutorial.plots import DPO_LOSS_COLORS, plot_dpo_ablation, plot_dpo_losses, plot_dpo_training_dynamics
from zephyr_tutorial.widgets import PairState, loss_explorer, training_dynamics_view

HISTORY = [
    {
        "step": s,
        "loss": 0.69 - 0.05 * s,
        "rewards/chosen": 0.01 * s,
        "rewards/rejected": -0.02 * s,
        "rewards/margins": 0.03 * s,
        "rewards/accuracies": min(1.0, 0.25 * s),
    }
    for s in range(1, 6)
] + [{"step": 5, "train_runtime": 12.0}]  # the summary entry TRL appends has no rewards


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def _panel(ax):
    """The axes drawn over one panel: ``ax`` and any twin of it (IPO's own y axis)."""
    return [ax] + [other for other in ax.get_shared_x_axes().get_siblings(ax) if other is not ax]


def _panel_lines(ax):
    return {label: line for axes in _panel(ax) for label, line in _lines(axes).items()}


def test_loss_plot_holds_each_loss_and_its_gradient():
    beta, margin = 0.2, 3.0
    fig = plot_dpo_losses(beta, margin)
    ax_loss, ax_grad = fig.axes[:2]
    for loss_type in ("sigmoid", "ipo", "hinge"):
        line = _panel_lines(ax_loss)[loss_type]
        h = torch.as_tensor(line.get_xdata(), dtype=torch.float64)
        assert np.allclose(line.get_ydata(), preference_loss(h, beta, loss_type).numpy())
        grad_line = _panel_lines(ax_grad)[loss_type]
        assert np.allclose(grad_line.get_ydata(), loss_gradient_on_margin(h, beta, loss_type).numpy())
    markers = [line for axes in _panel(ax_loss) for line in axes.get_lines() if line.get_marker() == "o"]
    assert len(markers) == 3 and all(line.get_xdata()[0] == margin for line in markers)
    sigmoid_marker = next(line for line in markers if line.get_color() == DPO_LOSS_COLORS["sigmoid"])
    assert sigmoid_marker.get_ydata()[0] == pytest.approx(math.log1p(math.exp(-beta * margin)))


def test_loss_plot_title_prints_beta_as_the_widget_slider_shows_it():
    import ipywidgets as widgets

    beta = 10**-1.05  # one step left of 0.1 on the widget's log slider: 0.0891250938...
    title = plot_dpo_losses(beta, 2.0).axes[0].get_title()
    assert title == "loss per pair (β = 0.0891)"
    controls = loss_explorer(beta=beta).children[0].children
    beta_slider = next(w for w in controls if isinstance(w, widgets.FloatLogSlider))
    assert f"β = {beta_slider.value:{beta_slider.readout_format}}" in title


@pytest.mark.parametrize("beta", [0.1, 0.01, 0.5])
def test_ipo_curve_has_its_own_axis_and_stays_inside_it(beta):
    fig = plot_dpo_losses(beta, margin=6.0)
    for panel in fig.axes[:2]:
        ipo_axes = [ax for ax in _panel(panel) if "ipo" in _lines(ax)]
        assert len(ipo_axes) == 1 and ipo_axes[0] is not panel, "IPO shares the DPO/hinge y axis"
        (ipo_ax,) = ipo_axes
        y = _lines(ipo_ax)["ipo"].get_ydata()
        low, high = ipo_ax.get_ylim()
        assert low <= y.min() and y.max() <= high, f"the IPO curve leaves its axes ({y.min():.3g}..{y.max():.3g})"
        assert (y.max() - y.min()) >= 0.8 * (high - low), "the IPO curve is squeezed into a corner of its axes"
        assert "IPO" in ipo_ax.get_ylabel()
        # the DPO curve keeps a readable scale of its own on the left axis
        sigmoid = _lines(panel)["sigmoid"].get_ydata()
        low, high = panel.get_ylim()
        assert np.mean((sigmoid >= low) & (sigmoid <= high)) > 0.9
    legend = [text.get_text() for ax in _panel(fig.axes[0]) if ax.get_legend() for text in ax.get_legend().get_texts()]
    assert sorted(legend) == ["hinge", "ipo", "sigmoid"]


def test_training_dynamics_plot_uses_the_logged_values_and_marks_the_step():
    fig = plot_dpo_training_dynamics(HISTORY, step=3)
    rewards, margins, accuracy, loss = fig.axes
    assert list(_lines(rewards)["rewards/chosen"].get_xdata()) == [1, 2, 3, 4, 5]
    assert np.allclose(_lines(margins)["rewards/margins"].get_ydata(), [0.03 * s for s in range(1, 6)])
    assert np.allclose(_lines(accuracy)["rewards/accuracies"].get_ydata(), [0.25, 0.5, 0.75, 1.0, 1.0])
    assert any(list(line.get_xdata()) == [3, 3] for line in loss.get_lines())


def test_ablation_bars_show_each_run():
    fig = plot_dpo_ablation(
        {
            "SFT+DPO": {"reward_accuracy": 0.75, "mean_margin": 0.2},
            "DPO only": {"reward_accuracy": 0.5, "mean_margin": -0.1},
        },
        metrics=("reward_accuracy", "mean_margin"),
    )
    heights = [[patch.get_height() for patch in ax.patches] for ax in fig.axes]
    assert heights == [[0.75, 0.5], [0.2, -0.1]]


def test_pair_state_margin_and_summary():
    state = PairState(beta=0.5, policy_chosen=-10, reference_chosen=-12, policy_rejected=-20, reference_rejected=-19)
    assert state.margin == 3.0
    text = state.summary()
    assert "chosen +1.000" in text and "rejected -0.500" in text
    assert f"{1 / (1 + math.exp(1.5)):.3f}" in text  # gradient weight sigma(-beta h)


def test_widgets_build_with_their_controls():
    import ipywidgets as widgets

    explorer = loss_explorer(beta=0.1)
    sliders = [w for w in explorer.children[0].children if isinstance(w, (widgets.FloatSlider, widgets.FloatLogSlider))]
    assert len(sliders) == 5 and sliders[0].value == pytest.approx(0.1)
    view = training_dynamics_view(HISTORY)
    assert list(view.children[0].options) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="rewards/margins"):
        training_dynamics_view([{"step": 1, "train_runtime": 1.0}])
