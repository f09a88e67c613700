"""Synthetic SFT data: from a few human seed prompts to a filtered multi-turn dataset (notebook 02).

- :mod:`.ultrachat` — the UltraChat/Zephyr loop (assistant ↔ user simulator), resumable;
- :mod:`.self_instruct` — self-instruct bootstrapping with the ROUGE-L ≤ 0.7 novelty filter;
- :mod:`.similarity` — ROUGE-L, distinct-n, MinHash (from scratch, and through rapidfuzz / datasketch);
- :mod:`.filtering` — truecasing and the ultrachat_200k cleaning filters, every removal listed
  (``filter_dialogues`` for a list, ``filter_dataset`` for a ``datasets.Dataset`` or a stream);
- :mod:`.datasets` — seeds, ultrachat_200k-shaped splits (the schema itself: :mod:`zephyr_tutorial.schemas`).

The commands are ``zephyr-tutorial generate`` and ``zephyr-tutorial filter`` (:mod:`zephyr_tutorial.cli`).
"""

from .datasets import SECTORS, load_seed_prompts, rows_to_dataset, save_sft_splits, shipped_sft_path, to_sft_row
from .filtering import (
    FilterConfig,
    FilterReport,
    Rejection,
    filter_dataset,
    filter_dialogues,
    structure_problem,
    truecase,
    truncation_suspect,
)
from .self_instruct import (
    SelfInstructConfig,
    SelfInstructResult,
    blacklist_hit,
    bootstrap_instructions,
    clean_instruction,
    rejection_reason,
)
from .similarity import RougeLIndex, distinct_n, pairwise_rouge_l, rouge_l
from .ultrachat import (
    GenerationStats,
    UltraChatConfig,
    clean_user_message,
    continuable_prefix,
    dialogue_id,
    generate_ultrachat,
    grow_dialogues,
    user_simulator_request,
)

__all__ = [name for name in dir() if not name.startswith("_")]
