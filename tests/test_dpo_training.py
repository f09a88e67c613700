"""train_dpo over TRL on a tiny model: the reference is the frozen SFT adapter, rewards move, runs resume."""

import json

import pytest

from zephyr_tutorial.dpo import dpo_config, latest_checkpoint, load_recipe, train_dpo
from zephyr_tutorial.dpo.commands import parse_overrides
from zephyr_tutorial.dpo.data import preference_dataset
from zephyr_tutorial.profiles import get_profile

from test_dpo import ROWS


@pytest.fixture()
def sft_like_model(tiny_model):
    """The tiny model with a non-zero LoRA adapter standing in for notebook 03's SFT adapter."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    return get_peft_model(tiny_model, config)


def test_train_dpo_starts_at_the_reference_learns_and_resumes(sft_like_model, embedded_tokenizer, tmp_path):
    from zephyr_tutorial.chat_template import apply_zephyr_template

    tokenizer = apply_zephyr_template(embedded_tokenizer)
    profile = get_profile("cpu").with_overrides(max_steps=4, per_device_batch_size=4, dpo_learning_rate=5e-3)
    args = dpo_config(profile, tmp_path / "run", save_steps=4, warmup_steps=0)
    run = train_dpo(sft_like_model, tokenizer, preference_dataset(ROWS), args=args)

    model = run.model
    assert set(model.peft_config) == {"default", "ref"}  # one base, two small adapters: no second model copy
    ref_trainable = [n for n, p in model.named_parameters() if ".ref." in n and p.requires_grad]
    assert not ref_trainable
    steps = run.training_metrics()
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert steps[0]["rewards/margins"] == 0.0  # policy == reference before the first update
    assert steps[-1]["rewards/margins"] > 0.0
    assert (run.adapter_dir / "adapter_config.json").is_file()
    assert json.loads((run.adapter_dir / "log_history.json").read_text())[0]["step"] == 1
    assert latest_checkpoint(tmp_path / "run").name == "checkpoint-4"

    # an interrupted run continues from its last checkpoint instead of starting over
    from peft import LoraConfig, get_peft_model

    from zephyr_tutorial.models import build_tiny_model

    fresh = get_peft_model(build_tiny_model(tokenizer), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                    init_lora_weights=False, task_type="CAUSAL_LM"))
    args = dpo_config(profile.with_overrides(max_steps=6), tmp_path / "run", save_steps=4, warmup_steps=0)
    resumed = train_dpo(fresh, tokenizer, preference_dataset(ROWS), args=args)
    assert resumed.resumed_from.name == "checkpoint-4"
    assert [e["step"] for e in resumed.training_metrics()] == [1, 2, 3, 4, 5, 6]


def test_recipe_overrides_go_to_the_right_section(tmp_path):
    recipe = load_recipe(overrides=parse_overrides(["--max_steps", "5", "--loss_type", "ipo", "--sft_adapter", "null"]))
    assert recipe["profile_overrides"]["max_steps"] == 5
    assert recipe["trainer"]["loss_type"] == "ipo"
    assert recipe["sft_adapter"] is None
    profile = get_profile("cpu").with_overrides(**recipe["profile_overrides"])
    args = dpo_config(profile, tmp_path, **recipe["trainer"])
    assert args.max_steps == 5 and args.loss_type == ["ipo"] and args.beta == profile.dpo_beta
    with pytest.raises(ValueError, match="DPOConfig"):
        dpo_config(profile, tmp_path, not_a_field=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: cpu\nmodle: x\n")
    with pytest.raises(ValueError, match="unknown top-level key"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="--key value"):
        parse_overrides(["max_steps", "5"])


def test_heldout_implicit_rewards_match_the_loss_and_start_at_zero(sft_like_model, embedded_tokenizer):
    import torch

    from zephyr_tutorial.chat_template import apply_zephyr_template
    from zephyr_tutorial.dpo import (collate_preferences, dpo_loss, evaluate_implicit_rewards, pair_logprobs,
                                     tokenize_preference, to_trl_preference)

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
    batch = collate_preferences([tokenize_preference(tokenizer, **to_trl_preference(r)) for r in ROWS], tokenizer.pad_token_id)
    with torch.no_grad():
        chosen, rejected = pair_logprobs(model, batch)
        model.set_adapter("ref")
        ref_chosen, ref_rejected = pair_logprobs(model, batch)
        model.set_adapter("default")
    expected = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    assert report.chosen_rewards == pytest.approx(expected.chosen_rewards.tolist(), abs=1e-5)
    assert report.accuracy == expected.reward_accuracy
    assert report.mean_margin == pytest.approx(expected.margins.mean().item(), abs=1e-5)


class AlwaysFirstJudge:
    """A judge that always prefers the answer shown first: position bias in its purest form."""

    name = "always-first"

    def chat(self, conversations, config=None):
        from zephyr_tutorial.backends import Completion

        return [Completion(text="Both are fine. [[A]]") for _ in conversations]


def test_judged_win_rate_compares_the_two_adapters(sft_like_model, embedded_tokenizer):
    from zephyr_tutorial.chat_template import apply_zephyr_template
    from zephyr_tutorial.dpo import judged_win_rate

    tokenizer = apply_zephyr_template(embedded_tokenizer)
    model = sft_like_model
    model.add_adapter("ref", model.peft_config["default"])  # freshly initialised: answers differ from "default"
    report, answers = judged_win_rate(model, tokenizer, ROWS[:2], AlwaysFirstJudge(), max_new_tokens=4)
    assert len(answers["dpo"]) == len(answers["sft"]) == 2
    seen = []
    judged_win_rate(model, tokenizer, ROWS[:2], lambda items: seen.extend(items) or report, max_new_tokens=4)
    assert [item.output_a for item in seen] == [answer or "(empty answer)" for answer in answers["dpo"]]
    assert [item.output_b for item in seen] == [answer or "(empty answer)" for answer in answers["sft"]]
    assert model.active_adapter == "default"
    # the swap turns a pure position bias into ties: win rate exactly one half
    assert report.win_rate("a").value == 0.5 and report.win_rate("a").ties == 2
