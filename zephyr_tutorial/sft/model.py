"""The model SFT trains: the profile's base model (4-bit NF4 for QLoRA), prepared, with LoRA on every projection."""

from __future__ import annotations

from pathlib import Path

from ..chat_template import apply_zephyr_template
from ..models import load_base_model, lora_config, prepare_for_training
from ..recipes import default_run_dir


def default_sft_adapter_dir() -> Path:
    """Where the SFT adapter of the active run is saved: ``outputs/sft/run/final`` (``final`` of the SFT run folder)."""
    return default_run_dir("sft") / "final"


def load_model_for_training(
    profile,
    recipe: dict,
    *,
    load_in_4bit: bool | None = None,
    double_quant: bool = True,
    gradient_checkpointing: bool | None = None,
    model=None,
    tokenizer=None,
):
    """``(peft_model, tokenizer)`` ready for SFT: 4-bit base, k-bit preparation, the recipe's LoRA, Zephyr template.

    The adapter is the recipe's ``lora`` section (:func:`zephyr_tutorial.models.lora_config`); a recipe without
    one (``lora: null``, full fine-tuning) gives the prepared model itself. Pass ``model``/``tokenizer`` to use
    an already-loaded model (tests use a tiny random one).
    """
    from peft import get_peft_model

    if model is None:
        model, tokenizer = load_base_model(profile, load_in_4bit=load_in_4bit, double_quant=double_quant)
    checkpointing = profile.train.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    model = prepare_for_training(model, gradient_checkpointing=checkpointing)
    peft_config = lora_config(recipe.get("lora"))
    return (model if peft_config is None else get_peft_model(model, peft_config)), apply_zephyr_template(tokenizer)


def count_parameters(model) -> dict[str, int]:
    """Trainable and total parameters (4-bit weights counted as parameters, not as packed bytes)."""
    trainable, total = model.get_nb_trainable_parameters()
    return {"trainable": int(trainable), "total": int(total)}
