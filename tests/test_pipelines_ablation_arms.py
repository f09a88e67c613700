"""Notebook 06's arms: which run makes which adapter, at which budget, on the cpu profile and on a GPU one."""

from __future__ import annotations

from zephyr_tutorial.pipelines.ablation_arms import LONGER, ONE_EPOCH, ArmRun, plan_arm_runs, saves_every_epoch
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.recipes import default_recipe


def _plan(name: str, pairs: int):
    profile = get_profile(name)
    return plan_arm_runs(profile, default_recipe("sft", profile), default_recipe("dpo", profile), pairs=pairs)


def test_on_cpu_both_dpo_arms_are_checkpoints_of_notebook_05s_run_and_the_budgets_match():
    runs = _plan("cpu", pairs=96)
    one_epoch, longer = runs[ONE_EPOCH], runs[LONGER]
    assert one_epoch.run_dir == longer.run_dir and (one_epoch.pick, longer.pick) == ("first", "last")
    assert one_epoch.steps == 24 and longer.steps == 3 * 24  # 96 pairs / batch 4, one and three epochs
    assert runs["dSFT-2"].steps == runs["dDPO only"].steps == one_epoch.steps
    assert runs["dDPO only"].recipe["sft_adapter"] is None
    assert runs["dDPO only"].recipe["trainer"]["num_train_epochs"] == 1
    assert runs["dSFT-2"].recipe["profile_overrides"]["max_steps"] == 24


def test_a_step_budgeted_gpu_recipe_gets_a_longer_run_of_its_own():
    """dpo_single_gpu keeps one checkpoint of a 40-step cosine run: its only checkpoint would have been both arms."""
    for name in ("t4", "gpu24"):
        profile = get_profile(name)
        dpo = default_recipe("dpo", profile)
        assert not saves_every_epoch(dpo)
        runs = _plan(name, pairs=profile.data.max_train_samples)
        one_epoch, longer = runs[ONE_EPOCH], runs[LONGER]
        assert one_epoch.run_dir != longer.run_dir and one_epoch.pick == longer.pick == "final"
        assert longer.steps == 3 * one_epoch.steps == longer.recipe["trainer"]["max_steps"]
        assert one_epoch.recipe == dpo  # the one-epoch arm is the recipe as notebook 05 runs it
        assert min(run.steps for run in runs.values()) > 2, name


def test_an_arm_run_finds_its_adapter_only_once_it_exists(tmp_path):
    final = ArmRun("x", {}, tmp_path, "final", 1)
    first, last = ArmRun("x", {}, tmp_path, "first", 1), ArmRun("x", {}, tmp_path, "last", 2)
    assert final.adapter() is first.adapter() is None
    for step in (24, 48, 72):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "final").mkdir()
    assert final.adapter() is None  # a folder without adapter_config.json is not an adapter
    (tmp_path / "final" / "adapter_config.json").write_text("{}")
    assert final.adapter() == tmp_path / "final"
    assert (first.adapter().name, last.adapter().name) == ("checkpoint-24", "checkpoint-72")  # by step, not by name
