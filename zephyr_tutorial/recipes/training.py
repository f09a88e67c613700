"""Running a recipe that has a ``model`` section: TRL loads the model, so any accelerate launch config applies.

The notebooks' recipes (no ``model`` section) keep their own loaders in
:mod:`zephyr_tutorial.sft` and :mod:`zephyr_tutorial.dpo`. Here the trainer gets
the model *name*, the ``BitsAndBytesConfig`` and the ``LoraConfig``, and builds
the model after the training arguments exist: under DeepSpeed ZeRO-3 the
weights are then partitioned while loading, under DDP/FSDP each process gets its
own copy on its own device, and ``device_map`` is left to TRL.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import build_lora_config, build_quantization_config, build_trainer_config, resolve_model_name

DEFAULT_SPLITS = {"sft": ("train_sft", "test_sft"), "dpo": ("train_prefs", "test_prefs")}


def _capped(dataset, cap):
    return dataset.select(range(min(cap, len(dataset)))) if cap else dataset


def load_recipe_splits(recipe: dict, profile):
    """``(train, eval)`` datasets in TRL's format: a hub dataset when the recipe names one, else the local files."""
    from datasets import load_dataset

    from ..dpo.data import find_preference_files, preference_dataset, read_preferences, to_trl_preference
    from ..sft.data import load_sft_splits

    stage, section = recipe["stage"], recipe.get("dataset") or {}
    name = section.get("name", "local")
    if name == "local":
        if stage == "sft":
            splits = load_sft_splits(profile.with_overrides(sft_dataset="local"), recipe.get("data_folder"))
            return splits["train"], splits["test"]
        train_file, test_file = find_preference_files(recipe.get("data_folder"))
        return (preference_dataset(read_preferences(train_file, profile.max_train_samples)),
                preference_dataset(read_preferences(test_file, profile.max_eval_samples)))
    default_train, default_eval = DEFAULT_SPLITS[stage]
    datasets = []
    for split, cap in ((section.get("train_split", default_train), profile.max_train_samples),
                       (section.get("eval_split", default_eval), profile.max_eval_samples)):
        dataset = _capped(load_dataset(name, split=split), cap)
        if stage == "sft":
            dataset = dataset.select_columns(["messages"])
        else:  # ultrafeedback_binarized rows hold whole conversations; TRL wants the shared prompt apart
            dataset = dataset.map(to_trl_preference, remove_columns=dataset.column_names)
        datasets.append(dataset)
    return tuple(datasets)


def _tokenizer(model_name: str):
    from transformers import AutoTokenizer

    from ..chat_template import apply_zephyr_template

    return apply_zephyr_template(AutoTokenizer.from_pretrained(model_name))


def _last_checkpoint(output_dir: Path):
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def report_ranks(trainer, stage: str) -> str:
    """One line per process: which rank of how many trained how many steps, under which distributed mode.

    Every rank prints it, so a launch log shows that all processes took part.
    """
    args = trainer.args
    return (f"[{stage}] rank {args.process_index}/{args.world_size} "
            f"({trainer.accelerator.distributed_type.value}): trained {trainer.state.global_step} steps")


def run_sft(recipe: dict, profile, output_dir):
    """SFT as the recipe says; returns ``(trainer, final_dir)``. Resumes from the last checkpoint in ``output_dir``."""
    from trl import SFTTrainer

    from ..sft.training import throughput_callback

    model_name = resolve_model_name(recipe["model"]["model_name_or_path"])
    config = build_trainer_config(recipe, profile, output_dir)
    train, evaluation = load_recipe_splits(recipe, profile)
    trainer = SFTTrainer(
        model=model_name, args=config, train_dataset=train,
        eval_dataset=evaluation if config.eval_strategy != "no" else None,
        processing_class=_tokenizer(model_name),
        peft_config=build_lora_config(recipe, profile),
        quantization_config=build_quantization_config(recipe, profile),
        callbacks=[throughput_callback()],
    )
    trainer.train(resume_from_checkpoint=_last_checkpoint(Path(config.output_dir)))
    final_dir = Path(config.output_dir) / "final"
    trainer.save_model(str(final_dir))  # writes on the main process only (gathering ZeRO-3 shards first)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final_dir))
    return trainer, final_dir


def run_dpo(recipe: dict, profile, output_dir):
    """DPO as the recipe says; returns ``(DPORun, held-out metrics)``.

    With ``sft_adapter`` the policy is the base model plus that adapter, trainable, and TRL keeps a frozen
    copy of the adapter as the reference; without, TRL loads the model by name and either adds a fresh
    adapter (``lora``) or, for full fine-tuning, loads a second frozen copy as the reference.
    """
    from trl import DPOTrainer

    from ..dpo.training import DPORun, resolve_sft_adapter

    model_name = resolve_model_name(recipe["model"]["model_name_or_path"])
    # Built before any model is loaded: under ZeRO-3, from_pretrained partitions weights only when it sees
    # the DeepSpeed config that these training arguments register.
    config = build_trainer_config(recipe, profile, output_dir)
    quantization = build_quantization_config(recipe, profile)
    train, evaluation = load_recipe_splits(recipe, profile)
    sft_adapter = resolve_sft_adapter(recipe.get("sft_adapter"), profile)
    model, peft_config = model_name, build_lora_config(recipe, profile)
    if sft_adapter is not None:
        from peft import PeftModel
        from trl.trainer.utils import create_model_from_path

        kwargs = dict(config.model_init_kwargs or {})
        if quantization is not None:
            kwargs["quantization_config"] = quantization
        if config.distributed_state.distributed_type.value in ("MULTI_GPU", "DEEPSPEED", "MULTI_CPU"):
            kwargs["device_map"] = None  # each process holds its own copy; "auto" would spread it over devices
        model = PeftModel.from_pretrained(create_model_from_path(model_name, **kwargs), str(sft_adapter),
                                          is_trainable=True)
        peft_config = None
        config.model_init_kwargs = None  # used above; TRL would warn that it ignores them for a loaded model
    trainer = DPOTrainer(model=model, args=config, train_dataset=train, eval_dataset=evaluation,
                         processing_class=_tokenizer(model_name), peft_config=peft_config,
                         quantization_config=quantization if isinstance(model, str) else None)
    checkpoint = _last_checkpoint(Path(config.output_dir))
    trainer.train(resume_from_checkpoint=checkpoint)
    final_dir = Path(config.output_dir) / "final"
    trainer.save_model(str(final_dir))
    metrics = trainer.evaluate()  # distributed over the ranks, like training
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final_dir))
        (final_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        (final_dir / "heldout_metrics.json").write_text(json.dumps(metrics, indent=1))
    run = DPORun(trainer=trainer, adapter_dir=final_dir, history=list(trainer.state.log_history),
                 resumed_from=Path(checkpoint) if checkpoint else None)
    return run, metrics
