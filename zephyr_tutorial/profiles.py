"""Run profiles: one set of numbers per kind of machine.

Notebooks never hard-code a model id, a step count or a dataset size; they read
them from the active profile, so the same cells run in minutes on a laptop CPU
(``cpu``), on one consumer GPU with QLoRA (``colab``) or as the full multi-GPU
recipe (``full``)::

    from zephyr_tutorial.profiles import active_profile
    profile = active_profile()          # ZEPHYR_PROFILE=colab overrides
    profile.max_steps, profile.model_id

The ``colab`` and ``full`` numbers follow the alignment-handbook recipe for
zephyr-7b-beta (SFT lr 2e-4 with QLoRA / 2e-5 full, DPO beta 0.01,
lr 5e-6 QLoRA / 5e-7 full, max length 2048 for SFT and 1024 for DPO).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

PROFILE_ENV_VAR = "ZEPHYR_PROFILE"

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-v0.1"
ULTRACHAT_200K = "HuggingFaceH4/ultrachat_200k"
ULTRAFEEDBACK_BINARIZED = "HuggingFaceH4/ultrafeedback_binarized"


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CPU smoke run and the real recipe."""

    name: str
    description: str
    model_id: str
    """``EMBEDDED_MODEL`` (offline SmolLM2-135M-Instruct) or a hub id / local path."""
    device: str
    dtype: str
    load_in_4bit: bool
    sft_dataset: str
    """``"local"`` (the data shipped in ``data/``) or a hub id."""
    preference_dataset: str
    max_train_samples: int | None
    max_eval_samples: int | None
    max_steps: int
    """Optimizer steps per training run; ``-1`` means "use num_train_epochs"."""
    num_train_epochs: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    sft_learning_rate: float
    dpo_learning_rate: float
    dpo_beta: float
    sft_max_length: int
    dpo_max_length: int
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    gradient_checkpointing: bool
    max_new_tokens: int
    generation_batch_size: int
    num_generation_prompts: int
    num_eval_items: int
    seed: int = 42
    tensor_parallel_size: int = 1
    """GPUs per vLLM engine (generation and judging). One for 7B models, which fit one GPU and run fastest
    unsharded; raise it for a judge or generator too large for one GPU (e.g. 4 or 8 for a 70B model)."""
    extra: dict = field(default_factory=dict)

    @property
    def uses_embedded_model(self) -> bool:
        return self.model_id == EMBEDDED_MODEL

    def with_overrides(self, **overrides) -> "Profile":
        """A copy with some fields changed; unknown names raise ``TypeError``."""
        return replace(self, **overrides)


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        description="Smoke scale: embedded SmolLM2-135M-Instruct, tiny data, minutes on 2 CPU cores.",
        model_id=EMBEDDED_MODEL,
        device="cpu",
        dtype="float32",
        load_in_4bit=True,
        sft_dataset="local",
        preference_dataset="local",
        max_train_samples=64,
        max_eval_samples=16,
        max_steps=30,
        num_train_epochs=1.0,
        per_device_batch_size=4,
        gradient_accumulation_steps=1,
        sft_learning_rate=2e-4,
        dpo_learning_rate=5e-5,
        dpo_beta=0.1,
        sft_max_length=512,
        dpo_max_length=512,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        gradient_checkpointing=False,
        max_new_tokens=64,
        generation_batch_size=16,
        num_generation_prompts=24,
        num_eval_items=60,
    ),
    "colab": Profile(
        name="colab",
        description="One consumer GPU (16-24 GB): Mistral-7B in 4-bit NF4 with QLoRA, data subsets.",
        model_id=MISTRAL_7B,
        device="cuda",
        dtype="bfloat16",
        load_in_4bit=True,
        sft_dataset=ULTRACHAT_200K,
        preference_dataset=ULTRAFEEDBACK_BINARIZED,
        max_train_samples=20_000,
        max_eval_samples=500,
        max_steps=-1,
        num_train_epochs=1.0,
        per_device_batch_size=4,
        gradient_accumulation_steps=4,
        sft_learning_rate=2e-4,
        dpo_learning_rate=5e-6,
        dpo_beta=0.01,
        sft_max_length=2048,
        dpo_max_length=1024,
        lora_r=16,
        lora_alpha=16,
        lora_dropout=0.05,
        gradient_checkpointing=True,
        max_new_tokens=512,
        generation_batch_size=32,
        num_generation_prompts=500,
        num_eval_items=1000,
    ),
    "full": Profile(
        name="full",
        description="The zephyr-7b-beta recipe on 8x80 GB GPUs: bf16 full fine-tuning with DeepSpeed ZeRO-3.",
        model_id=MISTRAL_7B,
        device="cuda",
        dtype="bfloat16",
        load_in_4bit=False,
        sft_dataset=ULTRACHAT_200K,
        preference_dataset=ULTRAFEEDBACK_BINARIZED,
        max_train_samples=None,
        max_eval_samples=None,
        max_steps=-1,
        num_train_epochs=1.0,
        per_device_batch_size=8,
        gradient_accumulation_steps=2,
        sft_learning_rate=2e-5,
        dpo_learning_rate=5e-7,
        dpo_beta=0.01,
        sft_max_length=2048,
        dpo_max_length=1024,
        lora_r=0,
        lora_alpha=0,
        lora_dropout=0.0,
        gradient_checkpointing=True,
        max_new_tokens=1024,
        generation_batch_size=64,
        num_generation_prompts=10_000,
        num_eval_items=5000,
    ),
}


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core requirement
        return False
    return torch.cuda.is_available()


def trains_on_gpu(profile: Profile) -> bool:
    """Whether a trainer built from ``profile`` uses the GPU: the profile asks for CUDA and one is visible."""
    return profile.device == "cuda" and _cuda_available()


def trainer_arguments(profile: Profile, run_dir) -> dict:
    """The ``TrainingArguments`` fields that TRL's SFT and DPO trainers both take from a profile.

    bf16 only on a GPU (CPUs compute it slowly); ``use_cpu`` whenever the profile does not train on a
    GPU, so a ``cpu``-profile run stays on the CPU even on a machine that has one.
    """
    on_gpu = trains_on_gpu(profile)
    return dict(
        output_dir=str(run_dir),
        max_steps=profile.max_steps,
        num_train_epochs=profile.num_train_epochs,
        per_device_train_batch_size=profile.per_device_batch_size,
        per_device_eval_batch_size=profile.per_device_batch_size,
        gradient_accumulation_steps=profile.gradient_accumulation_steps,
        activation_checkpointing=profile.gradient_checkpointing,
        bf16=on_gpu and profile.dtype == "bfloat16",
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


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a clear error lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def active_profile(name: str | None = None) -> Profile:
    """The profile to use: ``name`` → ``$ZEPHYR_PROFILE`` → ``colab`` with CUDA, ``cpu`` without.

    ``full`` is never picked automatically: it needs a multi-GPU launch.
    """
    chosen = name or os.environ.get(PROFILE_ENV_VAR) or ("colab" if _cuda_available() else "cpu")
    profile = get_profile(chosen)
    if profile.device == "cuda" and not _cuda_available():
        raise RuntimeError(
            f"profile {profile.name!r} needs a CUDA GPU and none is visible; "
            f"unset {PROFILE_ENV_VAR} or set it to 'cpu' to run on this machine"
        )
    return profile
