"""Training with TRL's SFTTrainer: config from the profile, throughput logging, resume, curves."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..chat_template import apply_zephyr_template
from ..runtime import output_dir
from .model import default_sft_adapter_dir, load_model_for_training


def sft_config(profile, run_dir: str | os.PathLike, *, packing: bool = False, **overrides):
    """TRL ``SFTConfig`` from the profile: assistant-only loss, optional best-fit-decreasing packing (padding-free)."""
    from trl import SFTConfig

    from ..profiles import trainer_arguments, trains_on_gpu

    settings: dict[str, Any] = trainer_arguments(profile, run_dir)
    settings.update(
        learning_rate=profile.sft_learning_rate,
        lr_scheduler_type="cosine",
        max_length=profile.sft_max_length,
        assistant_only_loss=True,
        packing=packing,
        packing_strategy="bfd",
        # paged 8-bit AdamW moves optimizer pages to CPU RAM on memory spikes; only meaningful on CUDA
        optim="paged_adamw_8bit" if trains_on_gpu(profile) and profile.load_in_4bit else "adamw_torch",
    )
    settings.update(overrides)
    return SFTConfig(**settings)


def throughput_callback():
    """A ``TrainerCallback`` adding ``tokens_per_second`` (tokens since the previous log / wall time) to each log record.

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


def train_sft(profile, train_dataset, eval_dataset=None, *, model=None, tokenizer=None, run_dir=None,
              adapter_dir=None, packing: bool = False, resume: bool = True, callbacks=(), **config_overrides):
    """Fine-tune with ``SFTTrainer``; return ``(trainer, adapter_path)``.

    ``model``/``tokenizer`` default to :func:`load_model_for_training` on the
    profile. Checkpoints go to ``run_dir`` (default ``outputs/sft/checkpoints``)
    every ``save_steps``; with ``resume=True`` an interrupted run continues from
    the last one (optimizer, scheduler, RNG and data position included). The
    final adapter and tokenizer are saved in ``adapter_dir``.
    """
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    if model is None:
        model, tokenizer = load_model_for_training(profile)
    run_dir = Path(run_dir or output_dir("sft", "checkpoints"))
    adapter_dir = Path(adapter_dir or default_sft_adapter_dir())
    config = sft_config(profile, run_dir, packing=packing, **config_overrides)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=apply_zephyr_template(tokenizer),
                         callbacks=[throughput_callback(), *callbacks])
    last_checkpoint = get_last_checkpoint(str(run_dir)) if resume and run_dir.is_dir() else None
    trainer.train(resume_from_checkpoint=last_checkpoint)
    trainer.save_model(str(adapter_dir))
    trainer.processing_class.save_pretrained(str(adapter_dir))
    return trainer, adapter_dir


def training_curves(trainer) -> dict[str, list[float]]:
    """Per-step ``loss``, ``mean_token_accuracy``, ``learning_rate`` and ``tokens_per_second`` from the log history."""
    names = ("loss", "mean_token_accuracy", "learning_rate", "tokens_per_second")
    curves: dict[str, list[float]] = {"step": [], **{name: [] for name in names}}
    for record in trainer.state.log_history:
        if "loss" in record:
            curves["step"].append(record["step"])
            for name in names:
                curves[name].append(float(record.get(name, float("nan"))))
    return curves
