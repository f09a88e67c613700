"""Figures of notebook 00 (setup): where the parameters are, and the whole recipe in one picture."""

from __future__ import annotations

from dataclasses import dataclass


def plot_parameter_breakdown(breakdown: dict[str, int], title: str = "Where the parameters are"):
    """Horizontal bars of parameter counts (millions) per kind of block, from ``models.parameter_breakdown``."""
    import matplotlib.pyplot as plt

    names = [name for name, count in breakdown.items() if count]
    millions = [breakdown[name] / 1e6 for name in names]
    fig, ax = plt.subplots(figsize=(6, 2.5))
    bars = ax.barh(names, millions, color="#4C72B0")
    ax.bar_label(bars, labels=[f"{m:.1f}M" for m in millions], padding=3)
    ax.set_xlabel("parameters (millions)")
    ax.set_title(title)
    ax.invert_yaxis()
    ax.set_xlim(0, max(millions) * 1.2)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class PipelineBox:
    """One box of the pipeline picture: what it is, the paper's name for it, our cpu stand-in, its notebook."""

    kind: str
    """``"model"`` or ``"data"``."""
    title: str
    paper: str
    stand_in: str
    notebook: str


ZEPHYR_PIPELINE: tuple[PipelineBox, ...] = (
    PipelineBox("model", "base model", "Mistral-7B-v0.1", "SmolLM2-135M-Instruct", "00"),
    PipelineBox("data", "dialogues", "UltraChat 200k, by GPT-3.5", "data/sft (embedded model)", "02"),
    PipelineBox("model", "dSFT model", "zephyr-7b-sft-full", "QLoRA adapter", "03"),
    PipelineBox("data", "preferences", "UltraFeedback, rated by GPT-4", "data/preferences", "04"),
    PipelineBox("model", "dDPO model", "zephyr-7b-beta", "DPO adapter", "05"),
)
"""The recipe in order: base model, SFT data, SFT model, preference data, DPO model (Tunstall et al., 2023)."""

STAGE_ARROWS: tuple[tuple[str, str], ...] = (("dSFT", "03"), ("dDPO", "05"))
"""The two training stages, drawn as the arrows between the three models."""


def plot_pipeline(boxes=ZEPHYR_PIPELINE, *, stages=STAGE_ARROWS, stand_in: bool = True):
    """The Zephyr recipe as one figure: three models joined by the two training stages, each fed by its data set.

    Every box names the paper's model or data set and, with ``stand_in``, what the ``cpu`` profile uses in its
    place; the small number in a corner is the notebook that builds it. Notebook 01's evaluation and 06's
    ablations measure every model, drawn as a bar under the whole pipeline.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    models = [b for b in boxes if b.kind == "model"]
    data = [b for b in boxes if b.kind == "data"]
    if len(models) != len(data) + 1 or len(stages) != len(data):
        raise ValueError("the pipeline alternates models and data sets: one more model than data sets and stages")
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4.2)
    ax.axis("off")
    width, height = 2.3, 1.0
    colors = {"model": ("#DCE6F2", "#4C72B0"), "data": ("#E4F2E0", "#55A868")}

    def box(x, y, item):
        face, edge = colors[item.kind]
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2),
                width,
                height,
                boxstyle="round,pad=0.05",
                facecolor=face,
                edgecolor=edge,
                linewidth=1.5,
            )
        )
        lines = [f"{item.title}", item.paper] + ([f"cpu: {item.stand_in}"] if stand_in else [])
        ax.text(x, y + 0.28, lines[0], ha="center", va="center", fontsize=10, fontweight="bold")
        ax.text(x, y, lines[1], ha="center", va="center", fontsize=9)
        if stand_in:
            ax.text(x, y - 0.28, lines[2], ha="center", va="center", fontsize=8, color="#555555", style="italic")
        ax.text(x + width / 2 - 0.05, y + height / 2 - 0.02, item.notebook, ha="right", va="top", fontsize=7)

    model_x = [1.3 + i * (10 - 2.6) / (len(models) - 1) for i in range(len(models))]
    model_y, data_y = 3.2, 1.55
    for x, item in zip(model_x, models):
        box(x, model_y, item)
    for i, (item, (stage, notebook)) in enumerate(zip(data, stages)):
        left, right = model_x[i] + width / 2, model_x[i + 1] - width / 2
        middle = (left + right) / 2
        ax.add_patch(FancyArrowPatch((left, model_y), (right, model_y), arrowstyle="-|>", mutation_scale=18, lw=2))
        ax.text(middle, model_y + 0.2, f"{stage} ({notebook})", ha="center", va="bottom", fontsize=10)
        box(middle, data_y, item)
        ax.add_patch(
            FancyArrowPatch(
                (middle, data_y + height / 2 + 0.05),
                (middle, model_y - 0.05),
                arrowstyle="-|>",
                mutation_scale=14,
                lw=1.2,
                color="#55A868",
            )
        )
    ax.add_patch(
        FancyBboxPatch((0.2, 0.25), 9.6, 0.45, boxstyle="round,pad=0.03", facecolor="#F6EEDC", edgecolor="#C4A15A")
    )
    ax.text(
        5,
        0.475,
        "evaluation (01) and ablations (06): MT-Bench, AlpacaEval, multiple choice, for every model",
        ha="center",
        va="center",
        fontsize=9,
    )
    ax.set_title("The Zephyr recipe: distilled SFT, AI feedback, distilled DPO", fontsize=11)
    fig.tight_layout()
    return fig
