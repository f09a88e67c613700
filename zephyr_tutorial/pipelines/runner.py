"""The recipe runner: one :func:`run_recipe` for both stages, for the notebooks and the command line.

Two ways to get the model, chosen by the recipe:

- **no ``model`` section** (the notebooks' recipes): the profile's model is loaded by our own loaders
  (the embedded model and its cached 4-bit copy), prepared, and given the recipe's adapter;
- **a ``model`` section**: the trainer gets the model *name*, the ``BitsAndBytesConfig`` and the
  ``LoraConfig``, and builds the model after the training arguments exist: under DeepSpeed ZeRO-3 the
  weights are then partitioned while loading, under DDP/FSDP each process gets its own copy on its own
  device, and ``device_map`` is left to TRL. A DPO recipe that continues an SFT adapter loads the base
  and the adapter itself, on each process's device.

Either way the run is :func:`zephyr_tutorial.sft.train_sft` or :func:`zephyr_tutorial.dpo.train_dpo`, which
resume from the last checkpoint and leave their result in ``<run dir>/final``. The runner then measures the
held-out split and completes ``final/results.json`` and the model card (:mod:`zephyr_tutorial.pipelines.results`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..models import resolve_model_name
from ..recipes import (
    STAGES,
    build_lora_config,
    build_quantization_config,
    default_recipe,
    default_run_dir,
    recipe_profile,
)
from ..runtime import seed_everything
from ..schemas import preference_splits, sft_splits
from ..training import TrainingRun, save_metrics
from .results import HELDOUT_ROWS, dpo_heldout, record_results, sft_heldout


def recipe_datasets(recipe: dict, profile):
    """``(train, eval)`` datasets in TRL's format: the recipe's hub dataset, or the local files.

    Local: ``data_folder`` (SFT: ``train_sft.jsonl``/``test_sft.jsonl``, default ``data/sft``; DPO:
    ``train_prefs.jsonl``/``test_prefs.jsonl``, default notebook 04's output, else ``data/preferences``).
    """
    stage = STAGES[recipe["stage"]]
    section = recipe.get("dataset") or {}
    name = section.get("name", "local")
    source = recipe.get("data_folder") if name == "local" else name
    if stage.data == "sft" and source is None:
        source = "local"
    splits = (section.get("train_split", stage.splits[0]), section.get("eval_split", stage.splits[1]))
    load = sft_splits if stage.data == "sft" else preference_splits
    loaded = load(profile, source, splits)
    train, evaluation = loaded["train"], loaded["test"]
    if stage.data == "sft" and recipe.get("fit_to_length"):
        # TRL would cut a longer row at max_length and lose its last end-of-turn token; leave it out, said aloud
        from ..models import load_tokenizer
        from ..sft import fit_to_length

        tokenizer = load_tokenizer(profile)
        train, train_fit = fit_to_length(train, tokenizer, profile.train.sft_max_length)
        evaluation, eval_fit = fit_to_length(evaluation, tokenizer, profile.train.sft_max_length)
        print(f"[sft] train: {train_fit}; eval: {eval_fit}")
        if len(train) == 0:
            raise ValueError(
                f"fit_to_length: no training row fits sft_max_length={profile.train.sft_max_length} ({train_fit}); "
                "raise sft_max_length or set fit_to_length: false"
            )
    return train, evaluation


def _from_pretrained_kwargs(args, quantization) -> dict:
    kwargs = dict(args.model_init_kwargs or {})
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if args.distributed_state.distributed_type.value in ("MULTI_GPU", "DEEPSPEED", "MULTI_CPU"):
        kwargs["device_map"] = None  # each process holds its own copy; "auto" would spread it over devices
    return kwargs


@dataclass(frozen=True)
class StagePipeline:
    """How the runner builds a stage's pieces; one entry of :data:`PIPELINES` per stage."""

    config: Callable
    """``config(profile, recipe, run_dir)``: the TRL config."""
    train: Callable
    """``train(model, tokenizer, train, eval, *, args, peft_config, quantization_config, resume)``."""
    profile_model: Callable
    """``profile_model(recipe, profile) -> (model, tokenizer, peft_config)``: the notebooks' path."""
    named_model: Callable
    """``named_model(recipe, profile, args, quantization) -> (model, peft_config)``: the by-name path."""
    evaluate: Callable
    """``evaluate(run, eval_dataset, recipe, args) -> (metrics, heldout)``: what the stage measures after training,
    as plain numbers for ``metrics.json`` and as ``results.json``'s ``heldout`` entries with 95% intervals."""
    trainer_evaluates: Callable = lambda recipe: False
    """Whether ``evaluate`` asks the trainer, which then needs the eval set even with ``eval_strategy: no``."""


def _sft_profile_model(recipe, profile):
    from ..sft import load_model_for_training

    init_adapter = _existing_adapter(recipe.get("init_adapter"), "init_adapter")
    if init_adapter is not None:  # continue a trained adapter (dSFT-2 = dSFT, then SFT on the chosen replies)
        from ..models import load_adapter_model

        model, tokenizer = load_adapter_model(init_adapter, profile, trainable=True)  # Zephyr template included
        return model, tokenizer, None
    model, tokenizer = load_model_for_training(profile, recipe)
    return model, tokenizer, None


def _sft_named_model(recipe, profile, args, quantization):
    init_adapter = _existing_adapter(recipe.get("init_adapter"), "init_adapter")
    if init_adapter is not None:
        return _continued_adapter(recipe, args, quantization, init_adapter), None
    return resolve_model_name(recipe["model"]["model_name_or_path"]), build_lora_config(recipe)


def _continued_adapter(recipe, args, quantization, adapter: Path):
    """The by-name base with a saved LoRA adapter loaded *trainable*: what DPO continuing SFT and dSFT-2 start from."""
    from peft import PeftModel
    from trl.trainer.utils import create_model_from_path

    name = resolve_model_name(recipe["model"]["model_name_or_path"])
    base = create_model_from_path(name, **_from_pretrained_kwargs(args, quantization))
    args.model_init_kwargs = None  # used above; TRL would warn that it ignores them for a loaded model
    return PeftModel.from_pretrained(base, str(adapter), is_trainable=True)


def _dpo_profile_model(recipe, profile):
    from ..dpo import load_policy

    return load_policy(profile, recipe, resolve_sft_adapter(recipe.get("sft_adapter"), profile))


def _dpo_named_model(recipe, profile, args, quantization):
    """With ``sft_adapter`` the policy is the base model plus that adapter, trainable, and TRL keeps a frozen
    copy of the adapter as the reference; without, TRL loads the model by name and either adds a fresh
    adapter (``lora``) or, for full fine-tuning, loads a second frozen copy as the reference."""
    sft_adapter = resolve_sft_adapter(recipe.get("sft_adapter"), profile)
    if sft_adapter is None:
        return resolve_model_name(recipe["model"]["model_name_or_path"]), build_lora_config(recipe)
    return _continued_adapter(recipe, args, quantization, sft_adapter), None


def _sft_evaluation(run, eval_dataset, recipe, args) -> tuple[dict, dict]:
    """The held-out loss with its interval, scored one dialogue at a time on the main process. A multi-process run
    leaves it out: the sharded model answers only when every rank runs the same forward pass."""
    if args.world_size > 1 or eval_dataset is None:
        return {}, {}
    heldout = sft_heldout(run, eval_dataset)
    metrics = {"heldout_loss": heldout["eval_loss"]["estimate"]} if heldout else {}
    return metrics, heldout


def _dpo_evaluation(run, eval_dataset, recipe, args) -> tuple[dict, dict]:
    """The notebooks' path: our from-scratch implicit-reward accuracy; the by-name path: the trainer's held-out
    metrics (distributed over the ranks, like training) and, on one process, our per-pair margins for the interval
    (the trainer logs only batch means)."""
    from ..dpo import evaluate_implicit_rewards, evaluate_run

    if recipe.get("model") is None:
        report = evaluate_run(run, list(eval_dataset))
        return {f"heldout_{key}": value for key, value in report.as_dict().items()}, dpo_heldout(report.margins)
    metrics = run.trainer.evaluate()
    ref_model = run.trainer.ref_model
    if args.world_size > 1 or (ref_model is None and not getattr(run.model, "peft_config", None)):
        return metrics, {}
    rows = list(eval_dataset.select(range(min(HELDOUT_ROWS, len(eval_dataset)))))
    report = evaluate_implicit_rewards(
        run.model,
        run.tokenizer,
        rows,
        args.beta,
        batch_size=args.per_device_eval_batch_size,
        max_length=args.max_length,
        ref_model=ref_model,
    )
    return metrics, dpo_heldout(report.margins)


def _pipelines() -> dict[str, StagePipeline]:
    from ..dpo import dpo_config, train_dpo
    from ..sft import sft_config, train_sft

    return {
        "sft": StagePipeline(sft_config, train_sft, _sft_profile_model, _sft_named_model, _sft_evaluation),
        "dpo": StagePipeline(
            dpo_config,
            train_dpo,
            _dpo_profile_model,
            _dpo_named_model,
            _dpo_evaluation,
            trainer_evaluates=lambda recipe: recipe.get("model") is not None,
        ),
    }


def run_recipe(
    recipe: dict, *, profile=None, run_dir: str | os.PathLike | None = None, resume: bool = True
) -> TrainingRun:
    """Train as ``recipe`` says (either stage, either path, see the module docstring); return the run.

    ``profile`` defaults to the recipe's (its ``profile_overrides`` applied either way). The run folder is
    ``run_dir``, else the recipe's ``trainer.output_dir``, else ``outputs/<stage>/run``; the result is in its
    ``final/``, with ``metrics.json`` holding the training and held-out metrics, ``results.json`` the whole record
    (recipe and hash, versions, seed, data hashes, held-out metrics with 95% intervals), ``README.md`` the model card
    and ``runs/`` the TensorBoard logs.
    """
    stage = _pipelines()[recipe["stage"]]
    profile = recipe_profile(recipe) if profile is None else profile.with_overrides(**recipe["profile_overrides"])
    seed_everything(profile.seed)
    run_dir = Path(run_dir or recipe["trainer"].get("output_dir") or default_run_dir(recipe["stage"]))
    # Built before any model is loaded: under ZeRO-3, from_pretrained partitions weights only when it sees
    # the DeepSpeed config that these training arguments register.
    args = stage.config(profile, recipe, run_dir)
    train, evaluation = recipe_datasets(recipe, profile)
    quantization = None
    if recipe.get("model") is not None:
        from ..models import load_tokenizer

        quantization = build_quantization_config(recipe, profile)
        model, peft_config = stage.named_model(recipe, profile, args, quantization)
        tokenizer = load_tokenizer(recipe["model"]["model_name_or_path"])
        quantization = quantization if isinstance(model, str) else None
    else:
        model, tokenizer, peft_config = stage.profile_model(recipe, profile)
    trainer_eval = evaluation if args.eval_strategy != "no" or stage.trainer_evaluates(recipe) else None
    run = stage.train(
        model,
        tokenizer,
        train,
        trainer_eval,
        args=args,
        peft_config=peft_config,
        quantization_config=quantization,
        resume=resume,
    )
    metrics, heldout = stage.evaluate(run, evaluation, recipe, args)
    save_metrics(run, metrics)
    record_results(run, recipe, profile, train=train, evaluation=evaluation, heldout=heldout)
    return run


def resolve_sft_adapter(value, profile=None) -> Path | None:
    """A recipe's ``sft_adapter``: ``"auto"`` finds (or trains) notebook 03's adapter, ``None`` means no SFT."""
    if value is None:
        return None
    if value == "auto":
        return ensure_sft_adapter(profile)
    return _existing_adapter(value, "sft_adapter")


def _existing_adapter(value, key: str) -> Path | None:
    """The adapter folder a recipe's ``key`` names (``None``: none), refused when it holds no adapter."""
    if value is None:
        return None
    path = Path(value)
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{key} {path}: no adapter_config.json (train one with `zephyr-tutorial sft`)")
    return path


def ensure_sft_adapter(profile=None) -> Path:
    """The SFT adapter folder (``outputs/sft/run/final``), training it with the profile's SFT recipe if missing."""
    from ..profiles import active_profile
    from ..sft import default_sft_adapter_dir

    adapter_dir = default_sft_adapter_dir()
    if not (adapter_dir / "adapter_config.json").is_file():
        profile = profile or active_profile()
        run_recipe(default_recipe("sft", profile), profile=profile, run_dir=adapter_dir.parent)
    return adapter_dir
