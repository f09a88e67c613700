"""Figures of notebook 03 (sft)."""

from __future__ import annotations


def plot_sft_curves(curves: dict, history: list[dict] | None = None):
    """Loss and mean token accuracy per step (``zephyr_tutorial.training.training_curves`` output), side by side.

    With the run's ``history`` (``TrainingRun.history``), the held-out ``eval_loss`` of each evaluation is drawn
    beside the training loss: the two together say whether the model learned or only memorised.
    """
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_axis.plot(curves["step"], curves["loss"], marker=".", label="training batches")
    evaluations = [entry for entry in history or () if "eval_loss" in entry]
    if evaluations:
        loss_axis.plot(
            [e["step"] for e in evaluations],
            [e["eval_loss"] for e in evaluations],
            marker="o",
            color="tab:red",
            label="held-out rows (eval_loss)",
        )
        loss_axis.legend(fontsize=8)
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


def plot_answer_endings(
    budgets, shares: dict, marks: dict | None = None, title: str = "Answers ended by EOS within the budget"
):
    """Share of answers ended by EOS within ``k`` tokens, for each ``k`` in ``budgets``: one line per label.

    ``shares`` maps a label ("training replies", "before SFT", ...) to the shares at ``budgets``
    (``zephyr_tutorial.sft.ended_within``); ``marks`` maps a name to a budget drawn as a dashed vertical line.
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.5))
    for label, values in shares.items():
        axis.step(list(budgets), values, where="post", label=label)
    for i, (name, budget) in enumerate((marks or {}).items()):
        axis.axvline(budget, linestyle="--", color=f"C{len(shares) + i}", label=name)
    axis.set(xlabel="max_new_tokens", ylabel="share ended by EOS", ylim=(-0.02, 1.02), title=title)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure
