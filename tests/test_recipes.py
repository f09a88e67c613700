"""Shipped recipes load into the real TRL / PEFT / bitsandbytes classes; bad keys fail early; overrides are typed."""

from __future__ import annotations

import pytest
import yaml

from zephyr_tutorial.recipes import (
    STAGES,
    RecipeError,
    build_lora_config,
    build_quantization_config,
    default_recipe,
    load_recipe,
    parse_overrides,
    recipe_profile,
    typed_value,
)

from samples import RECIPES

ZEPHYR = {name: path for name, path in RECIPES.items() if "zephyr-7b-beta" in name}


def _build(path, tmp_path):
    """Every config object a run of this recipe would build, from the real classes."""
    from zephyr_tutorial.dpo import dpo_config
    from zephyr_tutorial.sft import sft_config

    recipe = load_recipe(path)
    profile = recipe_profile(recipe, require_hardware=False)  # GPU recipes are checked on this CPU machine too
    config = {"sft": sft_config, "dpo": dpo_config}[recipe["stage"]]
    return (
        recipe,
        config(profile, recipe, tmp_path / "run"),
        build_lora_config(recipe),
        build_quantization_config(recipe, profile),
    )


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
            k: recipe["lora"][k] for k in ("r", "lora_alpha", "lora_dropout")
        }
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
    datasets = {
        "sft": ("HuggingFaceH4/ultrachat_200k", "train_sft", "test_sft"),
        "dpo": ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs", "test_prefs"),
    }
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
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            }
    assert "--beta 0.1 --num_train_epochs 3" in ZEPHYR["dpo_zephyr-7b-beta_full"].read_text()  # the paper's setting


def _recipe_with(tmp_path, base: str, section: str, key: str, value):
    raw = yaml.safe_load(RECIPES[base].read_text())
    raw.setdefault(section, {})[key] = value
    path = tmp_path / "misspelled.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "section, key, real_class",
    [
        ("trainer", "learning_rat", "SFTConfig"),
        ("lora", "lora_alpah", "LoraConfig"),
        ("quantization", "bnb_4bit_quant_typ", "BitsAndBytesConfig"),
        ("model", "attn_implmentation", "from_pretrained"),
        ("profile_overrides", "max_train_sample", "Profile"),
    ],
)
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
    with pytest.raises(RecipeError, match="unknown top-level key 'packing'; a dpo recipe has"):
        load_recipe(_write(tmp_path, {**raw, "packing": True}))
    with pytest.raises(RecipeError, match="profile 'colab2' is not one of"):
        load_recipe(_write(tmp_path, {**raw, "profile": "colab2"}))
    with pytest.raises(RecipeError, match="a 'dpo' recipe, but the sft command"):
        load_recipe(RECIPES["dpo_zephyr-7b-beta_qlora"], "sft")
    with pytest.raises(RecipeError, match="command-line overrides.*'max_lenght'.*did you mean 'max_length'"):
        load_recipe(RECIPES["sft_cpu"], overrides={"max_lenght": 128})
    with pytest.raises(RecipeError, match="'quantization' needs a 'model' section"):
        load_recipe(RECIPES["sft_cpu"], overrides={"quantization": None})
    with pytest.raises(FileNotFoundError, match="zephyr-tutorial recipes"):
        load_recipe(tmp_path / "missing.yaml")


def _write(tmp_path, raw):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_overrides_route_to_the_section_that_owns_the_key():
    recipe = load_recipe(
        RECIPES["sft_zephyr-7b-beta_qlora"],
        overrides={
            "model_name_or_path": "/models/tiny",
            "quantization": None,
            "max_train_samples": 8,
            "max_steps": 2,
            "profile": "cpu",
        },
    )
    assert recipe["model"]["model_name_or_path"] == "/models/tiny" and recipe["model"]["dtype"] == "bfloat16"
    assert recipe["quantization"] is None and recipe["profile"] == "cpu"
    assert recipe["profile_overrides"]["max_train_samples"] == 8 and recipe["trainer"]["max_steps"] == 2


def test_overrides_are_typed_by_the_class_that_receives_them():
    """One parser for both stages: `--learning_rate 5e-6` is a float (YAML alone would keep it a string), an int
    field gets an int, `null` is None, and a key may be spelled with hyphens."""
    overrides = parse_overrides(
        [
            "--learning_rate",
            "5e-6",
            "--max-steps",
            "10",
            "--sft_adapter",
            "null",
            "--beta=0.05",
            "--loss_type",
            "ipo",
            "--output_dir",
            "123",
            "--lora.r",
            "8",
            "--max_train_samples",
            "20000",
            "--packing",
            "true",
        ],
        "dpo",
    )
    assert overrides == {
        "learning_rate": 5e-06,
        "max_steps": 10,
        "sft_adapter": None,
        "beta": 0.05,
        "loss_type": "ipo",
        "output_dir": "123",
        "lora.r": 8,
        "max_train_samples": 20000,
        "packing": True,
    }
    assert type(overrides["learning_rate"]) is float and type(overrides["max_steps"]) is int
    assert parse_overrides(["--learning_rate", "1"], "sft") == {"learning_rate": 1.0}  # a float field stays float
    assert typed_value("none", int | None) is None and typed_value("2e-4", float) == 2e-4
    with pytest.raises(RecipeError, match="--key value"):
        parse_overrides(["max_steps", "5"], "sft")
    with pytest.raises(RecipeError, match="needs a value"):
        parse_overrides(["--max_steps"], "sft")


def test_typed_overrides_reach_the_real_configs(tmp_path):
    from zephyr_tutorial.dpo import dpo_config
    from zephyr_tutorial.sft import sft_config

    dpo = load_recipe(
        RECIPES["dpo_cpu"],
        "dpo",
        parse_overrides(
            [
                "--learning-rate",
                "5e-6",
                "--max_steps",
                "5",
                "--loss_type",
                "ipo",
                "--sft_adapter",
                "null",
                "--lora.r",
                "4",
            ],
            "dpo",
        ),
    )
    # the cpu DPO recipe states max_steps in its trainer section (-1: its epochs decide), so the override goes there
    assert dpo["trainer"]["max_steps"] == 5 and dpo["sft_adapter"] is None and dpo["lora"]["r"] == 4
    profile = recipe_profile(dpo, require_hardware=False)
    args = dpo_config(profile, dpo, tmp_path)
    assert (args.learning_rate, args.max_steps, args.loss_type, args.beta) == (5e-6, 5, ["ipo"], 0.1)
    assert build_lora_config(dpo).r == 4 and build_lora_config(dpo).lora_alpha == 32
    sft = load_recipe(
        RECIPES["sft_cpu"], "sft", parse_overrides(["--learning_rate", "1e-4", "--packing", "true"], "sft")
    )
    args = sft_config(recipe_profile(sft, require_hardware=False), sft, tmp_path)
    assert (args.learning_rate, args.packing, args.max_steps) == (1e-4, True, 30)
    with pytest.raises(ValueError, match="DPOConfig"):
        dpo_config(profile, dpo, tmp_path, not_a_field=1)


def test_each_profile_names_shipped_recipes_for_both_stages():
    from zephyr_tutorial.profiles import PROFILES, get_profile

    for profile in PROFILES.values():
        for stage in STAGES:
            recipe = default_recipe(stage, profile)
            # the single-GPU recipes serve t4 and gpu24 and name no profile: the visible GPU picks it
            assert recipe["stage"] == stage and recipe.get("profile") in (None, profile.name)
            assert recipe["trainer"]["learning_rate"] > 0
    assert default_recipe("dpo", PROFILES["cpu"])["sft_adapter"] == "auto"  # no model section: notebook 03's adapter
    assert default_recipe("sft", get_profile("colab"))["trainer"]["learning_rate"] == 2e-4  # the old name of gpu24
