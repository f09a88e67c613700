"""What SFT and DPO share: trainer arguments from the profile, one result type, curves for both stages, the
TensorBoard log of every run and the record (results.json, model card) beside its adapter."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.recipes import load_recipe
from zephyr_tutorial.training import (
    TrainingRun,
    read_results,
    read_tracked_scalars,
    redact_secrets,
    tracker_log_dirs,
    trainer_arguments,
    training_curves,
)

from samples import RECIPES, ROWS, TINY_SFT_RECIPE, messages_dataset


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


def test_every_run_and_every_shipped_recipe_reports_to_tensorboard(tmp_path):
    assert trainer_arguments(get_profile("cpu"), tmp_path)["report_to"] == ["tensorboard"]
    for name, path in RECIPES.items():
        assert load_recipe(path)["trainer"]["report_to"] == ["tensorboard"], name


def _run_sft(model, tokenizer, tmp_path, profile, **overrides):
    from zephyr_tutorial.sft import load_model_for_training, sft_config, train_sft

    peft_model, tokenizer = load_model_for_training(profile, TINY_SFT_RECIPE, model=model, tokenizer=tokenizer)
    return train_sft(
        peft_model,
        tokenizer,
        messages_dataset(8),
        args=sft_config(profile, TINY_SFT_RECIPE, tmp_path / "sft", disable_tqdm=True, **overrides),
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


TWO_STEPS = dict(load_in_4bit=False, max_steps=2, per_device_batch_size=2, sft_max_length=128, dpo_max_length=128)


@pytest.mark.parametrize("train", [_run_sft, _run_dpo], ids=["sft", "dpo"])
def test_both_stages_return_the_same_kind_of_run(train, tiny_model, zephyr_tokenizer, tmp_path, capsys):
    profile = get_profile("cpu").with_overrides(**TWO_STEPS)
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

    # the tracker: TRL's TensorBoard callback logged every step where the run said it would, and the log travels
    # with the adapter; TensorBoard's reader gives back the losses of the trainer's history
    stage = "sft" if train is _run_sft else "dpo"
    assert run.tracking_dir.parent == tmp_path / stage / "runs"
    assert f"[{stage}] TensorBoard log: {run.tracking_dir}" in capsys.readouterr().out
    tracked = read_tracked_scalars(run.adapter_dir, ["train/loss", "train/learning_rate"])
    assert tracked["train/loss"]["step"] == [1, 2]
    assert tracked["train/loss"]["value"] == pytest.approx(curves["loss"])  # float32 in the event file
    assert tracked == read_tracked_scalars(run.tracking_dir, ["train/loss", "train/learning_rate"])
    if stage == "dpo":
        assert read_tracked_scalars(run.adapter_dir, ["train/rewards/margins"])["train/rewards/margins"]["step"] == [
            1,
            2,
        ]

    # the record: what trained the adapter, beside it, and the model card rendered from it
    record = read_results(run.adapter_dir)
    assert record == json.loads(run.results_file.read_text())
    assert (record["stage"], record["seed"], record["training"]["steps"]) == (stage, profile.seed, 2)
    assert record["metrics"]["train_loss"] == pytest.approx(run.metrics["train_loss"])
    assert record["hyperparameters"]["max_steps"] == 2 and record["hyperparameters"]["effective_batch_size"] == 2
    assert record["adapter"]["type"] == "lora" and record["adapter"]["r"] == TINY_SFT_RECIPE["lora"]["r"]
    import torch
    import trl

    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["trl"] == trl.__version__
    assert set(record["versions"]) >= {"transformers", "peft", "bitsandbytes", "zephyr_tutorial"}
    assert record["tracking"]["logs_in_adapter_dir"] == [f"runs/{run.tracking_dir.name}"]
    assert record["rows"]["train"] == (8 if stage == "sft" else len(ROWS))
    card = run.model_card_file.read_text()
    assert card.startswith("---\nlibrary_name: peft") and "| optimizer steps | 2 |" in card
    assert "| MT-Bench (GPT-4 as judge, 1-10) | 7.34 |" in card and "90.60%" in card


def test_tracked_curves_join_a_resumed_run_and_begin_again_with_a_restart(tmp_path):
    """Each start of training writes its own log folder: a resume continues the curve, a restart replaces it."""
    from test_plots_training import write_log

    runs = tmp_path / "runs"
    write_log(runs / "20260101-000000-000000", {"train/loss": {1: 4.0, 2: 3.0, 3: 2.0, 4: 1.5}})
    write_log(runs / "20260101-000100-000000", {"train/loss": {3: 2.5, 4: 2.25, 5: 2.0}})  # resumed at step 2
    assert read_tracked_scalars(tmp_path)["train/loss"] == {"step": [1, 2, 3, 4, 5], "value": [4, 3, 2.5, 2.25, 2]}
    write_log(runs / "20260101-000200-000000", {"train/loss": {1: 9.0, 2: 8.0}})  # trained again from scratch
    assert tracker_log_dirs(tmp_path) == [runs / "20260101-000200-000000"] == tracker_log_dirs(runs)
    assert read_tracked_scalars(tmp_path)["train/loss"] == {"step": [1, 2], "value": [9.0, 8.0]}
    with pytest.raises(KeyError, match="train/rewards/margins"):
        read_tracked_scalars(tmp_path, ["train/rewards/margins"])
    assert tracker_log_dirs(tmp_path / "nothing here") == []


def test_secret_named_keys_and_known_secret_values_are_redacted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    record = {
        "trainer": {"hub_token": "hf_anything", "pad_token": "<pad>", "learning_rate": 1e-3, "hub_model_id": None},
        "judge": {"api_key": "x" * 12, "base_url": "http://127.0.0.1:8000/v1?key=sk-test-0123456789"},
        "notes": ["an unrelated string", "sk-test-0123456789"],
    }
    assert redact_secrets(record) == {
        "trainer": {"hub_token": "<redacted>", "pad_token": "<pad>", "learning_rate": 1e-3, "hub_model_id": None},
        "judge": {"api_key": "<redacted>", "base_url": "http://127.0.0.1:8000/v1?key=<redacted>"},
        "notes": ["an unrelated string", "<redacted>"],
    }


def test_no_token_reaches_the_record_the_card_the_tracker_log_or_the_output(
    tiny_model, zephyr_tokenizer, tmp_path, capsys, monkeypatch
):
    """A token passed as a trainer argument and one in the environment: neither is written anywhere we write."""
    argument_token, environment_token = "hf_ArgumentTokenNeverWritten0001", "hf_EnvironmentTokenNeverWritten02"
    monkeypatch.setenv("HF_TOKEN", environment_token)
    profile = get_profile("cpu").with_overrides(**TWO_STEPS)
    run = _run_sft(tiny_model, zephyr_tokenizer, tmp_path, profile, hub_token=argument_token)
    assert run.trainer.args.hub_token == argument_token  # it was there to leak
    written = [run.results_file, run.model_card_file, *run.adapter_dir.glob("runs/*/events.out.tfevents.*")]
    written += [*run.tracking_dir.glob("events.out.tfevents.*"), run.adapter_dir / "metrics.json"]
    assert len(written) == 5  # results, card, metrics and the event file in final/runs and in the run folder
    printed = capsys.readouterr()
    for content in [path.read_bytes() for path in written] + [printed.out.encode(), printed.err.encode()]:
        assert argument_token.encode() not in content and environment_token.encode() not in content
    assert b"<HUB_TOKEN>" in (next(run.tracking_dir.glob("events.*"))).read_bytes()  # the args text, masked by TRL


def test_a_resumed_run_carries_the_whole_curve_beside_its_adapter(tiny_model, zephyr_tokenizer, tmp_path):
    """Interrupted after 2 steps (checkpoint-2), resumed to 3: two log folders, one curve, both in final/runs."""
    from zephyr_tutorial.models import build_tiny_model

    first = _run_sft(
        tiny_model, zephyr_tokenizer, tmp_path, get_profile("cpu").with_overrides(**TWO_STEPS), save_steps=2
    )
    profile = get_profile("cpu").with_overrides(**{**TWO_STEPS, "max_steps": 3})
    resumed = _run_sft(build_tiny_model(zephyr_tokenizer), zephyr_tokenizer, tmp_path, profile, save_steps=2)
    assert resumed.resumed_from == tmp_path / "sft" / "checkpoint-2" and resumed.tracking_dir != first.tracking_dir
    copied = sorted(path.name for path in (resumed.adapter_dir / "runs").iterdir())
    assert copied == sorted([first.tracking_dir.name, resumed.tracking_dir.name])
    loss = read_tracked_scalars(resumed.adapter_dir, ["train/loss"])["train/loss"]
    assert loss["step"] == [1, 2, 3]
    assert loss["value"] == pytest.approx([entry["loss"] for entry in resumed.training_metrics()])
    assert read_results(resumed.adapter_dir)["training"]["resumed_from"] == str(tmp_path / "sft" / "checkpoint-2")
