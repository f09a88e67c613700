"""train_dpo over TRL on a tiny model: the reference is the frozen SFT adapter, rewards move, runs resume."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.dpo import dpo_config, train_dpo
from zephyr_tutorial.dpo.training import pair_lengths
from zephyr_tutorial.models import latest_checkpoint
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.schemas import preference_dataset

from samples import ROWS


def test_train_dpo_starts_at_the_reference_learns_and_resumes(sft_like_model, embedded_tokenizer, tmp_path):
    from zephyr_tutorial.chat_template import apply_zephyr_template

    tokenizer = apply_zephyr_template(embedded_tokenizer)
    profile = get_profile("cpu").with_overrides(max_steps=4, per_device_batch_size=4)
    recipe = {"trainer": {"learning_rate": 5e-3, "beta": 0.1}}
    args = dpo_config(
        profile, recipe, tmp_path / "run", save_steps=4, warmup_steps=0, train_sampling_strategy="group_by_length"
    )
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

    # the pairs were drawn grouped by length, each measured as its batch holds it
    from transformers.trainer_pt_utils import LengthGroupedSampler

    sampler = run.trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    assert sampler.lengths == pair_lengths(run.trainer.train_dataset, args.max_length)

    # an interrupted run continues from its last checkpoint instead of starting over
    from peft import LoraConfig, get_peft_model

    from zephyr_tutorial.models import build_tiny_model

    fresh = get_peft_model(
        build_tiny_model(tokenizer),
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
        ),
    )
    args = dpo_config(profile.with_overrides(max_steps=6), recipe, tmp_path / "run", save_steps=4, warmup_steps=0)
    resumed = train_dpo(fresh, tokenizer, preference_dataset(ROWS), args=args)
    assert resumed.resumed_from.name == "checkpoint-4"
    assert [e["step"] for e in resumed.training_metrics()] == [1, 2, 3, 4, 5, 6]


def test_a_pair_is_as_long_as_its_prompt_and_longer_reply_cut_at_the_max_length():
    pairs = {"prompt_ids": [[1] * 5, [1] * 50], "chosen_ids": [[2] * 3, [2] * 20], "rejected_ids": [[3] * 7, [3] * 2]}
    assert pair_lengths(pairs) == [12, 70]
    assert pair_lengths(pairs, 64) == [12, 64]


def test_load_adapter_state_reads_a_checkpoint_into_the_named_adapter(embedded_tokenizer, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from zephyr_tutorial.dpo import load_adapter_state
    from zephyr_tutorial.models import build_tiny_model

    config = LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    saved = build_tiny_model(embedded_tokenizer, seed=0)
    torch.manual_seed(1)
    saved = get_peft_model(saved, config)
    saved.save_pretrained(tmp_path / "checkpoint-3")
    model = build_tiny_model(embedded_tokenizer, seed=0)
    torch.manual_seed(2)
    model = get_peft_model(model, config)  # another adapter of the same shape, named "default"
    name = next(n for n, _ in model.named_parameters() if "lora_B" in n)
    assert not torch.equal(dict(model.named_parameters())[name], dict(saved.named_parameters())[name])
    load_adapter_state(model, tmp_path / "checkpoint-3")
    assert torch.equal(dict(model.named_parameters())[name], dict(saved.named_parameters())[name])
    with pytest.raises(FileNotFoundError, match="adapter_model.safetensors"):
        load_adapter_state(model, tmp_path)
