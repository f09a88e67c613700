"""Figures of notebook 05 (dpo)."""

from __future__ import annotations

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
