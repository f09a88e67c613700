"""The recipe runner: one run_recipe for both stages on the notebooks' path (the profile's model, loaded by us)."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.data import write_jsonl
from zephyr_tutorial.pipelines import recipe_datasets, resolve_sft_adapter, run_recipe
from zephyr_tutorial.pipelines.results import recipe_sha256
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.recipes import load_recipe
from zephyr_tutorial.stats import wilson
from zephyr_tutorial.training import TrainingRun, file_sha256, read_results, read_tracked_scalars

from samples import RECIPES, ROWS, lora_weights, ultrachat_rows

SHORT = {
    "max_steps": 2,
    "per_device_batch_size": 2,
    "warmup_steps": 0,
    "lora.r": 4,
    "lora.lora_alpha": 8,
    "learning_rate": 1e-2,
}


@pytest.fixture()
def data_folders(tmp_path):
    sft, prefs = tmp_path / "sft_data", tmp_path / "pref_data"
    write_jsonl(sft / "train_sft.jsonl", ultrachat_rows(4))
    write_jsonl(sft / "test_sft.jsonl", ultrachat_rows(2))
    write_jsonl(prefs / "train_prefs.jsonl", ROWS)
    write_jsonl(prefs / "test_prefs.jsonl", ROWS[:2])
    return sft, prefs


def test_one_runner_trains_sft_then_dpo_on_the_profiles_model(tiny_model_dir, data_folders, tmp_path):
    profile = get_profile("cpu").with_overrides(id=str(tiny_model_dir), load_in_4bit=False)
    sft_data, pref_data = data_folders
    sft_recipe = load_recipe(RECIPES["sft_cpu"], "sft", {**SHORT, "sft_max_length": 512, "data_folder": str(sft_data)})
    sft = run_recipe(sft_recipe, profile=profile, run_dir=tmp_path / "sft")
    assert isinstance(sft, TrainingRun) and sft.steps == 2 and sft.adapter_dir == tmp_path / "sft" / "final"
    assert sft.model.peft_config["default"].r == 4  # the recipe's adapter, overridden on the command line

    # the record beside the adapter: the recipe as run, the data files by hash, the held-out loss with its interval
    record = read_results(sft.adapter_dir)
    assert record["recipe"] == json.loads(json.dumps(sft_recipe))
    assert record["recipe_sha256"] == recipe_sha256(sft_recipe)
    assert record["data"]["train"]["sha256"] == file_sha256(sft_data / "train_sft.jsonl")
    assert (record["data"]["eval"]["rows_in_file"], record["data"]["eval"]["rows_used"]) == (2, 2)
    loss = record["heldout"]["eval_loss"]
    assert loss["n"] == 2 and loss["low"] <= loss["estimate"] <= loss["high"] and loss["method"] == "bootstrap"
    assert sft.metrics["heldout_loss"] == loss["estimate"]
    change = record["heldout"]["eval_loss_change"]
    assert change["estimate"] == pytest.approx(loss["estimate"] - record["heldout"]["base_eval_loss"]["estimate"])
    assert change["interpretation"].startswith("held-out loss change")
    card = sft.model_card_file.read_text()
    assert "held-out loss (cross-entropy per trained token, nats)" in card and record["recipe_sha256"][:16] in card

    recipe = load_recipe(
        RECIPES["dpo_cpu"],
        "dpo",
        {**SHORT, "dpo_max_length": 64, "data_folder": str(pref_data), "sft_adapter": str(sft.adapter_dir)},
    )
    dpo = run_recipe(recipe, profile=profile, run_dir=tmp_path / "dpo")
    assert isinstance(dpo, TrainingRun) and dpo.steps == 2 and set(dpo.model.peft_config) == {"default", "ref"}
    assert lora_weights(dpo.adapter_dir).keys() == lora_weights(sft.adapter_dir).keys()  # continued, not new
    assert dpo.metrics["heldout_n"] == 2 and 0 <= dpo.metrics["heldout_reward_accuracy"] <= 1
    assert json.loads((dpo.adapter_dir / "metrics.json").read_text()) == dpo.metrics

    # the reward accuracy of results.json is the Wilson interval of the same per-pair margins
    record = read_results(dpo.adapter_dir)
    accuracy = record["heldout"]["reward_accuracy"]
    correct = round(dpo.metrics["heldout_reward_accuracy"] * 2)
    assert {k: accuracy[k] for k in ("estimate", "low", "high", "n", "method")} == wilson(correct, 2).as_dict()
    assert record["metrics"] == dpo.metrics
    assert record["data"]["eval"]["sha256"] == file_sha256(pref_data / "test_prefs.jsonl")
    assert read_tracked_scalars(tmp_path / "dpo", ["train/rewards/margins"])["train/rewards/margins"]["step"] == [1, 2]
    assert (dpo.adapter_dir / "runs" / dpo.tracking_dir.name).is_dir()

    no_sft = run_recipe({**recipe, "sft_adapter": None}, profile=profile, run_dir=tmp_path / "dpo_only")
    assert set(no_sft.model.peft_config) == {"default"} and no_sft.model.peft_config["default"].r == 4

    # SFT further from a trained adapter (notebook 06's dSFT-2): the same adapter moves on, no fresh one is made
    slow = {
        **sft_recipe,
        "init_adapter": str(sft.adapter_dir),
        "trainer": {**sft_recipe["trainer"], "learning_rate": 1e-6},
    }
    continued = run_recipe(slow, profile=profile, run_dir=tmp_path / "sft2")
    before, after = lora_weights(sft.adapter_dir), lora_weights(continued.adapter_dir)
    assert before.keys() == after.keys()
    b_keys = [key for key in before if "lora_B" in key]
    assert all(before[key].abs().max() > 1e-3 for key in b_keys)  # a fresh adapter would start with B = 0
    # started where SFT ended (a fresh adapter would be about |B| away) ...
    assert all((after[key] - before[key]).abs().max() < 0.05 * before[key].abs().max() for key in b_keys)
    assert any(not (after[key] == before[key]).all() for key in before)  # ... and trained on from there
    with pytest.raises(FileNotFoundError, match="init_adapter"):
        run_recipe({**sft_recipe, "init_adapter": str(tmp_path)}, profile=profile, run_dir=tmp_path / "sft3")


def test_recipe_datasets_read_the_stage_schema_from_the_data_folder(data_folders):
    sft_data, pref_data = data_folders
    profile = get_profile("cpu")
    train, test = recipe_datasets({"stage": "sft", "data_folder": str(sft_data)}, profile)
    assert (len(train), len(test)) == (4, 2) and train.column_names == ["messages"]
    train, test = recipe_datasets({"stage": "dpo", "data_folder": str(pref_data)}, profile)
    assert (len(train), len(test)) == (4, 2) and set(train.column_names) == {"prompt", "chosen", "rejected"}


def test_an_sft_adapter_path_must_hold_an_adapter(tmp_path):
    assert resolve_sft_adapter(None) is None
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        resolve_sft_adapter(str(tmp_path))
