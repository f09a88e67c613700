"""Model loading for SFT: 4-bit NF4 base, k-bit preparation, LoRA on every projection, Zephyr template."""

from __future__ import annotations

from pathlib import Path

from ..chat_template import apply_zephyr_template
from ..runtime import output_dir

LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def default_sft_adapter_dir() -> Path:
    """Where the SFT LoRA adapter of the active run is saved (``outputs/sft/adapter``)."""
    return output_dir("sft", "adapter")


def nf4_quantization_config(compute_dtype: str = "float32", *, double_quant: bool = True):
    """4-bit NF4 storage for the frozen base weights.

    Defaults and why: NF4 (not FP4) because its 16 levels are quantiles of a
    normal distribution, which is how pretrained weights are distributed;
    ``double_quant=True`` because quantizing the per-block (64 weights) fp32
    scales to 8 bit saves about 0.37 bit per parameter (~0.3 GB on a 7B model)
    at no measurable quality cost (QLoRA paper, Dettmers et al. 2023);
    ``compute_dtype`` is what the weights are de-quantized to for each matmul:
    bfloat16 on GPUs, float32 on CPU (where bfloat16 matmuls are slow or missing).
    """
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


def lora_config(profile, target_modules=LORA_TARGET_MODULES):
    """LoRA on every attention and MLP projection (QLoRA found adapters on all linear layers are needed to match full FT)."""
    from peft import LoraConfig

    return LoraConfig(
        r=profile.lora_r,
        lora_alpha=profile.lora_alpha,
        lora_dropout=profile.lora_dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _base_model_source(profile) -> tuple[str, dict]:
    import torch

    if profile.uses_embedded_model:
        from ..models import resolve_embedded_model

        return str(resolve_embedded_model()), {}
    device_map = {"": torch.cuda.current_device()} if torch.cuda.is_available() else None
    return profile.model_id, {"device_map": device_map}


def load_zephyr_tokenizer(profile):
    """The profile's tokenizer with the Zephyr chat template (and EOS as pad token when it has none)."""
    from transformers import AutoTokenizer

    return apply_zephyr_template(AutoTokenizer.from_pretrained(_base_model_source(profile)[0]))


def _cached_nf4_embedded_model(dtype: str, double_quant: bool):
    """The embedded model quantized to NF4 once and saved: quantizing 135M weights on CPU takes about a minute,
    loading the saved 4-bit checkpoint a few seconds."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from ..models import cache_dir, resolve_embedded_model

    target = cache_dir() / f"SmolLM2-135M-Instruct-nf4{'-dq' if double_quant else ''}-{dtype}"
    if not (target / ".complete").is_file():
        model = AutoModelForCausalLM.from_pretrained(
            resolve_embedded_model(), dtype=getattr(torch, dtype),
            quantization_config=nf4_quantization_config(dtype, double_quant=double_quant),
        )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging)
        (staging / ".complete").write_text("NF4 checkpoint of the embedded model\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return AutoModelForCausalLM.from_pretrained(target, dtype=getattr(torch, dtype))


def load_base_model(profile, *, load_in_4bit: bool | None = None, double_quant: bool = True, dtype: str | None = None):
    """``(model, tokenizer)``: the profile's base model (4-bit NF4 or plain ``dtype``), tokenizer with the Zephyr template."""
    import torch
    from transformers import AutoModelForCausalLM

    source, kwargs = _base_model_source(profile)
    dtype = dtype or profile.dtype
    load_in_4bit = profile.load_in_4bit if load_in_4bit is None else load_in_4bit
    tokenizer = load_zephyr_tokenizer(profile)
    if load_in_4bit and profile.uses_embedded_model:
        return _cached_nf4_embedded_model(dtype, double_quant), tokenizer
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_quantization_config(dtype, double_quant=double_quant)
    return AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), **kwargs), tokenizer


def load_model_for_training(profile, *, load_in_4bit: bool | None = None, double_quant: bool = True,
                            gradient_checkpointing: bool | None = None, model=None, tokenizer=None):
    """``(peft_model, tokenizer)`` ready for SFT: 4-bit base, k-bit preparation, LoRA adapters, Zephyr template.

    ``prepare_model_for_kbit_training`` casts the few non-quantized weights
    (norms, embeddings) to float32 for stable training and, with gradient
    checkpointing, makes the inputs require gradients so the frozen embedding
    layer does not cut the backward graph. Pass ``model``/``tokenizer`` to use
    an already-loaded model (tests use a tiny random one).
    """
    from peft import get_peft_model, prepare_model_for_kbit_training

    if model is None:
        model, tokenizer = load_base_model(profile, load_in_4bit=load_in_4bit, double_quant=double_quant)
    tokenizer = apply_zephyr_template(tokenizer)
    checkpointing = profile.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.config.use_cache = False  # the KV cache is useless in training and conflicts with checkpointing
    return get_peft_model(model, lora_config(profile)), tokenizer


def count_parameters(model) -> dict[str, int]:
    """Trainable and total parameters (4-bit weights counted as parameters, not as packed bytes)."""
    trainable, total = model.get_nb_trainable_parameters()
    return {"trainable": int(trainable), "total": int(total)}
