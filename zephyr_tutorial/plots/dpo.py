"""Figures of notebook 05 (dpo)."""

from __future__ import annotations

DPO_LOSS_COLORS = {"sigmoid": "#4C72B0", "ipo": "#DD8452", "hinge": "#55A868", "conservative": "#8172B3"}
BETA_FORMAT = ".3g"
"""How titles print β: three significant digits, as the widget's β slider reads (0.0891, not 0.0891251)."""


def plot_dpo_losses(beta: float, margin: float | None = None, loss_types=("sigmoid", "ipo", "hinge"),
                    label_smoothing: float = 0.1, span: float | None = None):
    """Loss (left) and push on the margin :math:`-\\partial L/\\partial h` (right) against the log-ratio margin h.

    One line per loss type (``line.get_label()`` is the type), the current ``margin`` marked on each. IPO is a
    squared loss centred on :math:`h = 1/(2\\beta)`: on the DPO scale its curve is a spike that leaves the axes,
    so it gets its own y axis on the right of each panel (``ax.twinx()``, in its colour).
    """
    import matplotlib.pyplot as plt
    import torch

    from zephyr_tutorial.dpo.losses import loss_gradient_on_margin, preference_loss

    span = span or max(6.0 / beta, abs(margin or 0.0) * 1.2)
    h = torch.linspace(-span, span, 401, dtype=torch.float64)
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.6))
    own_axis = {}  # loss type -> (loss axis, gradient axis) where it is not drawn on the shared DPO scale
    if "ipo" in loss_types and len(loss_types) > 1:
        own_axis["ipo"] = (ax_loss.twinx(), ax_grad.twinx())
        for ax, what in zip(own_axis["ipo"], ("IPO loss", "IPO −dL/dh")):
            ax.set_ylabel(f"{what} (right axis)", color=DPO_LOSS_COLORS["ipo"])
            ax.tick_params(axis="y", colors=DPO_LOSS_COLORS["ipo"])
    for loss_type in loss_types:
        color = DPO_LOSS_COLORS.get(loss_type)
        on_loss, on_grad = own_axis.get(loss_type, (ax_loss, ax_grad))
        on_loss.plot(h, preference_loss(h, beta, loss_type, label_smoothing), label=loss_type, color=color)
        on_grad.plot(h, loss_gradient_on_margin(h, beta, loss_type, label_smoothing), label=loss_type, color=color)
        if margin is not None:
            point = torch.tensor([float(margin)], dtype=torch.float64)
            on_loss.plot(point, preference_loss(point, beta, loss_type, label_smoothing), "o", color=color)
            on_grad.plot(point, loss_gradient_on_margin(point, beta, loss_type, label_smoothing), "o", color=color)
    for ax in (ax_loss, ax_grad):
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel("log-ratio margin h = Δ_chosen − Δ_rejected")
        if margin is not None:
            ax.axvline(margin, color="black", ls=":", lw=1)
    ax_loss.set_ylim(0, float(preference_loss(torch.tensor([-span / 2.0]), beta, "sigmoid")) * 1.5 + 0.5)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(f"loss per pair (β = {beta:{BETA_FORMAT}})")  # as the widget's β slider shows it
    ax_grad.set_ylabel("−dL/dh")
    ax_grad.set_title("how hard the gradient pushes h up")
    ax_grad.set_ylim(-2.5 * beta, 2.5 * beta)
    for on_loss, on_grad in own_axis.values():  # zero where the left axis has it: loss from 0, push symmetric
        on_loss.set_ylim(0, 1.05 * max(float(line.get_ydata().max()) for line in on_loss.get_lines()))
        push = max(float(abs(line.get_ydata()).max()) for line in on_grad.get_lines())
        on_grad.set_ylim(-1.05 * push, 1.05 * push)
    loss_axes = [ax_loss, *(axes[0] for axes in own_axis.values())]
    curves = [line for ax in loss_axes for line in ax.get_lines() if not line.get_label().startswith("_")]
    loss_axes[-1].legend(curves, [line.get_label() for line in curves])  # on the top axes, above every curve
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


def plot_label_noise(results: dict, title: str = "DPO trained on pairs with flipped labels"):
    """Held-out reward accuracy and rule-judge win rate against the share of flipped training labels.

    ``results`` maps a flip rate to ``{"accuracy": Interval, "win": Interval}`` (notebook 05); the bars are the
    intervals, the dashed line chance (0.5) for both.
    """
    import matplotlib.pyplot as plt

    rates = sorted(results)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for axis, key, label in zip(axes, ("accuracy", "win"),
                                ("held-out implicit-reward accuracy", "rule-judge win rate against SFT")):
        estimates = [results[rate][key].estimate for rate in rates]
        errors = [[results[rate][key].estimate - results[rate][key].low for rate in rates],
                  [results[rate][key].high - results[rate][key].estimate for rate in rates]]
        axis.errorbar(rates, estimates, yerr=errors, marker="o", capsize=4)
        axis.axhline(0.5, linestyle="--", color="grey", linewidth=1)
        axis.set(xlabel="share of training pairs with chosen and rejected swapped", ylabel=label, ylim=(0, 1))
    figure.suptitle(title)
    figure.tight_layout()
    return figure
