import pytest

from zephyr_tutorial import profiles
from zephyr_tutorial.profiles import EMBEDDED_MODEL, MISTRAL_7B, active_profile, get_profile


def test_cpu_is_the_default_without_cuda(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV_VAR, raising=False)
    monkeypatch.setattr(profiles, "_cuda_available", lambda: False)
    profile = active_profile()
    assert profile.name == "cpu" and profile.model.id == EMBEDDED_MODEL and profile.uses_embedded_model


def test_colab_is_the_default_with_cuda_and_env_var_overrides(monkeypatch):
    monkeypatch.setattr(profiles, "_cuda_available", lambda: True)
    monkeypatch.delenv(profiles.PROFILE_ENV_VAR, raising=False)
    assert active_profile().name == "colab"
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "full")
    assert active_profile().name == "full"
    assert active_profile("cpu").name == "cpu", "an explicit name beats the environment"


def test_gpu_profile_without_gpu_explains_itself(monkeypatch):
    monkeypatch.setattr(profiles, "_cuda_available", lambda: False)
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "colab")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        active_profile()
    with pytest.raises(ValueError, match="unknown profile 'tpu'; choose one of cpu, colab, full"):
        get_profile("tpu")


def test_gpu_profiles_follow_the_zephyr_recipe():
    from zephyr_tutorial.recipes import default_recipe

    colab, full = get_profile("colab"), get_profile("full")
    assert colab.model.id == full.model.id == MISTRAL_7B
    assert colab.model.load_in_4bit and not full.model.load_in_4bit
    assert colab.data.sft_dataset == "HuggingFaceH4/ultrachat_200k"
    # the hyperparameters come from each profile's recipes (the alignment-handbook's zephyr-7b-beta ones)
    sft = {p.name: default_recipe("sft", p)["trainer"] for p in (colab, full)}
    dpo = {p.name: default_recipe("dpo", p)["trainer"] for p in (colab, full)}
    assert (sft["colab"]["learning_rate"], sft["full"]["learning_rate"]) == (2e-4, 2e-5)
    assert (dpo["colab"]["learning_rate"], dpo["full"]["learning_rate"]) == (5e-6, 5e-7)
    assert dpo["colab"]["beta"] == dpo["full"]["beta"] == 0.01
    assert default_recipe("dpo", colab)["dataset"]["name"] == "HuggingFaceH4/ultrafeedback_binarized"


def test_overrides_make_a_copy_and_reject_unknown_fields():
    cpu = get_profile("cpu")
    shorter = cpu.with_overrides(max_steps=3, model={"dtype": "bfloat16"}, seed=1)
    assert (shorter.train.max_steps, shorter.model.dtype, shorter.seed) == (3, "bfloat16", 1)
    assert cpu.train.max_steps != 3 and cpu.model.dtype == "float32"
    assert shorter.model.id == cpu.model.id and shorter.train.sft_max_length == cpu.train.sft_max_length
    with pytest.raises(TypeError):
        cpu.with_overrides(not_a_field=1)
    with pytest.raises(TypeError):
        cpu.with_overrides(train={"not_a_field": 1})


def test_profiles_hold_hardware_and_scale_only():
    from dataclasses import fields

    from zephyr_tutorial.profiles import PARTS, Profile, part_of_field

    names = set(part_of_field()) | {f.name for f in fields(Profile)}
    for hyperparameter in ("sft_learning_rate", "dpo_learning_rate", "dpo_beta", "lora_r", "lora_alpha", "extra"):
        assert hyperparameter not in names
    assert len(part_of_field()) == sum(len(fields(part)) for part in PARTS.values()), "field names are unique"
