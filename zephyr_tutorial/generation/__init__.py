"""Synthetic SFT data: from a few human seed prompts to a filtered multi-turn dataset (notebook 02).

- :mod:`.ultrachat` — the UltraChat/Zephyr loop (assistant ↔ user simulator), resumable;
- :mod:`.self_instruct` — self-instruct bootstrapping with the ROUGE-L ≤ 0.7 novelty filter;
- :mod:`.similarity` — ROUGE-L, distinct-n, MinHash;
- :mod:`.datasets` — seeds, ultrachat_200k-shaped splits, the ultrachat_200k loader;
- :mod:`zephyr_tutorial.filtering` — truecasing and the cleaning filters;
- :mod:`.cli` — ``zephyr-tutorial generate`` and ``zephyr-tutorial filter``.
"""

from zephyr_tutorial.generation.cli import register_cli
from zephyr_tutorial.generation.datasets import (
    SECTORS,
    SFT_SPLITS,
    load_seed_prompts,
    load_sft_split,
    load_ultrachat_200k,
    prompt_id_for,
    save_sft_splits,
    shipped_sft_path,
    split_train_test,
    to_sft_row,
)
from zephyr_tutorial.generation.self_instruct import (
    SelfInstructConfig,
    SelfInstructResult,
    blacklist_hit,
    bootstrap_instructions,
    clean_instruction,
    rejection_reason,
)
from zephyr_tutorial.generation.similarity import distinct_n, pairwise_rouge_l, rouge_l
from zephyr_tutorial.generation.ultrachat import (
    GenerationStats,
    UltraChatConfig,
    clean_user_message,
    continuable_prefix,
    dialogue_id,
    generate_ultrachat,
    grow_dialogues,
    user_simulator_request,
)

__all__ = [
    "SECTORS", "SFT_SPLITS", "load_seed_prompts", "load_sft_split", "load_ultrachat_200k", "prompt_id_for",
    "save_sft_splits", "shipped_sft_path", "split_train_test", "to_sft_row", "SelfInstructConfig",
    "SelfInstructResult", "blacklist_hit", "bootstrap_instructions", "clean_instruction", "rejection_reason", "distinct_n",
    "pairwise_rouge_l", "rouge_l", "GenerationStats", "UltraChatConfig", "clean_user_message", "continuable_prefix", "dialogue_id",
    "generate_ultrachat", "grow_dialogues", "user_simulator_request", "register_cli",
]
