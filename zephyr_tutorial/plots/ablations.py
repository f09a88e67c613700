"""Figures of notebook 06 (the ablations): every arm's measurements with their intervals."""

from __future__ import annotations

METRICS = (
    ("rule_score", "rule-judge score (1-5)", None),
    ("rule_win_rate", "rule-judge win rate vs baseline", 0.5),
    ("stop_rate", "stop rate (Zephyr template)", None),
    ("heldout_reward_accuracy", "held-out reward accuracy", 0.5),
)


def plot_ablations(suite, paper: dict | None = None, title: str = "The Zephyr ablation at our scale"):
    """One panel per metric, one bar per arm with its 95% interval; ``paper`` (arm -> AlpacaEval %) adds a panel
    with the paper's numbers for the arms it has, so the shapes can be compared."""
    import matplotlib.pyplot as plt

    arms = list(suite.results)
    panels = len(METRICS) + (1 if paper else 0)
    figure, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.8), sharey=False)
    for axis, (name, label, chance) in zip(axes, METRICS):
        values = [getattr(suite.results[arm], name) for arm in arms]
        positions = [i for i, value in enumerate(values) if value is not None]
        estimates = [values[i].estimate for i in positions]
        errors = [
            [values[i].estimate - values[i].low for i in positions],
            [values[i].high - values[i].estimate for i in positions],
        ]
        axis.bar(positions, estimates, yerr=errors, capsize=3, color=[f"C{i}" for i in positions])
        if chance is not None:
            axis.axhline(chance, linestyle="--", color="grey", linewidth=1)
        axis.set_xticks(range(len(arms)), arms, rotation=60, ha="right", fontsize=8)
        axis.set_title(label, fontsize=9)
    if paper:
        axis = axes[-1]
        positions = [i for i, arm in enumerate(arms) if arm in paper]
        axis.bar(positions, [paper[arms[i]] for i in positions], color=[f"C{i}" for i in positions], hatch="//")
        axis.set_xticks(range(len(arms)), arms, rotation=60, ha="right", fontsize=8)
        axis.set_title("paper: AlpacaEval win rate (%)", fontsize=9)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
