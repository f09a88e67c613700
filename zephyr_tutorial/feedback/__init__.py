"""AI feedback (UltraFeedback): a completion pool, a judge's 4-aspect ratings, and binarized preference pairs.

Modules: :mod:`.pool` (policies that answer), :mod:`.binarize` (chosen/rejected selection),
:mod:`.pipeline` (resumable stages), :mod:`.quality` (agreement with humans and between aspects).
The rating itself (rubric, robust parsing, the judges) is :mod:`zephyr_tutorial.evaluation`'s, the
schema of the pairs and their split :mod:`zephyr_tutorial.schemas`'s; the command is ``zephyr-tutorial feedback``.
"""

from .binarize import FINISHED, STRATEGIES, binarize, flip_pairs, select_pair
from .pipeline import format_pair, rate_completions, rating_row, rating_table, write_preferences
from .pool import (
    DEMONSTRATIONS,
    PRINCIPLES,
    PolicyBackends,
    PolicySpec,
    build_conversation,
    default_pool,
    load_pool_config,
    principle_for,
    run_pool,
    truncate_words,
)
from .quality import aspect_correlations, judge_agreement, load_human_pairs, missing_reasons, scores_by_policy
from .verifiable_prompts import build_verifiable_prompts

__all__ = [name for name in dir() if not name.startswith("_")]
