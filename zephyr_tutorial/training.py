"""What SFT and DPO training share: trainer arguments from a profile, model preparation, one run loop, one result.

Both stages are one TRL trainer with a different loss (the idea of Mitchell's DPO
repository): :func:`zephyr_tutorial.sft.train_sft` builds an ``SFTTrainer``,
:func:`zephyr_tutorial.dpo.train_dpo` a ``DPOTrainer``, and both hand it to
:func:`run_trainer`, which resumes from the last checkpoint, trains, saves the
model (or adapter) and tokenizer to ``output_dir/final`` with the log history and
metrics, and returns a :class:`TrainingRun`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .models import latest_checkpoint
from .profiles import trains_on_gpu


def trainer_arguments(profile, run_dir) -> dict:
    """The ``TrainingArguments`` fields that TRL's SFT and DPO trainers both take from a profile.

    bf16 only on a GPU (CPUs compute it slowly); ``use_cpu`` whenever the profile does not train on a
    GPU, so a ``cpu``-profile run stays on the CPU even on a machine that has one.
    """
    on_gpu = trains_on_gpu(profile)
    train = profile.train
    return dict(
        output_dir=str(run_dir),
        max_steps=train.max_steps,
        num_train_epochs=train.num_train_epochs,
        per_device_train_batch_size=train.per_device_batch_size,
        per_device_eval_batch_size=train.per_device_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        activation_checkpointing=train.gradient_checkpointing,
        bf16=on_gpu and profile.model.dtype == "bfloat16",
        use_cpu=not on_gpu,
        warmup_steps=0.1,
        logging_steps=1,
        save_strategy="steps",
        save_steps=10,
        save_total_limit=2,
        report_to=[],
        seed=profile.seed,
        dataloader_num_workers=0,
    )


def stage_config(config_class, profile, recipe: dict, run_dir, defaults: dict, overrides: dict):
    """A TRL config: profile settings < stage ``defaults`` < the recipe's ``trainer`` section < ``overrides``.

    The recipe's ``output_dir`` gives way to ``run_dir``; with a ``model`` section its ``from_pretrained``
    arguments become ``model_init_kwargs`` (TRL then loads the model by name). Unknown keys raise
    ``ValueError`` naming the class.
    """
    settings: dict[str, Any] = trainer_arguments(profile, run_dir)
    settings.update(defaults)
    settings.update({k: v for k, v in (recipe or {}).get("trainer", {}).items() if k != "output_dir"})
    model_section = (recipe or {}).get("model")
    if model_section is not None:
        settings["model_init_kwargs"] = {
            "dtype": profile.model.dtype,
            **{k: v for k, v in model_section.items() if k != "model_name_or_path"},
        }
    settings.update(overrides)
    try:
        return config_class(**settings)
    except TypeError as error:
        raise ValueError(f"trainer settings: {error} (keys must be trl.{config_class.__name__} fields)") from None


def throughput_callback():
    """A ``TrainerCallback`` adding ``tokens_per_second`` (tokens since the previous log / wall time) to each record.

    Tokens are TRL's ``num_tokens`` counter: the non-padding tokens fed to the model.
    """
    from transformers import TrainerCallback

    class ThroughputCallback(TrainerCallback):
        def __init__(self):
            self.last = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            record = state.log_history[-1] if state.log_history else {}
            if "num_tokens" not in record:
                return
            now = time.perf_counter()
            if self.last is not None and now > self.last[0] and record["num_tokens"] > self.last[1]:
                record["tokens_per_second"] = (record["num_tokens"] - self.last[1]) / (now - self.last[0])
            self.last = (now, record["num_tokens"])

    return ThroughputCallback()


@dataclass
class TrainingRun:
    """What a training run leaves behind, the same for SFT and DPO."""

    trainer: Any
    adapter_dir: Path
    """``output_dir/final``: the LoRA adapter (or the whole model, for full fine-tuning) and the tokenizer."""
    history: list[dict] = field(default_factory=list)
    """The trainer's ``log_history``: one dict per logging step (``loss``, ``rewards/*``, ``learning_rate`` ...)."""
    metrics: dict = field(default_factory=dict)
    """``train_runtime``, ``train_loss`` ... of the run; a pipeline adds its held-out metrics."""
    resumed_from: Path | None = None

    @property
    def model(self):
        return self.trainer.model

    @property
    def tokenizer(self):
        return self.trainer.processing_class

    @property
    def steps(self) -> int:
        return self.trainer.state.global_step

    def training_metrics(self) -> list[dict]:
        """The training-step entries of the history (those with a ``loss``, no ``eval_*``), in step order."""
        return [entry for entry in self.history if "loss" in entry and not any(k.startswith("eval_") for k in entry)]

    def rank_report(self, stage: str) -> str:
        """One line per process: which rank of how many trained how many steps, under which distributed mode.

        Every rank prints it, so a launch log shows that all processes took part.
        """
        args = self.trainer.args
        return (
            f"[{stage}] rank {args.process_index}/{args.world_size} "
            f"({self.trainer.accelerator.distributed_type.value}): trained {self.steps} steps"
        )


def training_curves(run: TrainingRun) -> dict[str, list[float]]:
    """Per-step curves of a run of either stage: ``loss``, ``learning_rate``, ``tokens_per_second`` and, when
    logged, SFT's ``mean_token_accuracy`` and DPO's ``rewards/margins`` and ``rewards/accuracies``."""
    names = (
        "loss",
        "mean_token_accuracy",
        "learning_rate",
        "tokens_per_second",
        "rewards/margins",
        "rewards/accuracies",
    )
    entries = run.training_metrics()
    logged = [
        name
        for name in names
        if name in ("loss", "learning_rate", "tokens_per_second") or any(name in entry for entry in entries)
    ]
    curves: dict[str, list[float]] = {"step": [entry["step"] for entry in entries]}
    for name in logged:
        curves[name] = [float(entry.get(name, float("nan"))) for entry in entries]
    return curves


def keep_adapter_in_float32_on_cpu(model) -> None:
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


def run_trainer(trainer, *, resume: bool = True) -> TrainingRun:
    """Train ``trainer`` and save its result to ``output_dir/final``; return the :class:`TrainingRun`.

    With ``resume`` and a ``checkpoint-N`` in ``output_dir`` (a run that was interrupted, or one already
    finished), training continues from there: optimizer, scheduler, RNG and data position included. Under a
    multi-process launch every rank runs this; only the main process writes the tokenizer, ``log_history.json``
    and ``metrics.json`` (``save_model`` gathers sharded weights itself).
    """
    keep_adapter_in_float32_on_cpu(trainer.model)
    output_dir = Path(trainer.args.output_dir)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final_dir = output_dir / "final"
    trainer.save_model(str(final_dir))
    history = list(trainer.state.log_history)
    metrics = dict(result.metrics)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final_dir))
        (final_dir / "log_history.json").write_text(json.dumps(history, indent=1))
        (final_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return TrainingRun(
        trainer=trainer, adapter_dir=final_dir, history=history, metrics=metrics, resumed_from=checkpoint
    )


def save_metrics(run: TrainingRun, metrics: dict) -> None:
    """Add held-out ``metrics`` to the run and to ``final/metrics.json`` (main process only)."""
    run.metrics.update(metrics)
    if run.trainer.is_world_process_zero():
        (run.adapter_dir / "metrics.json").write_text(json.dumps(run.metrics, indent=1))
