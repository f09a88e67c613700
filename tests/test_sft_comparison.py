"""Before/after SFT: reply lengths, the answer budget, stop rates at every budget, teacher-forced p(EOS)."""

from __future__ import annotations

import pytest

from zephyr_tutorial import sft
from zephyr_tutorial.profiles import get_profile

from samples import CONVERSATIONS, TINY_SFT_RECIPE, real_example


def test_reply_lengths_follow_the_assistant_mask_and_size_the_budget(zephyr_tokenizer):
    messages = real_example()
    lengths = sft.reply_token_lengths(zephyr_tokenizer, [messages, CONVERSATIONS[1]])
    replies = [m["content"] for m in messages + CONVERSATIONS[1] if m["role"] == "assistant"]
    assert lengths == [
        len(zephyr_tokenizer.encode(r + zephyr_tokenizer.eos_token, add_special_tokens=False)) for r in replies
    ]
    assert sum(lengths[:-2]) == sum(trained for _, trained in sft.loss_mask_view(zephyr_tokenizer, messages))
    assert sft.reply_token_lengths(zephyr_tokenizer, [messages] * 5, limit=2) == lengths[:-2] * 2

    assert sft.answer_budget([10, 40]) == 64  # 1.5 x 40 = 60, rounded up to a multiple of 16
    assert sft.answer_budget([10, 40], headroom=1.0, multiple=1) == 40
    assert sft.answer_budget([10, 400], cap=512) == 512
    with pytest.raises(ValueError, match="no assistant replies"):
        sft.answer_budget([])


def test_ended_within_reads_the_stop_rate_at_every_budget():
    from zephyr_tutorial.backends import Completion

    answers = [
        Completion("a", completion_tokens=5, finish_reason="stop"),
        Completion("b", completion_tokens=30, finish_reason="stop"),
        Completion("c", completion_tokens=64, finish_reason="length"),
    ]
    assert sft.ended_within(answers, [4, 5, 29, 30, 1000]) == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert sft.ended_within([3, 8, 8, 20], [2, 8, 20]) == [0.0, 0.75, 1.0]  # reference lengths always end


def test_a_model_that_learned_to_stop_is_cut_by_a_short_budget_and_stops_with_the_data_budget(zephyr_tokenizer):
    """The notebook-03 regression: after SFT the answers got as long as the training replies, and a fixed
    64-token budget reported them as "did not stop". Here a tiny model memorises one 24-token reply."""
    from datasets import Dataset

    from zephyr_tutorial.models import build_tiny_model

    reply = (
        "The river starts in the northern hills, flows south past three towns and ends in Lake Amber "
        "after forty kilometres."
    )
    conversation = [{"role": "user", "content": "Describe the river."}, {"role": "assistant", "content": reply}]
    (length,) = sft.reply_token_lengths(zephyr_tokenizer, [conversation])
    base = build_tiny_model(zephyr_tokenizer)
    profile = get_profile("cpu").with_overrides(
        load_in_4bit=False, gradient_checkpointing=False, max_steps=20, per_device_batch_size=2
    )
    model, tokenizer = sft.load_model_for_training(profile, TINY_SFT_RECIPE, model=base, tokenizer=zephyr_tokenizer)
    with model.disable_adapter():
        eos_before = sft.eos_probabilities(model, tokenizer, [conversation])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args = sft.sft_config(
            profile, TINY_SFT_RECIPE, f"{tmp}/run", lr_scheduler_type="constant", save_strategy="no", disable_tqdm=True
        )
        sft.train_sft(model, tokenizer, Dataset.from_list([{"messages": conversation}] * 40), args=args)
    model.eval()
    eos_after = sft.eos_probabilities(model, tokenizer, [conversation])
    # The tiny model's logits stay nearly flat (tied embeddings of std 0.02), so p(EOS) stays near 1/vocabulary in
    # absolute terms; what training changes is where EOS ranks. Absolute values are checked on the real model below.
    assert eos_after["at_end"][0] > eos_before["at_end"][0]
    assert eos_after["at_end"][0] > eos_after["inside"][0]  # it learned where the reply ends, not "say EOS"

    budget = sft.answer_budget([length])
    (short,) = sft.generate_answers(model, tokenizer, ["Describe the river."], max_new_tokens=length - 1)
    (full,) = sft.generate_answers(model, tokenizer, ["Describe the river."], max_new_tokens=budget)
    assert (short.finish_reason, full.finish_reason) == ("length", "stop")
    assert full.text == reply and full.completion_tokens == length
    # one long greedy generation gives the stop rate of every smaller budget
    assert sft.ended_within([full], [length - 1, budget]) == [0.0, 1.0]


def test_eos_probabilities_are_high_where_replies_end_and_low_inside(
    embedded_model_and_tokenizer, embedded_model_dir, monkeypatch
):
    from transformers import AutoTokenizer

    from zephyr_tutorial import chat_template

    model, _ = embedded_model_and_tokenizer
    # With its own EOS <|im_end|> as end of turn, SmolLM2-Instruct already knows where a reply ends ...
    monkeypatch.setattr(chat_template, "END_OF_TURN_TOKEN", None)
    known = chat_template.apply_zephyr_template(AutoTokenizer.from_pretrained(embedded_model_dir))
    assert known.eos_token == "<|im_end|>"
    probabilities = sft.eos_probabilities(model, known, CONVERSATIONS)
    assert len(probabilities["at_end"]) == len(probabilities["inside"]) == 5  # one per assistant reply
    assert sorted(probabilities["at_end"])[2] > 0.2
    assert max(probabilities["inside"]) < 0.05
    # ... with the default <|endoftext|> (Mistral's </s> in the paper) it does not: SFT has to teach it.
    monkeypatch.undo()
    unknown = chat_template.apply_zephyr_template(AutoTokenizer.from_pretrained(embedded_model_dir))
    assert unknown.eos_token == "<|endoftext|>"
    assert max(sft.eos_probabilities(model, unknown, CONVERSATIONS)["at_end"]) < 0.05
