"""Training with TRL's SFTTrainer: the config from a profile and a recipe, and :func:`train_sft`."""

from __future__ import annotations

import os

from ..chat_template import apply_zephyr_template
from ..profiles import trains_on_gpu
from ..training import TrainingRun, run_trainer, stage_config, throughput_callback


def sft_config(profile, recipe: dict, run_dir: str | os.PathLike, **overrides):
    """``trl.SFTConfig``: profile settings, SFT defaults, the recipe's ``trainer`` section, then ``overrides``.

    Defaults: assistant-only loss, cosine schedule, the profile's ``sft_max_length``, the recipe's ``packing``
    (best-fit-decreasing, padding-free), paged 8-bit AdamW for QLoRA on a GPU (optimizer pages move to CPU RAM
    on memory spikes). The learning rate comes from the recipe.
    """
    from trl import SFTConfig

    defaults = dict(
        lr_scheduler_type="cosine",
        max_length=profile.train.sft_max_length,
        assistant_only_loss=True,
        packing=bool(recipe.get("packing", False)),
        packing_strategy="bfd",
        optim="paged_adamw_8bit" if trains_on_gpu(profile) and profile.model.load_in_4bit else "adamw_torch",
    )
    return stage_config(SFTConfig, profile, recipe, run_dir, defaults, overrides)


def train_sft(
    model,
    tokenizer,
    train_dataset,
    eval_dataset=None,
    *,
    args,
    peft_config=None,
    quantization_config=None,
    resume: bool = True,
    callbacks=(),
) -> TrainingRun:
    """Fine-tune with TRL's ``SFTTrainer``; save the adapter (or model) and tokenizer to ``args.output_dir/final``.

    ``model`` is a model (a PEFT model from :func:`~zephyr_tutorial.sft.load_model_for_training`, or a plain one
    with ``peft_config``) or a model name that TRL loads after the arguments exist (with ``quantization_config``),
    which is what DeepSpeed ZeRO-3 needs. Checkpoints go to ``args.output_dir`` every ``save_steps``; with
    ``resume=True`` an interrupted run continues from the last one. Same arguments and result as
    :func:`zephyr_tutorial.dpo.train_dpo`.
    """
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=apply_zephyr_template(tokenizer),
        peft_config=peft_config,
        quantization_config=quantization_config,
        callbacks=[throughput_callback(), *callbacks],
    )
    return run_trainer(trainer, resume=resume)
