"""Evaluation of chat models, the two ways the Zephyr paper uses (notebook 01), and the judges every stage uses.

- **LLM-as-judge** (:mod:`.judges`, :mod:`.items`, :mod:`.prompts`, :mod:`.parsing`, :mod:`.metrics`):
  one :class:`Judge` interface compares two answers (AlpacaEval, MT-Bench pairwise), grades one
  (MT-Bench single) or rates completions on UltraFeedback's four aspects (:mod:`.rating`), with position
  swap, safe parsing and win rates with errors. :class:`LLMJudge` generates its verdict through a chat
  backend; :class:`LogprobJudge` (:mod:`.logprob_judge`) reads it from next-token probabilities.
- **A rule-based judge** (:mod:`.rule_judge`): the cpu profile's stand-in for GPT-4, rating answers to
  verifiable prompts ("in one sentence", "reply with the number only") by checks code can run.
- **Next-token multiple choice** (:mod:`.multiple_choice`): score each choice by
  its log-likelihood, as lm-evaluation-harness does for ARC, HellaSwag and MMLU.
"""

from .items import (
    REFERENCE_CATEGORIES,
    PairwiseItem,
    PairwiseJudgment,
    PairwiseReport,
    SingleItem,
    SingleJudgment,
    combine_orders,
    load_human_labels,
    load_pairwise_items,
    load_single_items,
    ratings_by_human_label,
    reference_answers,
    single_items_from_pairs,
)
from .judges import JUDGES, Judge, JudgeOptions, LLMJudge, make_judge, register_judge
from .logprob_judge import VERDICT_PREFIX, LogprobJudge, digit_continuations
from .metrics import (
    LENGTH_CONTROLLED_LABEL,
    Agreement,
    Estimate,
    JudgeDrift,
    WinRate,
    agreement,
    judge_drift,
    length_controlled_win_rate,
    mean_score,
    win_rate,
)
from .multiple_choice import (
    DEFAULT_PROMPT,
    HUB_BENCHMARKS,
    MCItem,
    MCItemResult,
    MCReport,
    build_requests,
    encode_pair,
    evaluate_multiple_choice,
    load_hub_benchmark,
    load_mc_items,
    score_continuations,
    starts_with_choice,
)
from .parsing import Parsed, parse_alpaca_ranking, parse_pairwise_verdict, parse_rating
from .prompts import (
    PAIRWISE_PROMPTS,
    SINGLE_PROMPTS,
    alpaca_eval_ranking_prompt,
    mt_bench_pairwise_prompt,
    mt_bench_single_prompt,
    pairwise_prompt,
    register_pairwise_prompt,
    register_single_prompt,
    single_prompt,
)
from .rating import ASPECTS, Rating, RatingParseError, build_rating_prompt, parse_ratings, shuffled_order
from .rule_judge import CHECKS, PromptSpec, RuleJudge, default_catalog, prompt_catalog, read_verifiable_prompts

__all__ = [name for name in dir() if not name.startswith("_")]
