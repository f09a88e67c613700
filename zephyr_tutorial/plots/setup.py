"""Figures of notebook 00 (setup)."""

from __future__ import annotations


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
