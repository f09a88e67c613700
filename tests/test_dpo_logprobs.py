"""Completion log-probabilities, tokenization of pairs, and the reference without a second model."""

from __future__ import annotations

import pytest
import torch

from zephyr_tutorial.dpo import (
    collate_preferences,
    pair_logprobs,
    reference_model,
    sequence_logprobs,
    tokenize_preference,
)

from samples import ROWS


def test_sequence_logprobs_sum_completion_tokens_only(tiny_model, zephyr_tokenizer):
    tokens = [
        tokenize_preference(zephyr_tokenizer, r["chosen"][:-1], r["chosen"][-1:], r["rejected"][-1:]) for r in ROWS
    ]
    batch = collate_preferences(tokens, zephyr_tokenizer.pad_token_id)
    with torch.no_grad():
        chosen, rejected = pair_logprobs(tiny_model, batch)
        # by hand, one unpadded sequence at a time
        for row, example in enumerate(tokens):
            ids = torch.tensor([example["prompt_ids"] + example["chosen_ids"]])
            log_probs = torch.log_softmax(tiny_model(input_ids=ids).logits[0], dim=-1)
            start = len(example["prompt_ids"])
            manual = sum(log_probs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
            assert chosen[row].item() == pytest.approx(manual, abs=1e-4)
        # changing prompt tokens' targets is irrelevant only through the mask: zero mask -> zero log-prob
        empty = dict(batch, completion_mask=torch.zeros_like(batch["completion_mask"]))
        assert sequence_logprobs(tiny_model, **empty).abs().max().item() == 0.0
    assert rejected.shape == (len(ROWS),)


def test_tokenized_completion_ends_with_the_end_of_turn(zephyr_tokenizer):
    example = tokenize_preference(
        zephyr_tokenizer, ROWS[0]["chosen"][:-1], ROWS[0]["chosen"][-1:], ROWS[0]["rejected"][-1:]
    )
    prompt_text = zephyr_tokenizer.decode(example["prompt_ids"])
    assert prompt_text.endswith("<|assistant|>\n")
    assert (
        zephyr_tokenizer.decode(example["chosen_ids"])
        == "Paris is the capital of France." + zephyr_tokenizer.eos_token + "\n"
    )


def test_reference_model_uses_frozen_ref_adapter_or_disables(tiny_model, zephyr_tokenizer):
    from peft import LoraConfig, get_peft_model

    tokens = [
        tokenize_preference(zephyr_tokenizer, r["chosen"][:-1], r["chosen"][-1:], r["rejected"][-1:]) for r in ROWS
    ]
    batch = collate_preferences(tokens, zephyr_tokenizer.pad_token_id)
    with torch.no_grad():
        base = pair_logprobs(tiny_model, batch)[0]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(tiny_model, config)
    with torch.no_grad():
        with reference_model(model):  # no "ref" adapter: the base model
            assert torch.allclose(pair_logprobs(model, batch)[0], base, atol=1e-5)
        model.add_adapter("ref", config)  # a frozen copy, as TRL makes for an SFT adapter
        for name, parameter in model.named_parameters():
            if ".ref." in name:
                parameter.data.copy_(model.get_parameter(name.replace(".ref.", ".default.")))
        with_adapter = pair_logprobs(model, batch)[0]
        assert not torch.allclose(with_adapter, base, atol=1e-3)
        with reference_model(model):
            assert torch.allclose(pair_logprobs(model, batch)[0], with_adapter, atol=1e-6)
    assert model.active_adapter == "default"
