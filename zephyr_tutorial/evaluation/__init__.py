"""Evaluation of chat models, the two ways the Zephyr paper uses (notebook 01).

- **LLM-as-judge** (:mod:`.judge`, :mod:`.prompts`, :mod:`.parsing`, :mod:`.metrics`):
  a strong model compares two answers (AlpacaEval, MT-Bench pairwise) or grades one
  (MT-Bench single), with position swap, safe parsing and win rates with errors.
  :mod:`.logprob_judge` reads a small judge's verdict or rating from its next-token probabilities.
- **Next-token multiple choice** (:mod:`.multiple_choice`): score each choice by
  its log-likelihood, as lm-evaluation-harness does for ARC, HellaSwag and MMLU.

The ``eval-mc`` and ``judge`` commands are registered here (see :mod:`.commands`).
"""

from .commands import register_cli
from .judge import (
    JUDGE_SAMPLING,
    REFERENCE_CATEGORIES,
    PairwiseItem,
    PairwiseJudgment,
    PairwiseReport,
    SingleItem,
    SingleJudgment,
    judge_pairwise,
    judge_single,
    load_human_labels,
    load_pairwise_items,
    make_judge,
    ratings_by_human_label,
    reference_answers,
    single_items_from_pairs,
)
from .logprob_judge import VERDICT_PREFIX, judge_pairwise_logprobs, judge_single_logprobs
from .metrics import Agreement, Estimate, WinRate, agreement, length_controlled_win_rate, mean_score, win_rate
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
)
from .parsing import Parsed, parse_alpaca_ranking, parse_pairwise_verdict, parse_rating
from .prompts import alpaca_eval_ranking_prompt, mt_bench_pairwise_prompt, mt_bench_single_prompt, pairwise_prompt

__all__ = [name for name in dir() if not name.startswith("_")]
