import math

import pytest

from zephyr_tutorial import profiles
from zephyr_tutorial.memory import GPU_CARDS
from zephyr_tutorial.profiles import (
    BEFORE_AFTER_MODES,
    DISABLE_ADAPTER,
    EMBEDDED_MODEL,
    MISTRAL_7B,
    PROFILES,
    ULTRACHAT_200K_TRAIN_ROWS,
    VisibleGPU,
    active_profile,
    choose_profile,
    get_profile,
    role_choice,
    steps_for,
)

GPU_PROFILES = [p for p in PROFILES.values() if p.model.device == "cuda"]
T4 = VisibleGPU("Tesla T4", 14.75, (7, 5))
L4 = VisibleGPU("NVIDIA L4", 22.49, (8, 9))


def _visible(monkeypatch, gpu):
    monkeypatch.delenv(profiles.PROFILE_ENV_VAR, raising=False)
    monkeypatch.setattr(profiles, "_cuda_available", lambda: gpu is not None)
    monkeypatch.setattr(profiles, "visible_gpu", lambda: gpu)


def test_cpu_is_the_default_without_cuda(monkeypatch):
    _visible(monkeypatch, None)
    choice = choose_profile()
    assert choice.profile.name == "cpu" and choice.reason == "no CUDA GPU is visible"
    assert choice.profile.model.id == EMBEDDED_MODEL and choice.profile.uses_embedded_model


@pytest.mark.parametrize(
    ("gpu", "expected", "because"),
    [
        (T4, "t4", "not 'gpu24' (needs 22.0 GiB and bfloat16"),  # free Colab
        (L4, "gpu24", "matches the L4 24 GB"),
        (VisibleGPU("NVIDIA GeForce RTX 4090", 23.99, (8, 9)), "gpu24", "(bfloat16)"),
        (VisibleGPU("NVIDIA A100-SXM4-80GB", 79.3, (8, 0)), "gpu24", "(bfloat16)"),  # full is never automatic
        (VisibleGPU("Tesla V100-SXM2-32GB", 31.7, (7, 0)), "t4", "needs bfloat16"),  # memory enough, no bfloat16
        (VisibleGPU("NVIDIA GeForce RTX 3060", 11.7, (8, 6)), "t4", "is below the T4 16 GB"),
    ],
)
def test_the_visible_gpu_picks_the_profile_by_memory_and_compute_capability(monkeypatch, gpu, expected, because):
    _visible(monkeypatch, gpu)
    choice = choose_profile()
    assert choice.profile.name == expected
    assert str(gpu) in choice.reason and because in choice.reason


def test_names_and_the_environment_override_the_gpu(monkeypatch):
    _visible(monkeypatch, T4)
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "full")
    assert choose_profile().profile.name == "full" and choose_profile().reason == "$ZEPHYR_PROFILE=full"
    assert active_profile("cpu").name == "cpu", "an explicit name beats the environment"
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "colab")  # the old name of the 24 GB profile still works
    choice = choose_profile()
    assert choice.profile is PROFILES["gpu24"] and "old name of 'gpu24'" in choice.reason


def test_gpu_profile_without_gpu_explains_itself_unless_only_planning(monkeypatch):
    _visible(monkeypatch, None)
    monkeypatch.setenv(profiles.PROFILE_ENV_VAR, "t4")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        active_profile()
    assert choose_profile(check_hardware=False).profile.name == "t4"
    with pytest.raises(ValueError, match="unknown profile 'tpu'; choose one of cpu, t4, gpu24, full, colab"):
        get_profile("tpu")


def test_gpu_profiles_follow_the_zephyr_recipe_at_their_scale():
    from zephyr_tutorial.recipes import default_recipe

    t4, gpu24, full = (get_profile(name) for name in ("t4", "gpu24", "full"))
    assert t4.model.id == gpu24.model.id == full.model.id == MISTRAL_7B
    assert t4.model.load_in_4bit and gpu24.model.load_in_4bit and not full.model.load_in_4bit
    for profile in GPU_PROFILES:
        assert profile.data.sft_dataset == "HuggingFaceH4/ultrachat_200k"
        assert profile.data.preference_dataset == "HuggingFaceH4/ultrafeedback_binarized"
    sft = {p.name: default_recipe("sft", p)["trainer"] for p in (t4, gpu24, full)}
    dpo = {p.name: default_recipe("dpo", p)["trainer"] for p in (t4, gpu24, full)}
    assert sft["t4"]["learning_rate"] == sft["gpu24"]["learning_rate"] == 2e-4 and sft["full"]["learning_rate"] == 2e-5
    assert dpo["t4"]["learning_rate"] == 5e-6 and dpo["full"]["learning_rate"] == 5e-7
    assert dpo["t4"]["beta"] == dpo["full"]["beta"] == 0.01
    assert sft["t4"]["optim"] == dpo["t4"]["optim"] == "paged_adamw_32bit"  # the handbook's QLoRA optimizer


def test_the_dtype_is_one_the_target_card_computes_natively():
    assert get_profile("t4").model.dtype == "float16" and GPU_CARDS["T4 16 GB"].compute_capability == (7, 5)
    for profile in GPU_PROFILES:
        card = GPU_CARDS[profile.hardware.gpu_card]
        if card.compute_capability < profiles.BFLOAT16_CAPABILITY:
            assert profile.model.dtype == "float16", profile.name
        assert profile.model.dtype in ("float16", "bfloat16")
    assert get_profile("cpu").hardware.gpu_card is None and get_profile("cpu").model.dtype == "float32"


def test_every_profile_has_a_real_step_budget_sized_by_its_data():
    for profile in PROFILES.values():
        train, data = profile.train, profile.data
        rows = data.max_train_samples if data.max_train_samples is not None else ULTRACHAT_200K_TRAIN_ROWS
        if profile.model.device == "cuda":
            per_step = train.per_device_batch_size * train.gradient_accumulation_steps * profile.hardware.num_gpus
            assert train.max_steps == steps_for(rows, per_step, 1, train.num_train_epochs), profile.name
            # the notebooks take a half and a sixth of it for their extra runs: still real training runs
            assert min(train.max_steps, train.max_steps // 2, train.max_steps // 6) > 2, profile.name
        assert train.max_steps > 0 and train.num_train_epochs > 0


def test_steps_for_counts_global_batches_and_rejects_nonsense():
    assert steps_for(320, 2, 4) == 40 and steps_for(321, 2, 4) == 41 and steps_for(100, 8, 2, 1.0, gpus=8) == 1
    assert steps_for(64, 4, 1, epochs=2.0) == 32
    with pytest.raises(ValueError, match="must be positive"):
        steps_for(10, 0, 1)
    with pytest.raises(ValueError, match="epochs above 0"):
        steps_for(10, 1, 1, epochs=0)


def test_no_gpu_profile_loads_a_second_base_copy_for_before_after():
    for profile in PROFILES.values():
        assert profile.model.before_after in BEFORE_AFTER_MODES
        if profile.model.load_in_4bit:  # QLoRA: the one 4-bit model with its adapter switched off
            assert profile.model.before_after == DISABLE_ADAPTER, profile.name


def test_roles_are_instruct_models_on_gpu_and_the_embedded_model_on_cpu():
    cpu = get_profile("cpu")
    assert cpu.roles.teacher_model == cpu.roles.judge_model == EMBEDDED_MODEL and cpu.roles.pool_models == ()
    assert not cpu.needs_hub
    for profile in GPU_PROFILES:
        roles = profile.roles
        for model_id in (roles.teacher_model, roles.judge_model, *roles.pool_models):
            assert model_id.endswith("-Instruct") and model_id != profile.model.id, (profile.name, model_id)
        assert roles.pool_models and profile.needs_hub
        assert roles.roles_in_4bit == profile.model.load_in_4bit  # beside a 4-bit trained model, in 4-bit too


def test_role_choice_reads_endpoints_from_the_environment():
    t4 = get_profile("t4")
    local = role_choice(t4, "judge", environ={})
    assert (local.models, local.endpoint, local.source) == (
        ("Qwen/Qwen2.5-7B-Instruct",),
        False,
        "profile 't4' (roles.judge_model)",
    )
    env = {"ZEPHYR_JUDGE_MODEL": "gpt-4-0613", "OPENAI_API_KEY": "sk-secret-123"}
    remote = role_choice(t4, "judge", environ=env)
    assert remote.endpoint and remote.models == ("gpt-4-0613",) and remote.base_url is None
    assert "sk-secret" not in repr(remote)
    pool = role_choice(
        t4, "pool", environ={"ZEPHYR_POOL_MODEL": "a, b", "ZEPHYR_POOL_BASE_URL": "http://127.0.0.1:8000/v1"}
    )
    assert pool.models == ("a", "b") and pool.base_url == "http://127.0.0.1:8000/v1"
    with pytest.raises(ValueError, match="ZEPHYR_TEACHER_MODEL is not"):
        role_choice(t4, "teacher", environ={"ZEPHYR_TEACHER_BASE_URL": "http://127.0.0.1:8000/v1"})
    with pytest.raises(ValueError, match="the judge is one model"):
        role_choice(t4, "judge", environ={"ZEPHYR_JUDGE_MODEL": "a,b"})
    with pytest.raises(ValueError, match="unknown role 'critic'"):
        role_choice(t4, "critic")


def test_overrides_make_a_copy_and_reject_unknown_fields():
    cpu = get_profile("cpu")
    shorter = cpu.with_overrides(max_steps=3, model={"dtype": "bfloat16"}, seed=1, judge_model="x")
    assert (shorter.train.max_steps, shorter.model.dtype, shorter.seed) == (3, "bfloat16", 1)
    assert shorter.roles.judge_model == "x" and cpu.roles.judge_model == EMBEDDED_MODEL
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


@pytest.mark.parametrize("profile", GPU_PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_the_trainers_the_gpu_notebooks_build_take_more_than_two_steps(profile, stage, tmp_path):
    """Notebooks 03 and 05 build their TRL config from the profile and its recipe (``default_recipe``, the recipe's
    ``profile_overrides``, then ``sft_config``/``dpo_config``); notebook 05's label-noise runs add
    ``num_train_epochs=1``. The optimizer steps that config takes over the profile's data is the step count of the
    GPU path: a recipe whose ``trainer`` section overrides the profile (``max_steps: -1`` and epochs) must still
    give a real run. Built on this CPU machine, as ``plan`` does; only the precision flags differ on a GPU."""
    from zephyr_tutorial.dpo import dpo_config
    from zephyr_tutorial.recipes import default_recipe
    from zephyr_tutorial.sft import sft_config

    recipe = default_recipe(stage, profile)
    resolved = profile.with_overrides(**recipe["profile_overrides"])
    build = sft_config if stage == "sft" else dpo_config
    rows = resolved.data.max_train_samples
    if rows is None:  # the whole dataset: ultrachat_200k's train_sft, or ultrafeedback_binarized's train_prefs
        rows = ULTRACHAT_200K_TRAIN_ROWS if stage == "sft" else 60_000  # train_prefs has 61,135 pairs
    extra = [{}] if stage == "sft" else [{}, {"num_train_epochs": 1, "save_strategy": "no"}]
    for overrides in extra:
        args = build(resolved, recipe, tmp_path / stage, **overrides)
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * resolved.hardware.num_gpus
        if args.max_steps > 0:
            steps = args.max_steps
        else:
            steps = math.ceil(rows / per_step) * math.ceil(args.num_train_epochs)
        assert steps > 2, (profile.name, stage, overrides, args.max_steps, args.num_train_epochs, rows, per_step)
