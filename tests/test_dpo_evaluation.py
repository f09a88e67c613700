"""Held-out implicit rewards and the judged win rate against the SFT adapter."""

from __future__ import annotations

import pytest

from samples import ROWS


def test_heldout_implicit_rewards_match_the_loss_and_start_at_zero(sft_like_model, embedded_tokenizer):
    import torch

    from zephyr_tutorial.chat_template import apply_zephyr_template
    from zephyr_tutorial.dpo import (
        collate_preferences,
        dpo_loss,
        evaluate_implicit_rewards,
        pair_logprobs,
        tokenize_preference,
    )
    from zephyr_tutorial.schemas import to_trl_preference

    tokenizer = apply_zephyr_template(embedded_tokenizer)
    model = sft_like_model
    config = model.peft_config["default"]
    model.add_adapter("ref", config)
    for name, parameter in model.named_parameters():
        if ".ref." in name:
            parameter.data.copy_(model.get_parameter(name.replace(".ref.", ".default.")))
    at_start = evaluate_implicit_rewards(model, tokenizer, ROWS, beta=0.1, batch_size=3)
    assert at_start.n == len(ROWS) and max(abs(m) for m in at_start.margins) < 1e-6

    with torch.no_grad():  # move the trained adapter away from the reference
        for name, parameter in model.named_parameters():
            if ".default." in name and "lora_B" in name:
                parameter.add_(0.05 * torch.randn_like(parameter))
    report = evaluate_implicit_rewards(model, tokenizer, ROWS, beta=0.1, batch_size=3)
    batch = collate_preferences(
        [tokenize_preference(tokenizer, **to_trl_preference(r)) for r in ROWS], tokenizer.pad_token_id
    )
    with torch.no_grad():
        chosen, rejected = pair_logprobs(model, batch)
        model.set_adapter("ref")
        ref_chosen, ref_rejected = pair_logprobs(model, batch)
        model.set_adapter("default")
    expected = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    assert report.chosen_rewards == pytest.approx(expected.chosen_rewards.tolist(), abs=1e-5)
    assert report.accuracy == expected.reward_accuracy
    assert report.mean_margin == pytest.approx(expected.margins.mean().item(), abs=1e-5)

    # the reference's log-probs kept and reused: the same rewards, and the reference never runs again
    kept: dict = {}
    first = evaluate_implicit_rewards(model, tokenizer, ROWS, beta=0.1, batch_size=3, reference_logps=kept)
    assert first.chosen_rewards == pytest.approx(report.chosen_rewards, abs=1e-6)
    reference_passes = []
    hook = model.register_forward_pre_hook(lambda module, args: reference_passes.append(module.active_adapter))
    try:
        again = evaluate_implicit_rewards(model, tokenizer, ROWS, beta=0.1, batch_size=3, reference_logps=kept)
    finally:
        hook.remove()
    assert again.chosen_rewards == pytest.approx(first.chosen_rewards, abs=1e-6)
    assert reference_passes and "ref" not in reference_passes  # only the policy ran
    other_rows = evaluate_implicit_rewards(model, tokenizer, ROWS[:2], beta=0.1, batch_size=3, reference_logps=kept)
    assert other_rows.chosen_rewards == pytest.approx(first.chosen_rewards[:2], abs=1e-6) and len(kept) == 2


class AlwaysFirstJudge:
    """A judge backend that always prefers the answer shown first: position bias in its purest form."""

    name = "always-first"

    def chat(self, conversations, config=None):
        from zephyr_tutorial.backends import Completion

        return [Completion(text="Both are fine. [[A]]") for _ in conversations]


def test_judged_win_rate_compares_the_two_adapters(sft_like_model, embedded_tokenizer):
    from zephyr_tutorial.chat_template import apply_zephyr_template
    from zephyr_tutorial.dpo import judged_win_rate
    from zephyr_tutorial.evaluation import LLMJudge

    tokenizer = apply_zephyr_template(embedded_tokenizer)
    model = sft_like_model
    model.add_adapter("ref", model.peft_config["default"])  # freshly initialised: answers differ from "default"
    report, answers = judged_win_rate(model, tokenizer, ROWS[:2], LLMJudge(AlwaysFirstJudge()), max_new_tokens=4)
    assert len(answers["dpo"]) == len(answers["sft"]) == 2
    seen = []

    class RecordingJudge:  # any Judge works: here one that only records what it is asked to compare
        def compare(self, items, *, swap=True):
            seen.extend(items)
            return report

    judged_win_rate(model, tokenizer, ROWS[:2], RecordingJudge(), max_new_tokens=4)
    assert [item.output_a for item in seen] == [answer or "(empty answer)" for answer in answers["dpo"]]
    assert [item.output_b for item in seen] == [answer or "(empty answer)" for answer in answers["sft"]]
    assert model.active_adapter == "default"
    # the swap turns a pure position bias into ties: win rate exactly one half
    assert report.win_rate("a").value == 0.5 and report.win_rate("a").ties == 2
