"""Plotting functions of the notebooks: plain functions that take data and return a matplotlib Figure.

They are tested in pytest (the figure holds the expected data) and used by the
notebooks and by the ipywidgets views. One module per notebook; each function
creates its own figure and never calls ``plt.show()`` (Jupyter displays the
returned figure).
"""

from .setup import plot_parameter_breakdown  # noqa: F401
from .evaluation import plot_win_rates, plot_position_bias, plot_agreement, plot_mc_accuracy_by_category, plot_mc_margins  # noqa: F401
from .generation import plot_turn_lengths, plot_similarity_histograms, plot_distinct_n, plot_filter_counts  # noqa: F401
from .sft import plot_sft_curves, plot_memory_breakdown  # noqa: F401
from .feedback import plot_rating_distributions, plot_score_margins, plot_aspect_correlations, plot_chosen_policies  # noqa: F401
from .dpo import plot_dpo_losses, plot_dpo_training_dynamics, plot_dpo_ablation, DPO_LOSS_COLORS  # noqa: F401
