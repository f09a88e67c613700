import pytest

from zephyr_tutorial import profiles
from zephyr_tutorial.profiles import EMBEDDED_MODEL, MISTRAL_7B, active_profile, get_profile


def test_cpu_is_the_default_without_cuda(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV_VAR, raising=False)
    monkeypatch.setattr(profiles, "_cuda_available", lambda: False)
    profile = active_profile()
    assert profile.name == "cpu" and profile.model_id == EMBEDDED_MODEL and profile.uses_embedded_model


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
    colab, full = get_profile("colab"), get_profile("full")
    assert colab.model_id == full.model_id == MISTRAL_7B
    assert colab.load_in_4bit and not full.load_in_4bit
    assert (colab.sft_learning_rate, full.sft_learning_rate) == (2e-4, 2e-5)
    assert (colab.dpo_learning_rate, full.dpo_learning_rate) == (5e-6, 5e-7)
    assert colab.dpo_beta == full.dpo_beta == 0.01
    assert colab.sft_dataset == "HuggingFaceH4/ultrachat_200k"
    assert colab.preference_dataset == "HuggingFaceH4/ultrafeedback_binarized"


def test_overrides_make_a_copy_and_reject_unknown_fields():
    cpu = get_profile("cpu")
    shorter = cpu.with_overrides(max_steps=3)
    assert shorter.max_steps == 3 and cpu.max_steps != 3
    with pytest.raises(TypeError):
        cpu.with_overrides(not_a_field=1)


def test_sft_and_dpo_trainers_share_the_profile_settings(tmp_path):
    from zephyr_tutorial.dpo.training import dpo_config
    from zephyr_tutorial.profiles import trainer_arguments
    from zephyr_tutorial.sft.training import sft_config

    profile = get_profile("cpu").with_overrides(max_steps=7, per_device_batch_size=3, seed=11)
    shared = trainer_arguments(profile, tmp_path)
    assert shared["use_cpu"] and not shared["bf16"], "the cpu profile never trains on a GPU"
    for config in (sft_config(profile, tmp_path), dpo_config(profile, tmp_path)):
        assert (config.max_steps, config.per_device_train_batch_size, config.seed, config.use_cpu) == (7, 3, 11, True)
        assert config.activation_checkpointing == profile.gradient_checkpointing
    assert sft_config(profile, tmp_path).learning_rate == profile.sft_learning_rate
    assert dpo_config(profile, tmp_path).beta == profile.dpo_beta
