"""The assistant-only loss mask of SFT rows (the rows themselves: :mod:`zephyr_tutorial.schemas`)."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class LengthFit:
    """What :func:`fit_to_length` kept and left out, so that no row disappears silently."""

    max_length: int
    kept: int
    left_out: int
    longest_left_out: int | None

    def __str__(self) -> str:
        if not self.left_out:
            return f"all {self.kept} rows fit in {self.max_length} tokens"
        return (
            f"{self.kept} of {self.kept + self.left_out} rows fit in {self.max_length} tokens; {self.left_out} "
            f"longer ones (up to {self.longest_left_out} tokens) are left out rather than cut"
        )


def fit_to_length(dataset, tokenizer, max_length: int):
    """``(rows that fit, LengthFit)``: the rows whose Zephyr rendering has at most ``max_length`` tokens.

    TRL cuts a longer row at ``max_length``, which removes its last reply's end-of-turn token: the one token that
    teaches the model where an answer ends. Leaving such rows out (and saying how many) keeps every trained
    reply whole.
    """
    lengths = [len(assistant_token_mask(tokenizer, messages)[0]) for messages in dataset["messages"]]
    keep = [i for i, length in enumerate(lengths) if length <= max_length]
    longer = [length for length in lengths if length > max_length]
    report = LengthFit(max_length, len(keep), len(longer), max(longer) if longer else None)
    return dataset.select(keep), report
