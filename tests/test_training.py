"""What SFT and DPO share: trainer arguments from the profile, one result type, curves for both stages."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.training import TrainingRun, trainer_arguments, training_curves

from samples import ROWS, TINY_SFT_RECIPE, messages_dataset


def test_sft_and_dpo_trainers_share_the_profile_settings(tmp_path):
    from zephyr_tutorial.dpo import dpo_config
    from zephyr_tutorial.sft import sft_config

    profile = get_profile("cpu").with_overrides(max_steps=7, per_device_batch_size=3, seed=11)
    shared = trainer_arguments(profile, tmp_path)
    assert shared["use_cpu"] and not shared["bf16"], "the cpu profile never trains on a GPU"
    recipe = {"trainer": {"learning_rate": 3e-4, "beta": 0.2}}
    configs = (
        sft_config(profile, {"trainer": {"learning_rate": 3e-4}}, tmp_path),
        dpo_config(profile, recipe, tmp_path),
    )
    for config in configs:
        assert (config.max_steps, config.per_device_train_batch_size, config.seed, config.use_cpu) == (7, 3, 11, True)
        assert config.activation_checkpointing == profile.train.gradient_checkpointing
        assert config.learning_rate == 3e-4  # the hyperparameter comes from the recipe
    assert configs[1].beta == 0.2 and configs[0].max_length == profile.train.sft_max_length
    assert configs[1].max_length == profile.train.dpo_max_length


def test_a_model_section_becomes_trl_model_init_kwargs_and_overrides_win(tmp_path):
    from zephyr_tutorial.sft import sft_config

    recipe = {
        "model": {"model_name_or_path": "x", "attn_implementation": "sdpa"},
        "trainer": {"learning_rate": 1e-4, "output_dir": "ignored"},
    }
    config = sft_config(get_profile("cpu"), recipe, tmp_path / "run", learning_rate=5e-5)
    assert config.model_init_kwargs == {"dtype": "float32", "attn_implementation": "sdpa"}
    assert config.learning_rate == 5e-5 and config.output_dir == str(tmp_path / "run")


def _run_sft(model, tokenizer, tmp_path, profile):
    from zephyr_tutorial.sft import load_model_for_training, sft_config, train_sft

    peft_model, tokenizer = load_model_for_training(profile, TINY_SFT_RECIPE, model=model, tokenizer=tokenizer)
    return train_sft(
        peft_model,
        tokenizer,
        messages_dataset(8),
        args=sft_config(profile, TINY_SFT_RECIPE, tmp_path / "sft", disable_tqdm=True),
    )


def _run_dpo(model, tokenizer, tmp_path, profile):
    from zephyr_tutorial.dpo import dpo_config, train_dpo
    from zephyr_tutorial.models import lora_config, prepare_for_training
    from zephyr_tutorial.schemas import preference_dataset

    model = prepare_for_training(model, gradient_checkpointing=False)
    return train_dpo(
        model,
        tokenizer,
        preference_dataset(ROWS),
        peft_config=lora_config(TINY_SFT_RECIPE["lora"]),
        args=dpo_config(profile, {"trainer": {"learning_rate": 1e-2}}, tmp_path / "dpo", disable_tqdm=True),
    )


@pytest.mark.parametrize("train", [_run_sft, _run_dpo], ids=["sft", "dpo"])
def test_both_stages_return_the_same_kind_of_run(train, tiny_model, zephyr_tokenizer, tmp_path):
    profile = get_profile("cpu").with_overrides(
        load_in_4bit=False, max_steps=2, per_device_batch_size=2, sft_max_length=128, dpo_max_length=128
    )
    run = train(tiny_model, zephyr_tokenizer, tmp_path, profile)
    assert isinstance(run, TrainingRun) and run.steps == 2 and run.resumed_from is None
    assert run.adapter_dir.name == "final" and (run.adapter_dir / "adapter_config.json").is_file()
    assert (run.adapter_dir / "tokenizer_config.json").is_file() and run.tokenizer is run.trainer.processing_class
    saved = json.loads((run.adapter_dir / "metrics.json").read_text())
    assert saved == run.metrics and run.metrics["train_loss"] > 0
    assert [entry["step"] for entry in run.training_metrics()] == [1, 2]
    curves = training_curves(run)
    assert curves["step"] == [1, 2] and len(curves["loss"]) == 2 and len(curves["learning_rate"]) == 2
    assert "mean_token_accuracy" in curves  # both trainers log it: the accuracy of next-token predictions
    assert ("rewards/margins" in curves) == (train is _run_dpo)
    assert run.rank_report("x") == "[x] rank 0/1 (NO): trained 2 steps"
