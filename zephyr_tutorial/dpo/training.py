"""DPO training: a thin wrapper over TRL's ``DPOTrainer``, the sibling of :func:`zephyr_tutorial.sft.train_sft`.

The policy starts from the SFT adapter of notebook 03 on a 4-bit (NF4) base:
QLoRA. The reference model is the *same* base weights: TRL adds a frozen copy
of the SFT adapter named ``"ref"`` (a few MB) and switches to it for the
reference forward pass. Starting without SFT, a fresh adapter is trained and
the reference is the base model with the adapter disabled. Either way there is
no second copy of the model in memory (``benchmarks/dpo_reference_strategies.py``
measures what a copy would cost).
"""

from __future__ import annotations

import os

from ..models import load_adapter_model, load_base_model, lora_config, prepare_for_training
from ..training import TrainingRun, run_trainer, stage_config, throughput_callback


def dpo_config(profile, recipe: dict, run_dir: str | os.PathLike, **overrides):
    """``trl.DPOConfig``: profile settings, DPO defaults, the recipe's ``trainer`` section, then ``overrides``.

    Defaults: the profile's ``dpo_max_length``, a linear schedule; ``beta`` and the learning rate come from the
    recipe. Unknown keys raise ``ValueError`` naming them.
    """
    from trl import DPOConfig

    defaults = dict(max_length=profile.train.dpo_max_length, lr_scheduler_type="linear")
    return stage_config(DPOConfig, profile, recipe, run_dir, defaults, overrides)


def train_dpo(
    model,
    tokenizer,
    train_dataset,
    eval_dataset=None,
    *,
    args,
    peft_config=None,
    ref_model=None,
    quantization_config=None,
    resume: bool = True,
    callbacks=(),
) -> TrainingRun:
    """Train with TRL's ``DPOTrainer``; save the adapter (or model) and tokenizer to ``args.output_dir/final``.

    ``model`` is a PEFT model carrying the SFT adapter (trainable), a plain model together with
    ``peft_config`` for a fresh adapter, or a model name TRL loads (with ``quantization_config``).
    ``ref_model=None`` keeps a single copy of the weights (see the module docstring). With ``resume`` and a
    ``checkpoint-N`` in ``args.output_dir``, training continues from there. Same arguments and result as
    :func:`zephyr_tutorial.sft.train_sft`, plus the reference model.
    """
    if getattr(args, "precompute_ref_log_probs", False) and args.world_size > 1:
        # TRL precomputes on the main process and the other ranks open its dataset cache file, which for an
        # in-memory dataset lives in that process's own temporary folder: they fail with "Failed to open local
        # file". Under several processes each step computes the reference's log-probs instead (same numbers).
        print(f"[dpo] {args.world_size} processes: precompute_ref_log_probs turned off (per-process dataset caches)")
        args.precompute_ref_log_probs = False
    trainer = _dpo_trainer_class()(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        quantization_config=quantization_config,
        callbacks=[throughput_callback(), *callbacks],
    )
    return run_trainer(trainer, resume=resume)


def pair_lengths(dataset, max_length: int | None = None) -> list[int]:
    """:func:`~zephyr_tutorial.dpo.logprobs.pair_width` of every pair of a tokenized (TRL) preference dataset."""
    from .logprobs import pair_width

    columns = zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
    return [pair_width(prompt, chosen, rejected, max_length) for prompt, chosen, rejected in columns]


def _dpo_trainer_class():
    """TRL's ``DPOTrainer``, whose ``train_sampling_strategy="group_by_length"`` measures a pair by
    :func:`pair_lengths`: transformers' sampler looks for an ``input_ids`` column, which tokenized pairs lack."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import DPOTrainer

    class LengthGroupedDPOTrainer(DPOTrainer):
        def _get_train_sampler(self, train_dataset=None):
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if self.args.train_sampling_strategy != "group_by_length":
                return super()._get_train_sampler(train_dataset)
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(batch, lengths=pair_lengths(dataset, self.args.max_length))

        def _get_eval_sampler(self, eval_dataset):
            if self.args.train_sampling_strategy != "group_by_length" or eval_dataset is None:
                return super()._get_eval_sampler(eval_dataset)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return LengthGroupedSampler(
                self.args.eval_batch_size,
                lengths=pair_lengths(eval_dataset, self.args.max_length),
                generator=torch.Generator().manual_seed(seed),  # the same order at every evaluation, as transformers
            )

    return LengthGroupedDPOTrainer


def load_policy(profile, recipe: dict, sft_adapter: str | os.PathLike | None):
    """``(model, tokenizer, peft_config)`` to start DPO from.

    With an SFT adapter: the 4-bit base with that adapter loaded *trainable*
    (``peft_config=None``; TRL then adds the frozen ``"ref"`` copy). Without
    (the no-SFT ablation): the prepared 4-bit base and a fresh adapter, the recipe's ``lora``.
    """
    if sft_adapter is not None:
        model, tokenizer = load_adapter_model(sft_adapter, profile, trainable=True)
        return model, tokenizer, None
    model, tokenizer = load_base_model(profile)
    model = prepare_for_training(model, gradient_checkpointing=profile.train.gradient_checkpointing)
    return model, tokenizer, lora_config(recipe.get("lora"))


def load_adapter_state(model, checkpoint, adapter_name: str = "default") -> None:
    """Put the weights of the adapter saved in ``checkpoint`` (a ``checkpoint-N`` or ``final`` folder) into the
    adapter ``adapter_name`` of ``model``, in place; the other adapters (the frozen ``ref``) are untouched.

    One loaded policy can then be read at several checkpoints of its run (notebook 05 compares epoch 1 with epoch 3)
    without loading the base model again.
    """
    from pathlib import Path

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = Path(checkpoint) / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{checkpoint}: no adapter_model.safetensors (not a saved adapter)")
    result = set_peft_model_state_dict(model, load_file(str(weights)), adapter_name=adapter_name)
    unexpected = [key for key in getattr(result, "unexpected_keys", []) if "lora_" in key]
    if unexpected:
        raise ValueError(f"{checkpoint}: {len(unexpected)} adapter weights do not fit the model, e.g. {unexpected[0]}")
