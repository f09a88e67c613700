"""AI feedback (UltraFeedback): a completion pool, a judge's 4-aspect ratings, and binarized preference pairs.

Modules: :mod:`.pool` (policies that answer), :mod:`.rating` (rubric, robust
parsing, :class:`TextJudge`), :mod:`.probability_judge` (digit-probability
judge for small local models), :mod:`.binarize` (chosen/rejected selection,
schema, loaders), :mod:`.pipeline` (resumable stages), :mod:`.quality`
(agreement with humans and between aspects), :mod:`.cli`.
"""

from .binarize import (
    STRATEGIES,
    binarize,
    load_ultrafeedback_binarized,
    read_preferences,
    select_pair,
    split_train_test,
    validate_preference_row,
)
from .cli import make_judge, register_cli
from .pipeline import format_pair, rate_completions, rating_row, rating_table, write_preferences
from .pool import (
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
from .probability_judge import ProbabilityJudge
from .quality import aspect_correlations, judge_agreement, load_human_pairs, missing_reasons, scores_by_policy
from .rating import ASPECTS, Rating, RatingParseError, TextJudge, build_rating_prompt, parse_ratings, shuffled_order
