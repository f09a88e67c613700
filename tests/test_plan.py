"""The plan of a profile: printed on any machine, sized against its card, and honest about what it assumes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from zephyr_tutorial.memory import GPU_CARDS, MISTRAL_7B, estimate_training_memory
from zephyr_tutorial.plan import (
    CUDA_OVERHEAD_GIB,
    build_plan,
    describe_plan,
    describe_stage,
    training_memory_gib,
    training_seconds,
)
from zephyr_tutorial.profiles import PROFILES, get_profile


def _plan_printed_by_a_fresh_process(profile_name: str, **env) -> str:
    environment = {**os.environ, "ZEPHYR_PROFILE": profile_name, "CUDA_VISIBLE_DEVICES": "", **env}
    result = subprocess.run(
        [sys.executable, "-m", "zephyr_tutorial.plan"], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", ["t4", "gpu24"])
def test_the_gpu_plans_print_on_a_machine_without_a_gpu(name):
    profile = get_profile(name)
    card = GPU_CARDS[profile.hardware.gpu_card]
    out = _plan_printed_by_a_fresh_process(name)
    assert out.startswith(f"profile {name!r}: ") and f"chosen because $ZEPHYR_PROFILE={name}" in out
    expected = [
        profile.model.id,
        f"4-bit NF4 weights, {profile.model.dtype} compute",
        f"over {profile.data.max_train_samples} rows (1 epoch), {profile.data.max_eval_samples} eval rows",
        f"SFT {profile.train.max_steps} steps x global batch",
        f"against the {card.name}'s {card.memory_gib:.1f} GiB",
        profile.roles.judge_model,
        "times are estimates",
    ]
    for text in expected:
        assert text in out, text
    memory_lines = [line for line in out.splitlines() if " GiB  " in line]
    assert len(memory_lines) == 6 and all("fits" in line and "about" in line for line in memory_lines), memory_lines


def test_the_old_name_prints_the_24_gb_plan():
    assert "(the old name of 'gpu24')" in _plan_printed_by_a_fresh_process("colab")


def test_the_t4_plan_fits_the_card_and_each_training_run_the_hour():
    plan = build_plan(get_profile("t4"))
    assert plan.fits and plan.card.name == "T4 16 GB"
    training = [stage for stage in plan.stages if stage.notebook in ("03", "05")]
    assert len(training) == 2 and all(stage.seconds < 3600 for stage in training)
    assert all(stage.seconds is not None for stage in plan.stages)


def test_every_profile_has_a_plan_and_every_gpu_profile_fits_its_card():
    for profile in PROFILES.values():
        plan = build_plan(profile)
        assert len(plan.stages) == 6 and str(plan)
        assert plan.fits, (profile.name, [(s.what, s.memory_gib) for s in plan.stages])


def test_training_estimates_follow_the_memory_estimator_and_scale_with_the_work():
    t4 = get_profile("t4")
    expected = estimate_training_memory(
        MISTRAL_7B, "qlora", seq_len=1024, batch_size=2, compute_bytes=2, overhead_gib=CUDA_OVERHEAD_GIB
    )
    assert training_memory_gib(t4, "sft") == pytest.approx(expected.total / 2**30)
    assert training_memory_gib(t4.with_overrides(per_device_batch_size=4), "sft") > training_memory_gib(t4, "sft")
    card = GPU_CARDS["T4 16 GB"]
    doubled = t4.with_overrides(max_steps=2 * t4.train.max_steps)
    assert training_seconds(doubled, "sft", card) == pytest.approx(2 * training_seconds(t4, "sft", card))
    assert training_seconds(t4, "sft", GPU_CARDS["A100 80 GB"]) < training_seconds(t4, "sft", card)


def test_an_endpoint_judge_uses_no_gpu_memory_and_the_key_is_never_printed(monkeypatch, capsys):
    monkeypatch.setenv("ZEPHYR_JUDGE_MODEL", "gpt-4-0613")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-print-me")
    plan = describe_plan(get_profile("t4"))
    out = capsys.readouterr().out
    judge_stages = [s for s in plan.stages if s.what.startswith("judge")]
    assert judge_stages and all(s.memory_gib is None for s in judge_stages)
    assert "gpt-4-0613" in out and "$ZEPHYR_JUDGE_MODEL at api.openai.com" in out and "sk-never" not in out


def test_the_cpu_plan_makes_no_time_estimate():
    plan = build_plan(get_profile("cpu"))
    assert plan.card is None and all(stage.seconds is None for stage in plan.stages)
    assert "minutes per notebook on 2 CPU cores" in str(plan)


def test_a_long_cell_can_print_its_own_estimate_first(capsys):
    (sft,) = describe_stage("03", get_profile("t4"))
    line = capsys.readouterr().out.strip()
    assert line.startswith("t4 on the T4 16 GB (15.0 GiB): SFT: 40 steps") and "min (estimate)" in line
    assert sft.memory_gib < 15.0
    with pytest.raises(ValueError, match="no stage of notebook '09'"):
        describe_stage("09", get_profile("t4"))


def test_the_plan_counts_the_steps_each_recipe_trains_not_the_profiles_default():
    """dpo_cpu trains 3 epochs of 96 pairs at batch 4 (72 steps, rows of at most 160 tokens), not the profile's 30
    steps of 512; the full recipes count epochs over the whole datasets (ultrachat_200k, ultrafeedback_binarized)."""
    out = _plan_printed_by_a_fresh_process("cpu")
    assert "DPO 72 steps x global batch 4 (4 x 1 accumulation) over 96 rows (3 epochs), all eval rows, up to 160" in out
    assert "05  DPO: 72 steps" in out
    full = build_plan(get_profile("full"))
    sft, dpo = (next(s for s in full.stages if s.notebook == n) for n in ("03", "05"))
    assert sft.what.startswith("SFT: 1624 steps") and dpo.what.startswith("DPO: 478 steps")  # 207,865 and 61,135 rows
