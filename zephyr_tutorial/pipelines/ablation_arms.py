"""The six arms of notebook 06 at equal budgets: which run makes each adapter, found in ``outputs/`` or trained.

:func:`plan_arm_runs` says, without training anything, which recipe makes which arm, where it lands and what it
costs in optimizer steps; :func:`ensure_arms` trains the runs whose adapters are missing and returns the
:class:`~zephyr_tutorial.pipelines.ablations.Arm` list that :func:`~zephyr_tutorial.pipelines.ablations.run_suite`
measures.

The "one epoch" and "longer" DPO arms come from one run when its recipe saves a checkpoint every epoch of a
several-epoch run with a constant learning rate after warm-up (``dpo_cpu``: notebook 05's run, whose epoch-1
checkpoint is what a one-epoch run would have given). A recipe with a step budget and a schedule over it
(``dpo_single_gpu``: 40 steps, cosine, one checkpoint kept) cannot give both, so the longer arm is a run of its own,
``longer_epochs`` times the steps, with the same hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..recipes.budget import planned_steps
from ..runtime import data_dir, output_dir
from ..schemas import preference_rows
from .ablations import Arm, sft2_rows
from .runner import ensure_sft_adapter, run_recipe

ONE_EPOCH, LONGER = "dSFT + dDPO", "dSFT + dDPO, longer"


@dataclass(frozen=True)
class ArmRun:
    """How one arm's adapter is made: ``recipe`` trains it into ``run_dir``; the arm is ``pick`` of that run
    (``"final"``, or its ``"first"``/``"last"`` epoch checkpoint); ``steps`` are the run's optimizer steps."""

    name: str
    recipe: dict
    run_dir: Path
    pick: str
    steps: int

    def adapter(self) -> Path | None:
        """The adapter folder when the run has made it, else ``None``."""
        if self.pick == "final":
            final = self.run_dir / "final"
            return final if (final / "adapter_config.json").is_file() else None
        checkpoints = epoch_checkpoints(self.run_dir)
        if len(checkpoints) < 2:
            return None
        return checkpoints[0] if self.pick == "first" else checkpoints[-1]


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """A run's ``checkpoint-N`` folders in step order."""
    return sorted(Path(run_dir).glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))


def saves_every_epoch(recipe: dict) -> bool:
    """Whether one run of ``recipe`` gives both DPO arms: a checkpoint every epoch of an epoch-counted run of two or
    more epochs, all kept, after a warm-up into a constant learning rate."""
    trainer = recipe.get("trainer", {})
    return (
        trainer.get("save_strategy") == "epoch"
        and trainer.get("num_train_epochs", 1) >= 2
        and trainer.get("max_steps", -1) <= 0
        and trainer.get("save_total_limit") is None
        and trainer.get("lr_scheduler_type") in ("constant", "constant_with_warmup")
    )


def plan_arm_runs(
    profile, sft_recipe: dict, dpo_recipe: dict, *, longer_epochs: int = 3, pairs: int | None = None
) -> dict[str, ArmRun]:
    """The run behind each arm trained here (dSFT-2, dDPO only, the two DPO lengths), without training: ``steps`` are
    each run's own. ``pairs``: how many preference rows DPO trains on (default: read them, as the run will).

    Budgets: dSFT-2 continues the dSFT adapter for as many SFT steps as the one-epoch DPO arm trains, on the chosen
    replies of the same pairs; dDPO only trains those DPO steps from the base model.
    """
    if pairs is None:
        pairs = len(preference_rows(profile.with_overrides(**dpo_recipe.get("profile_overrides", {})), "train"))
    dpo_dir = output_dir("dpo", "sft_dpo")  # notebook 05's run
    trainer = dict(dpo_recipe.get("trainer", {}))
    if saves_every_epoch(dpo_recipe):
        epoch = planned_steps(profile, {**dpo_recipe, "trainer": {**trainer, "num_train_epochs": 1}}, pairs)
        one_epoch = ArmRun(ONE_EPOCH, dpo_recipe, dpo_dir, "first", epoch)
        longer = ArmRun(LONGER, dpo_recipe, dpo_dir, "last", planned_steps(profile, dpo_recipe, pairs))
        one_epoch_trainer = {**trainer, "num_train_epochs": 1, "save_strategy": "no"}
    else:
        epoch = planned_steps(profile, dpo_recipe, pairs)
        one_epoch = ArmRun(ONE_EPOCH, dpo_recipe, dpo_dir, "final", epoch)
        longer_trainer = {**trainer, "max_steps": longer_epochs * epoch, "num_train_epochs": longer_epochs}
        longer_recipe = {**dpo_recipe, "trainer": longer_trainer}
        longer = ArmRun(LONGER, longer_recipe, output_dir("ablations", "dpo_longer"), "final", longer_epochs * epoch)
        one_epoch_trainer = trainer
    dpo_only = {**dpo_recipe, "sft_adapter": None, "trainer": one_epoch_trainer}
    sft2 = {
        **sft_recipe,
        "data_folder": str(output_dir("ablations", "dsft2_data")),
        "profile_overrides": {**sft_recipe.get("profile_overrides", {}), "max_steps": epoch},
    }
    runs = [
        ArmRun("dSFT-2", sft2, output_dir("ablations", "dsft2"), "final", epoch),
        ArmRun("dDPO only", dpo_only, output_dir("ablations", "dpo_only"), "final", epoch),
        one_epoch,
        longer,
    ]
    return {run.name: run for run in runs}


def ensure_arms(profile, sft_recipe: dict, dpo_recipe: dict, *, longer_epochs: int = 3) -> list[Arm]:
    """The six arms of notebook 06: the adapters notebooks 03 and 05 saved, and the runs that are missing trained now
    (:func:`plan_arm_runs`). A reader adds an arm to the returned list with one line, ``Arm("mine", "path")``."""
    sft_adapter = ensure_sft_adapter(profile)  # notebook 03's, or trained now with the profile's SFT recipe
    dpo_profile = profile.with_overrides(**dpo_recipe.get("profile_overrides", {}))
    pairs = preference_rows(dpo_profile, "train")
    runs = plan_arm_runs(profile, sft_recipe, dpo_recipe, longer_epochs=longer_epochs, pairs=len(pairs))
    for run in runs.values():
        if run.adapter() is not None:
            continue
        recipe = run.recipe
        if run.name == "dSFT-2":  # the chosen replies as SFT rows; it continues the dSFT adapter
            sft2_rows(data_dir() / "sft", pairs, recipe["data_folder"])
            recipe = {**recipe, "init_adapter": str(sft_adapter)}
        run_recipe(recipe, profile=profile, run_dir=run.run_dir, resume=False)
        if run.adapter() is None:
            raise RuntimeError(f"{run.name}: the run in {run.run_dir} did not leave the {run.pick} adapter it needs")
    sft_steps = planned_steps(profile, sft_recipe)
    beta = dpo_recipe["trainer"]["beta"]

    def dpo_arm(run: ArmRun, reference, before: int, **extra) -> Arm:
        steps = before + run.steps
        return Arm(run.name, run.adapter(), steps=steps, dpo=True, reference=reference, beta=beta, **extra)

    return [
        Arm("base", None, steps=0),
        Arm("dSFT", sft_adapter, steps=sft_steps),
        Arm("dSFT-2", runs["dSFT-2"].adapter(), steps=sft_steps + runs["dSFT-2"].steps),
        dpo_arm(runs["dDPO only"], None, 0),
        dpo_arm(runs[ONE_EPOCH], sft_adapter, sft_steps),
        dpo_arm(runs[LONGER], sft_adapter, sft_steps, train_pairs=pairs),
    ]
