"""SFT data in the ultrachat_200k schema and the assistant-only loss mask."""

from __future__ import annotations

import os
from pathlib import Path

from ..chat_template import apply_zephyr_template
from ..runtime import data_dir

SFT_FIELDS = {"prompt": str, "prompt_id": str, "messages": list}


def _check_sft_row(row: dict, path: str, line: int) -> None:
    from ..data import DataError, check_messages

    check_messages(row["messages"], path, line)
    if not any(m["role"] == "assistant" for m in row["messages"]):
        raise DataError(path, line, "messages", "no assistant turn: nothing to learn from this row")


def load_sft_splits(profile, folder: str | os.PathLike | None = None):
    """``DatasetDict(train, test)`` of ``messages`` in the ultrachat_200k schema, capped by the profile.

    Local (``profile.sft_dataset == "local"``): ``train_sft.jsonl``/``test_sft.jsonl``
    in ``folder`` (default ``data/sft``), validated row by row; otherwise the hub
    dataset's ``train_sft``/``test_sft`` splits.
    """
    from datasets import Dataset, DatasetDict, load_dataset

    from ..data import read_jsonl

    splits = {}
    for split, cap in (("train", profile.max_train_samples), ("test", profile.max_eval_samples)):
        if profile.sft_dataset == "local":
            path = Path(folder or data_dir() / "sft") / f"{split}_sft.jsonl"
            rows = read_jsonl(path, fields=SFT_FIELDS, validate=_check_sft_row)
            dataset = Dataset.from_list([{"messages": row["messages"]} for row in rows])
        else:
            dataset = load_dataset(profile.sft_dataset, split=f"{split}_sft").select_columns(["messages"])
        splits[split] = dataset.select(range(min(cap, len(dataset)))) if cap else dataset
    return DatasetDict(splits)


def assistant_token_mask(tokenizer, messages) -> tuple[list[int], list[int]]:
    """``(input_ids, mask)`` of one conversation in the Zephyr template; mask 1 = trained under ``assistant_only_loss``."""
    encoded = apply_zephyr_template(tokenizer).apply_chat_template(
        messages, return_dict=True, return_assistant_tokens_mask=True
    )
    return encoded["input_ids"], encoded["assistant_masks"]


def loss_mask_view(tokenizer, messages, max_length: int | None = None) -> list[tuple[str, bool]]:
    """``[(token_text, is_trained), ...]`` for one conversation, exactly as TRL masks it with ``assistant_only_loss``."""
    ids, mask = assistant_token_mask(tokenizer, messages)
    ids, mask = ids[:max_length], mask[:max_length]
    return [(tokenizer.decode([token]), bool(trained)) for token, trained in zip(ids, mask)]
