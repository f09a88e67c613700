"""Sequence log-probabilities of completions, and the reference model without a second copy.

DPO needs :math:`\\log \\pi(y|x)` for whole completions. A causal LM gives, at
every position :math:`t`, a distribution over the next token; the log-probability
of the completion is the sum of the log-probabilities of its own tokens:

.. math:: \\log \\pi(y|x) = \\sum_{t \\in \\text{completion}} \\log \\pi(s_{t} \\mid s_{<t})

where :math:`s = x \\Vert y` is prompt and completion concatenated. Prompt
tokens and padding are masked out: the prompt is given, not chosen, and padding
is not text. The pair layout (chosen rows first, then rejected rows, one
right-padded batch) is TRL's, so our numbers can be compared with its trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch


def tokenize_preference(tokenizer, prompt: Sequence[Mapping], chosen: Sequence[Mapping], rejected: Sequence[Mapping]):
    """Token ids of one pair: ``{"prompt_ids", "chosen_ids", "rejected_ids"}``.

    The prompt is rendered with the generation prompt (``<|assistant|>\\n``); a
    completion is what ``prompt + completion`` adds after the longest common
    prefix (the end-of-turn tokens belong to the completion, so DPO also teaches
    when to stop).
    """
    prompt_ids = list(
        tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )
    full = {}
    for name, completion in (("chosen", chosen), ("rejected", rejected)):
        full[name] = list(
            tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=True, return_dict=True)["input_ids"]
        )
    prompt_length = min(_common_prefix(prompt_ids, full["chosen"]), _common_prefix(prompt_ids, full["rejected"]))
    return {
        "prompt_ids": prompt_ids[:prompt_length],
        "chosen_ids": full["chosen"][prompt_length:],
        "rejected_ids": full["rejected"][prompt_length:],
    }


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def collate_preferences(examples: Sequence[Mapping], pad_token_id: int, max_length: int | None = None) -> dict:
    """One right-padded batch of ``2 * len(examples)`` rows: all chosen sequences, then all rejected.

    ``completion_mask`` is 1 on completion tokens and 0 on prompt and padding;
    ``max_length`` cuts each sequence at its end (the prompt start is kept).
    """
    sequences, masks = [], []
    for key in ("chosen_ids", "rejected_ids"):
        for example in examples:
            ids = list(example["prompt_ids"]) + list(example[key])
            mask = [0] * len(example["prompt_ids"]) + [1] * len(example[key])
            sequences.append(ids[:max_length])
            masks.append(mask[:max_length])
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    completion_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (ids, mask) in enumerate(zip(sequences, masks)):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        completion_mask[row, : len(ids)] = torch.tensor(mask)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask}


def pair_width(
    prompt_ids: Sequence, chosen_ids: Sequence, rejected_ids: Sequence, max_length: int | None = None
) -> int:
    """The columns a tokenized pair takes in a batch of :func:`collate_preferences`: its prompt and its longer
    reply, cut at ``max_length``. A batch is as wide as its widest pair, which is why pairs are batched by it."""
    longest = len(prompt_ids) + max(len(chosen_ids), len(rejected_ids))
    return min(longest, max_length) if max_length else longest


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\pi(s_{t+1} \\mid s_{\\le t})` for every position: shape ``(batch, seq - 1)``.

    The logits at position :math:`t` predict token :math:`t+1`, hence the shift.
    """
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return log_probs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """:math:`\\sum_t m_t \\log \\pi(s_t|s_{<t})` per row, with :math:`m` the completion mask (prompt, padding = 0)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    per_token = token_logprobs(logits, input_ids)
    mask = completion_mask[:, 1:].bool()
    return torch.where(mask, per_token, torch.zeros_like(per_token)).sum(dim=-1)


def pair_logprobs(model, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(chosen_logps, rejected_logps)`` of a batch from :func:`collate_preferences`."""
    logps = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    return logps.chunk(2, dim=0)


def completion_lengths(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Number of completion tokens of the chosen and rejected rows (IPO's per-token normalisation)."""
    return batch["completion_mask"].sum(dim=1).chunk(2, dim=0)


@contextlib.contextmanager
def reference_model(model):
    """Make a PEFT ``model`` behave as the frozen reference for the duration of the block.

    Two cases, neither of which keeps a second copy of the base weights:

    - the model has a frozen ``"ref"`` adapter (TRL adds it, a copy of the SFT
      adapter, when DPO continues training an SFT adapter): activate it;
    - otherwise the adapter being trained started from zero on top of the
      reference weights: disable all adapters.
    """
    peft_config = getattr(model, "peft_config", None)
    if not peft_config:
        raise TypeError("reference_model() needs a PEFT model; pass a separate reference model instead")
    if "ref" in peft_config:
        previous = model.active_adapter
        model.set_adapter("ref")
        try:
            yield model
        finally:
            model.set_adapter(previous)
    else:
        with model.disable_adapter():
            yield model


def policy_and_reference_logprobs(model, batch, ref_model=None) -> dict[str, torch.Tensor]:
    """Policy log-probs (with gradients) and reference log-probs (without) of one batch.

    The reference is ``ref_model`` when given, else ``model`` under :func:`reference_model`.
    """
    policy_chosen, policy_rejected = pair_logprobs(model, batch)
    with torch.no_grad():
        if ref_model is not None:
            ref_chosen, ref_rejected = pair_logprobs(ref_model, batch)
        else:
            with reference_model(model):
                ref_chosen, ref_rejected = pair_logprobs(model, batch)
    return {
        "policy_chosen_logps": policy_chosen,
        "policy_rejected_logps": policy_rejected,
        "reference_chosen_logps": ref_chosen,
        "reference_rejected_logps": ref_rejected,
    }
