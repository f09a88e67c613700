"""Plotting functions of the notebooks: plain functions that take data and return a matplotlib Figure.

They are tested in pytest (the figure holds the expected data) and used by the
notebooks and by the ipywidgets views. One module per notebook; each function
creates its own figure and never calls ``plt.show()`` (Jupyter displays the
returned figure).
"""

from .ablations import plot_ablations
from .dpo import (
    DPO_LOSS_COLORS,
    plot_dpo_ablation,
    plot_dpo_losses,
    plot_dpo_training_dynamics,
    plot_label_noise,
)
from .evaluation import (
    plot_agreement,
    plot_mc_accuracy_by_category,
    plot_mc_margins,
    plot_position_bias,
    plot_single_ratings,
    plot_win_rates,
)
from .feedback import plot_aspect_correlations, plot_chosen_policies, plot_rating_distributions, plot_score_margins
from .generation import (
    plot_distinct_n,
    plot_filter_counts,
    plot_similarity_histograms,
    plot_threshold_sweep,
    plot_truncation_evidence,
    plot_turn_lengths,
)
from .setup import plot_parameter_breakdown, plot_pipeline
from .sft import plot_answer_endings, plot_memory_breakdown, plot_sft_curves
from .training import plot_tracked_scalars

__all__ = [name for name in dir() if name.startswith("plot_")] + ["DPO_LOSS_COLORS"]
