"""Figures of notebook 03 (sft)."""

from __future__ import annotations

def plot_sft_curves(curves: dict):
    """Loss and mean token accuracy per step (``zephyr_tutorial.sft.training_curves`` output), side by side."""
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_axis.plot(curves["step"], curves["loss"], marker=".")
    loss_axis.set(xlabel="optimizer step", ylabel="cross-entropy on assistant tokens", title="SFT loss")
    accuracy_axis.plot(curves["step"], curves["mean_token_accuracy"], marker=".", color="tab:green")
    accuracy_axis.set(xlabel="optimizer step", ylabel="next-token accuracy", title="Mean token accuracy")
    figure.tight_layout()
    return figure


def plot_memory_breakdown(estimates: dict, title: str = "Estimated training memory"):
    """Stacked bars of ``{label: MemoryEstimate}`` parts (weights, optimizer, activations...) in GiB."""
    import matplotlib.pyplot as plt

    labels = list(estimates)
    parts = [p for p in next(iter(estimates.values())).gib() if p != "total"]
    figure, axis = plt.subplots(figsize=(8, 3.5))
    bottoms = [0.0] * len(labels)
    for part in parts:
        values = [estimates[label].gib()[part] for label in labels]
        axis.bar(labels, values, bottom=bottoms, label=part)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    axis.set(ylabel="GiB", title=title)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    return figure
