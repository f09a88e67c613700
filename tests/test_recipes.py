"""Shipped recipes load into the real TRL / PEFT / bitsandbytes classes; bad keys fail early; `recipes` lists them."""

from __future__ import annotations

import pytest
import yaml

from zephyr_tutorial.recipes import (RecipeError, build_lora_config, build_quantization_config, build_trainer_config,
                                     find_recipe, load_recipe, recipe_profile, shipped_recipes)

RECIPES = {path.stem: path for path in shipped_recipes()}
ZEPHYR = {name: path for name, path in RECIPES.items() if "zephyr-7b-beta" in name}


def _build(path, tmp_path):
    """Every config object a run of this recipe would build, from the real classes."""
    recipe = load_recipe(path)
    profile = recipe_profile(recipe, require_hardware=False)  # GPU recipes are checked on this CPU machine too
    return (recipe, build_trainer_config(recipe, profile, tmp_path / "run"), build_lora_config(recipe, profile),
            build_quantization_config(recipe, profile))


def test_the_zephyr_recipes_ship_for_both_stages_and_both_scales():
    assert set(ZEPHYR) == {f"{stage}_zephyr-7b-beta_{scale}" for stage in ("sft", "dpo") for scale in ("qlora", "full")}
    assert {"sft_cpu", "dpo_cpu"} <= set(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_shipped_recipe_builds_real_configs(name, tmp_path):
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import DPOConfig, SFTConfig

    recipe, trainer, lora, quantization = _build(RECIPES[name], tmp_path)
    assert isinstance(trainer, {"sft": SFTConfig, "dpo": DPOConfig}[recipe["stage"]])
    assert name.startswith(recipe["stage"] + "_") and recipe["description"]
    # every value the file states reaches the config unchanged (nothing dropped or renamed on the way)
    for key, value in recipe["trainer"].items():
        actual = getattr(trainer, key)
        if key == "output_dir":
            continue
        assert getattr(actual, "value", actual) == value or actual == [value], f"{name}: trainer.{key}"
    if recipe.get("lora"):
        assert isinstance(lora, LoraConfig)
        assert {k: getattr(lora, k) for k in ("r", "lora_alpha", "lora_dropout")} == {
            k: recipe["lora"][k] for k in ("r", "lora_alpha", "lora_dropout")}
        assert set(lora.target_modules) == set(recipe["lora"]["target_modules"])
    if recipe.get("quantization"):
        import torch

        assert isinstance(quantization, BitsAndBytesConfig) and quantization.load_in_4bit
        assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    if recipe.get("model"):
        assert trainer.model_init_kwargs["dtype"] == recipe["model"]["dtype"]


def test_zephyr_recipes_carry_the_published_hyperparameters(tmp_path):
    """alignment-handbook recipes/zephyr-7b-beta/{sft,dpo}/config_{full,qlora}.yaml."""
    published = {
        "sft_zephyr-7b-beta_qlora": dict(learning_rate=2e-4, max_length=2048),
        "sft_zephyr-7b-beta_full": dict(learning_rate=2e-5, max_length=2048),
        "dpo_zephyr-7b-beta_qlora": dict(learning_rate=5e-6, max_length=1024, beta=0.01),
        "dpo_zephyr-7b-beta_full": dict(learning_rate=5e-7, max_length=1024, beta=0.01),
    }
    datasets = {"sft": ("HuggingFaceH4/ultrachat_200k", "train_sft", "test_sft"),
                "dpo": ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs", "test_prefs")}
    for name, expected in published.items():
        recipe, trainer, lora, quantization = _build(ZEPHYR[name], tmp_path)
        assert {key: getattr(trainer, key) for key in expected} == expected, name
        assert trainer.num_train_epochs == 1 and trainer.warmup_steps == 0.1 and trainer.bf16, name
        assert trainer.lr_scheduler_type.value == "cosine" and trainer.gradient_checkpointing, name
        stage, scale = name.split("_")[0], name.split("_")[-1]
        section = recipe["dataset"]
        assert (section["name"], section["train_split"], section["eval_split"]) == datasets[stage]
        assert recipe["profile_overrides"].get("max_train_samples") is None  # the whole dataset, as published
        if scale == "full":
            assert lora is None and quantization is None and trainer.optim.value == "adamw_torch"
        else:
            assert quantization.bnb_4bit_quant_type == "nf4" and trainer.optim.value == "paged_adamw_32bit"
            assert stage == "dpo" or set(lora.target_modules) == {
                "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert "--beta 0.1 --num_train_epochs 3" in ZEPHYR["dpo_zephyr-7b-beta_full"].read_text()  # the paper's setting


def _recipe_with(tmp_path, base: str, section: str, key: str, value):
    raw = yaml.safe_load(RECIPES[base].read_text())
    raw.setdefault(section, {})[key] = value
    path = tmp_path / "misspelled.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("section, key, real_class", [
    ("trainer", "learning_rat", "SFTConfig"),
    ("lora", "lora_alpah", "LoraConfig"),
    ("quantization", "bnb_4bit_quant_typ", "BitsAndBytesConfig"),
    ("model", "attn_implmentation", "from_pretrained"),
    ("profile_overrides", "max_train_sample", "Profile"),
])
def test_a_misspelled_key_names_the_file_the_key_and_the_class(tmp_path, section, key, real_class):
    path = _recipe_with(tmp_path, "sft_zephyr-7b-beta_qlora", section, key, 1)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and repr(key) in message and real_class in message and "did you mean" in message


def test_bitsandbytes_alone_would_not_catch_the_misspelling():
    """Why the loader checks quantization keys itself: BitsAndBytesConfig accepts unknown ones (an INFO log line)."""
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_typ="nf4")  # no error...
    assert config.bnb_4bit_quant_type == "fp4"  # ...and silently the other 4-bit format


def test_misplaced_keys_stage_mismatch_and_overrides_fail_clearly(tmp_path):
    raw = yaml.safe_load(RECIPES["dpo_zephyr-7b-beta_qlora"].read_text())
    with pytest.raises(RecipeError, match="sft_adapter.*lora|lora.*sft_adapter"):
        load_recipe(_write(tmp_path, {**raw, "lora": {"r": 8}}))
    with pytest.raises(RecipeError, match="unknown top-level key 'packing'; a dpo recipe has"):
        load_recipe(_write(tmp_path, {**raw, "packing": True}))
    with pytest.raises(RecipeError, match="profile 'colab2' is not one of"):
        load_recipe(_write(tmp_path, {**raw, "profile": "colab2"}))
    with pytest.raises(RecipeError, match="a 'dpo' recipe, but the sft command"):
        load_recipe(RECIPES["dpo_zephyr-7b-beta_qlora"], "sft")
    with pytest.raises(RecipeError, match="command-line overrides.*'max_lenght'.*did you mean 'max_length'"):
        load_recipe(RECIPES["sft_cpu"], overrides={"max_lenght": 128})
    with pytest.raises(RecipeError, match="'lora' needs a 'model' section"):
        load_recipe(RECIPES["sft_cpu"], overrides={"lora": None})
    with pytest.raises(FileNotFoundError, match="zephyr-tutorial recipes"):
        load_recipe(tmp_path / "missing.yaml")


def _write(tmp_path, raw):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_overrides_route_to_the_section_that_owns_the_key():
    recipe = load_recipe(RECIPES["sft_zephyr-7b-beta_qlora"], overrides={
        "model_name_or_path": "/models/tiny", "quantization": None, "max_train_samples": 8, "max_steps": 2,
        "profile": "cpu"})
    assert recipe["model"]["model_name_or_path"] == "/models/tiny" and recipe["model"]["dtype"] == "bfloat16"
    assert recipe["quantization"] is None and recipe["profile"] == "cpu"
    assert recipe["profile_overrides"]["max_train_samples"] == 8 and recipe["trainer"]["max_steps"] == 2


def test_recipes_command_lists_and_prints(capsys):
    from zephyr_tutorial.cli import main

    assert main(["recipes"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["name", "stage", "profile", "description"]
    rows = {line.split()[0]: line.split()[1:3] for line in table[1:] if line and line.split()[0] in RECIPES}
    assert rows.keys() == RECIPES.keys()
    assert rows["dpo_zephyr-7b-beta_full"] == ["dpo", "full"] and rows["sft_zephyr-7b-beta_qlora"] == ["sft", "colab"]

    assert main(["recipes", "sft_zephyr-7b-beta_full", "--path"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(RECIPES["sft_zephyr-7b-beta_full"]) == str(find_recipe("sft_zephyr-7b-beta_full"))
    assert main(["recipes", "dpo_cpu"]) == 0
    assert capsys.readouterr().out == RECIPES["dpo_cpu"].read_text()
    assert main(["recipes", "zephyr-7b-gamma"]) == 2
    assert "no recipe 'zephyr-7b-gamma'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, embedded_tokenizer):
    """The tiny random model saved with its tokenizer: what `--model_name_or_path` points the recipes at."""
    from zephyr_tutorial.models import build_tiny_model

    directory = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(embedded_tokenizer).save_pretrained(directory)
    embedded_tokenizer.save_pretrained(directory)
    return directory


TINY_RUN = ["--quantization", "null", "--max_steps", "2", "--max_train_samples", "4", "--per_device_batch_size", "2",
            "--warmup_steps", "0"]
"""Two real optimizer steps (no warm-up, so both move the weights) on the tiny model in 16/32-bit, no bitsandbytes."""


def lora_weights(adapter_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def load_adapter(model_dir, adapter_dir):
    """The base model with a saved adapter, as a user would load it; raises if the files do not fit the model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(adapter_dir))


def assert_adapter_loads_and_answers(model_dir, adapter_dir):
    import torch

    model = load_adapter(model_dir, adapter_dir)
    assert set(model.peft_config) == {"default"}
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


def test_sft_then_dpo_commands_run_the_cpu_recipes_on_another_model(tiny_model_dir, tmp_path, capsys):
    """`--model_name_or_path` points an unchanged recipe at any model; TRL loads it, trains, saves the adapter."""
    from zephyr_tutorial.cli import main

    sft_dir, dpo_dir = tmp_path / "sft", tmp_path / "dpo"
    assert main(["sft", "--config", str(RECIPES["sft_cpu"]), "--model_name_or_path", str(tiny_model_dir),
                 "--sft_max_length", "64", "--output_dir", str(sft_dir), *TINY_RUN]) == 0
    assert "[sft] rank 0/1 (NO): trained 2 steps" in capsys.readouterr().out
    assert_adapter_loads_and_answers(tiny_model_dir, sft_dir / "final")
    sft_weights = lora_weights(sft_dir / "final")
    trained_b = [name for name, tensor in sft_weights.items() if "lora_B" in name and tensor.abs().sum() > 0]
    assert trained_b, "LoRA B starts at zero; after two steps it must have moved"

    assert main(["dpo", "--config", str(RECIPES["dpo_cpu"]), "--run-dir", str(dpo_dir),
                 "--model_name_or_path", str(tiny_model_dir), "--sft_adapter", str(sft_dir / "final"),
                 "--dpo_max_length", "64", "--max_eval_samples", "2", *TINY_RUN]) == 0
    out = capsys.readouterr().out
    assert "[dpo] rank 0/1 (NO): trained 2 steps" in out and "eval_rewards/accuracies" in out
    assert_adapter_loads_and_answers(tiny_model_dir, dpo_dir / "final")
    dpo_weights = lora_weights(dpo_dir / "final")
    assert dpo_weights.keys() == sft_weights.keys()  # DPO continued the SFT adapter, it did not start a new one
    assert any(not (dpo_weights[name] == sft_weights[name]).all() for name in sft_weights)


def test_commands_report_a_bad_override_without_training(capsys):
    from zephyr_tutorial.cli import main

    assert main(["dpo", "--config", str(RECIPES["dpo_cpu"]), "--bta", "0.1"]) == 2
    assert "'bta' is not a trl.DPOConfig field (did you mean 'beta'?)" in capsys.readouterr().err
    assert main(["sft", "--config", str(RECIPES["dpo_cpu"])]) == 2
    assert "a 'dpo' recipe, but the sft command" in capsys.readouterr().err
