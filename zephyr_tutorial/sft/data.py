"""The assistant-only loss mask of SFT rows (the rows themselves: :mod:`zephyr_tutorial.schemas`)."""

from __future__ import annotations

from ..chat_template import apply_zephyr_template


def assistant_token_mask(tokenizer, messages) -> tuple[list[int], list[int]]:
    """``(input_ids, mask)`` of a conversation in the Zephyr template (mask 1: trained by ``assistant_only_loss``)."""
    encoded = apply_zephyr_template(tokenizer).apply_chat_template(
        messages, return_dict=True, return_assistant_tokens_mask=True
    )
    return encoded["input_ids"], encoded["assistant_masks"]


def loss_mask_view(tokenizer, messages, max_length: int | None = None) -> list[tuple[str, bool]]:
    """``[(token_text, is_trained), ...]`` of a conversation, exactly as TRL masks it with ``assistant_only_loss``."""
    ids, mask = assistant_token_mask(tokenizer, messages)
    ids, mask = ids[:max_length], mask[:max_length]
    return [(tokenizer.decode([token]), bool(trained)) for token, trained in zip(ids, mask)]
