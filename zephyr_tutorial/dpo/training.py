"""DPO training: a thin wrapper over TRL's ``DPOTrainer``, with a YAML recipe and resumable runs.

The policy starts from the SFT adapter of notebook 03 on a 4-bit (NF4) base:
QLoRA. The reference model is the *same* base weights: TRL adds a frozen copy
of the SFT adapter named ``"ref"`` (a few MB) and switches to it for the
reference forward pass. Starting without SFT, a fresh adapter is trained and
the reference is the base model with the adapter disabled. Either way there is
no second copy of the model in memory (``benchmarks/dpo_reference_strategies.py``
measures what a copy would cost).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CPU_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "dpo_cpu.yaml"


def load_recipe(path: str | os.PathLike = CPU_RECIPE, overrides: dict[str, Any] | None = None) -> dict:
    """A DPO recipe (format: :mod:`zephyr_tutorial.recipes`, shared with SFT), every key checked.

    DPO-specific keys: ``sft_adapter`` (a folder, ``auto`` for notebook 03's adapter, ``null`` for
    DPO without SFT) and ``data_folder`` (holding ``train_prefs.jsonl`` and ``test_prefs.jsonl``).
    An override key goes to the top level when it is one of the recipe's top-level keys, to ``model``
    for ``from_pretrained`` arguments, to ``profile_overrides`` when it names a Profile field, else to
    ``trainer`` (``trl.DPOConfig`` fields: ``beta``, ``loss_type``, ``precompute_ref_log_probs``...).
    """
    from zephyr_tutorial.recipes import load_recipe as load_any_recipe

    recipe = load_any_recipe(path, "dpo", overrides)
    # `auto` means notebook 03's adapter of the embedded model: only a default for the notebooks' recipes
    recipe.setdefault("sft_adapter", "auto" if recipe.get("model") is None else None)
    return recipe


def dpo_config(profile, run_dir: str | os.PathLike, **overrides):
    """``trl.DPOConfig`` from a profile (beta, learning rate, batch, steps, max length), then ``overrides``.

    Shared trainer settings come from :func:`zephyr_tutorial.profiles.trainer_arguments` (bf16 only on a GPU,
    no external loggers).
    Unknown keys raise ``ValueError`` naming them.
    """
    from trl import DPOConfig

    from ..profiles import trainer_arguments

    values = trainer_arguments(profile, run_dir)
    values.update(
        beta=profile.dpo_beta,
        learning_rate=profile.dpo_learning_rate,
        max_length=profile.dpo_max_length,
        lr_scheduler_type="linear",
    )
    values.update(overrides)
    try:
        return DPOConfig(**values)
    except TypeError as error:
        raise ValueError(f"DPO trainer settings: {error} (keys must be trl.DPOConfig fields)") from None


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The ``checkpoint-N`` folder with the largest N, if a previous run left one."""
    checkpoints = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1]), default=None)


@dataclass
class DPORun:
    """What :func:`train_dpo` leaves behind."""

    trainer: Any
    adapter_dir: Path
    history: list[dict] = field(default_factory=list)
    """Trainer's ``log_history``: one dict per logging step with ``rewards/*``, ``loss``, ``logps/*`` ..."""
    resumed_from: Path | None = None

    @property
    def model(self):
        return self.trainer.model

    def training_metrics(self) -> list[dict]:
        """The training-step entries of the history (those with ``rewards/margins``), in step order."""
        return [entry for entry in self.history if "rewards/margins" in entry and "eval_loss" not in entry]


def train_dpo(
    model,
    tokenizer,
    train_dataset,
    *,
    args,
    eval_dataset=None,
    peft_config=None,
    ref_model=None,
    resume: bool = True,
    callbacks=None,
) -> DPORun:
    """Train with TRL's ``DPOTrainer`` and save the adapter to ``args.output_dir/final``.

    ``model`` is a PEFT model carrying the SFT adapter (trainable), or a plain
    model together with ``peft_config`` for a fresh adapter. ``ref_model=None``
    keeps a single copy of the weights (see the module docstring). With
    ``resume`` and a ``checkpoint-N`` in ``args.output_dir`` (a run that was
    interrupted, or one already finished), training continues from there.
    """
    from trl import DPOTrainer

    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    _keep_adapter_in_float32_on_cpu(trainer.model)
    checkpoint = latest_checkpoint(args.output_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    adapter_dir = Path(args.output_dir) / "final"
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():  # under a multi-process launch every rank runs this function
        (adapter_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    return DPORun(trainer=trainer, adapter_dir=adapter_dir, history=list(trainer.state.log_history), resumed_from=checkpoint)


def _keep_adapter_in_float32_on_cpu(model) -> None:
    """Undo TRL's bf16 cast of QLoRA adapter weights when training on CPU.

    On GPUs bf16 adapters follow the QLoRA paper; CPUs have no fast bf16
    matmul (the cast made our steps about 1.5x slower). Where TRL kept a
    float32 ``"ref"`` copy of the SFT adapter, the trainable adapter is restored
    from it, so policy and reference start exactly equal.
    """
    import torch

    parameters = dict(model.named_parameters())
    for name, parameter in parameters.items():
        if parameter.requires_grad and parameter.dtype == torch.bfloat16 and parameter.device.type == "cpu":
            reference = parameters.get(name.replace(".default.", ".ref."))
            parameter.data = reference.data.clone() if reference is not None else parameter.data.float()


def load_policy(profile, sft_adapter: str | os.PathLike | None):
    """``(model, tokenizer, peft_config)`` to start DPO from.

    With an SFT adapter: the 4-bit base with that adapter loaded *trainable*
    (``peft_config=None``; TRL then adds the frozen ``"ref"`` copy). Without
    (the no-SFT ablation): the prepared 4-bit base and a fresh ``LoraConfig``.
    """
    from peft import PeftModel, prepare_model_for_kbit_training

    from zephyr_tutorial.sft import lora_config, load_base_model

    model, tokenizer = load_base_model(profile)
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=profile.gradient_checkpointing)
    model.config.use_cache = False
    if sft_adapter is None:
        return model, tokenizer, lora_config(profile)
    model = PeftModel.from_pretrained(model, str(sft_adapter), is_trainable=True)
    return model, tokenizer, None


def load_tokenizer(profile):
    """The profile's tokenizer with the Zephyr chat template (what SFT trained with), without loading weights."""
    from transformers import AutoTokenizer

    from zephyr_tutorial.chat_template import apply_zephyr_template
    from zephyr_tutorial.models import resolve_embedded_model

    source = str(resolve_embedded_model()) if profile.uses_embedded_model else profile.model_id
    return apply_zephyr_template(AutoTokenizer.from_pretrained(source))


def resolve_sft_adapter(value, profile=None) -> Path | None:
    """A recipe's ``sft_adapter``: ``"auto"`` trains/finds notebook 03's adapter, ``None`` means no SFT."""
    if value is None:
        return None
    if value == "auto":
        from zephyr_tutorial.sft import ensure_sft_adapter

        return ensure_sft_adapter(profile)
    path = Path(value)
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"sft_adapter {path}: no adapter_config.json (train one with `zephyr-tutorial sft`)")
    return path


def run_recipe(recipe: dict, profile=None, run_dir: str | os.PathLike | None = None):
    """Train as a recipe says, then score the held-out pairs; returns ``(DPORun, report)``.

    With a ``model`` section TRL loads the model (:func:`zephyr_tutorial.recipes.training.run_dpo`) and the
    report is the trainer's held-out metrics (a dict); without one, notebook 05's path runs and the report
    is an :class:`~zephyr_tutorial.dpo.evaluation.ImplicitRewardReport`.
    """
    from zephyr_tutorial.recipes import recipe_profile
    from zephyr_tutorial.runtime import output_dir, seed_everything

    from .data import find_preference_files, preference_dataset, read_preferences
    from .evaluation import evaluate_implicit_rewards

    profile = recipe_profile(recipe) if profile is None else profile.with_overrides(**recipe["profile_overrides"])
    seed_everything(profile.seed)
    if run_dir is not None:  # an explicit folder (`--run-dir`) wins over the recipe's trainer.output_dir
        recipe = {**recipe, "trainer": {**recipe["trainer"], "output_dir": str(run_dir)}}
    if recipe.get("model") is not None:
        from zephyr_tutorial.recipes.training import run_dpo

        return run_dpo(recipe, profile, run_dir or output_dir("dpo", "run"))
    train_file, test_file = find_preference_files(recipe.get("data_folder"))
    train_rows = read_preferences(train_file, profile.max_train_samples)
    test_rows = read_preferences(test_file, profile.max_eval_samples)
    sft_adapter = resolve_sft_adapter(recipe.get("sft_adapter"), profile)
    model, tokenizer, peft_config = load_policy(profile, sft_adapter)
    args = dpo_config(profile, run_dir or output_dir("dpo", "run"), **recipe["trainer"])
    run = train_dpo(model, tokenizer, preference_dataset(train_rows), args=args, peft_config=peft_config)
    report = evaluate_implicit_rewards(run.model, tokenizer, test_rows, args.beta, max_length=args.max_length)
    if run.trainer.is_world_process_zero():
        (run.adapter_dir / "heldout_rewards.json").write_text(json.dumps(report.as_dict(), indent=1))
    return run, report
