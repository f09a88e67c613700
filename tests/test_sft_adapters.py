"""The trained adapter: loading on 4-bit, merging into a de-quantized base, template adherence."""

from __future__ import annotations

import pytest
import torch

from zephyr_tutorial import sft
from zephyr_tutorial.chat_template import apply_zephyr_template
from zephyr_tutorial.models import load_adapter_model
from zephyr_tutorial.profiles import get_profile

from samples import TINY_SFT_RECIPE, messages_dataset, tiny_profile


def test_adapter_loads_on_4bit_and_merges_into_dequantized_base(tmp_path, tiny_nf4_dir, zephyr_tokenizer):
    import bitsandbytes as bnb

    profile = tiny_profile(tiny_nf4_dir, max_steps=3)
    model, tokenizer = sft.load_model_for_training(profile, TINY_SFT_RECIPE)
    adapter = sft.train_sft(
        model, tokenizer, messages_dataset(12), args=sft.sft_config(profile, TINY_SFT_RECIPE, tmp_path / "run")
    ).adapter_dir

    quantized, tokenizer = load_adapter_model(adapter, profile)
    assert any(isinstance(module, bnb.nn.Linear4bit) for module in quantized.modules())
    assert tokenizer.chat_template == apply_zephyr_template(zephyr_tokenizer).chat_template

    plain, _ = load_adapter_model(adapter, profile, quantized=False)
    merged_dir = sft.merge_adapter(adapter, profile, tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    ids = torch.tensor([zephyr_tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        adapter_logits, merged_logits = plain(ids).logits, merged(ids).logits
    assert torch.allclose(adapter_logits, merged_logits, atol=1e-4)
    with torch.no_grad(), plain.disable_adapter():
        base_logits = plain(ids).logits
    assert not torch.allclose(base_logits, merged_logits, atol=1e-4)  # training moved the weights


def test_loading_without_an_adapter_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_sft"):
        load_adapter_model(tmp_path, get_profile("cpu"))


def test_template_adherence_counts_clean_stops():
    from zephyr_tutorial.backends import Completion

    completions = [
        Completion("Paris.", finish_reason="stop"),
        Completion("Rome. <|user|>\nAnd", finish_reason="stop"),
        Completion("one two three four", finish_reason="length"),
        Completion("Hola."),
    ]
    adherence = sft.template_adherence(completions)
    assert adherence.as_dict() == {"stop_rate": 0.75, "no_invented_turns": 0.75}
    assert adherence.stop_rate.n == 4 and adherence.stop_rate.low < 0.75 < adherence.stop_rate.high
    assert not sft.template_adherence([Completion("Fine.\nUser: and you?")]).no_invented_turns.estimate
