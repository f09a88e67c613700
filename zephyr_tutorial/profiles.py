"""Run profiles: hardware and scale, one set of numbers per kind of machine.

Notebooks never hard-code a model id, a step count or a dataset size; they read
them from the active profile, so the same cells run in minutes on a laptop CPU
(``cpu``), on one consumer GPU with QLoRA (``colab``) or as the full multi-GPU
recipe (``full``)::

    from zephyr_tutorial.profiles import active_profile
    profile = active_profile()          # ZEPHYR_PROFILE=colab overrides
    profile.train.max_steps, profile.model.id

A profile is split by what reads it: ``model`` (which weights, in which dtype, on
which device), ``data`` (datasets and caps), ``train`` (steps, batch, lengths),
``generation`` and ``evaluation``. Hyperparameters (learning rates, DPO's beta, the
LoRA rank) are not here: they live in the training recipes (``zephyr_tutorial/recipes``),
and each profile names its default SFT and DPO recipe (``profile.sft_recipe``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

PROFILE_ENV_VAR = "ZEPHYR_PROFILE"

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-v0.1"
ULTRACHAT_200K = "HuggingFaceH4/ultrachat_200k"
ULTRAFEEDBACK_BINARIZED = "HuggingFaceH4/ultrafeedback_binarized"


@dataclass(frozen=True)
class ModelSpec:
    """Which weights, stored how, computing where."""

    id: str
    """``EMBEDDED_MODEL`` (offline SmolLM2-135M-Instruct) or a hub id / local path."""
    dtype: str
    load_in_4bit: bool
    device: str


@dataclass(frozen=True)
class DataSpec:
    sft_dataset: str
    """``"local"`` (the data shipped in ``data/``) or a hub id."""
    max_train_samples: int | None
    max_eval_samples: int | None


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int
    """Optimizer steps per training run; ``-1`` means "use num_train_epochs"."""
    num_train_epochs: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    sft_max_length: int
    dpo_max_length: int
    gradient_checkpointing: bool


@dataclass(frozen=True)
class GenerationSpec:
    max_new_tokens: int
    batch_size: int
    num_prompts: int
    tensor_parallel_size: int = 1
    """GPUs per vLLM engine (generation and judging). One for 7B models, which fit one GPU and run fastest
    unsharded; raise it for a judge or generator too large for one GPU (e.g. 4 or 8 for a 70B model)."""


@dataclass(frozen=True)
class EvaluationSpec:
    num_items: int


PARTS = {
    "model": ModelSpec,
    "data": DataSpec,
    "train": TrainSpec,
    "generation": GenerationSpec,
    "evaluation": EvaluationSpec,
}
"""The parts of a :class:`Profile`, by attribute name."""


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CPU smoke run and the real recipe, except the hyperparameters."""

    name: str
    description: str
    model: ModelSpec
    data: DataSpec
    train: TrainSpec
    generation: GenerationSpec
    evaluation: EvaluationSpec
    sft_recipe: str
    """Name of the shipped SFT recipe this profile trains with (``zephyr-tutorial recipes`` lists them)."""
    dpo_recipe: str
    seed: int = 42

    @property
    def uses_embedded_model(self) -> bool:
        return self.model.id == EMBEDDED_MODEL

    def with_overrides(self, **overrides) -> Profile:
        """A copy with some fields changed.

        A key is a field of one part (``max_steps=3``, ``load_in_4bit=False``: field names are unique across
        the parts), a part with a mapping of its fields (``model={"id": path}``) or a top-level field
        (``seed=1``). Unknown names raise ``TypeError``.
        """
        top, parts = {}, {name: {} for name in PARTS}
        owners = part_of_field()
        for key, value in overrides.items():
            if key in PARTS and isinstance(value, dict):
                parts[key].update(value)
            elif key in owners:
                parts[owners[key]][key] = value
            else:
                top[key] = value
        changed = {name: replace(getattr(self, name), **values) for name, values in parts.items() if values}
        return replace(self, **top, **changed)


def part_of_field() -> dict[str, str]:
    """``{field name: part name}`` over every part, e.g. ``{"max_steps": "train", "dtype": "model", ...}``."""
    return {f.name: part for part, cls in PARTS.items() for f in fields(cls)}


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        description="Smoke scale: embedded SmolLM2-135M-Instruct, tiny data, minutes on 2 CPU cores.",
        model=ModelSpec(id=EMBEDDED_MODEL, dtype="float32", load_in_4bit=True, device="cpu"),
        data=DataSpec(sft_dataset="local", max_train_samples=64, max_eval_samples=16),
        train=TrainSpec(
            max_steps=30,
            num_train_epochs=1.0,
            per_device_batch_size=4,
            gradient_accumulation_steps=1,
            sft_max_length=512,
            dpo_max_length=512,
            gradient_checkpointing=False,
        ),
        generation=GenerationSpec(max_new_tokens=64, batch_size=16, num_prompts=24),
        evaluation=EvaluationSpec(num_items=60),
        sft_recipe="sft_cpu",
        dpo_recipe="dpo_cpu",
    ),
    "colab": Profile(
        name="colab",
        description="One consumer GPU (16-24 GB): Mistral-7B in 4-bit NF4 with QLoRA, data subsets.",
        model=ModelSpec(id=MISTRAL_7B, dtype="bfloat16", load_in_4bit=True, device="cuda"),
        data=DataSpec(sft_dataset=ULTRACHAT_200K, max_train_samples=20_000, max_eval_samples=500),
        train=TrainSpec(
            max_steps=-1,
            num_train_epochs=1.0,
            per_device_batch_size=4,
            gradient_accumulation_steps=4,
            sft_max_length=2048,
            dpo_max_length=1024,
            gradient_checkpointing=True,
        ),
        generation=GenerationSpec(max_new_tokens=512, batch_size=32, num_prompts=500),
        evaluation=EvaluationSpec(num_items=1000),
        sft_recipe="sft_zephyr-7b-beta_qlora",
        dpo_recipe="dpo_zephyr-7b-beta_qlora",
    ),
    "full": Profile(
        name="full",
        description="The zephyr-7b-beta recipe on 8x80 GB GPUs: bf16 full fine-tuning with DeepSpeed ZeRO-3.",
        model=ModelSpec(id=MISTRAL_7B, dtype="bfloat16", load_in_4bit=False, device="cuda"),
        data=DataSpec(sft_dataset=ULTRACHAT_200K, max_train_samples=None, max_eval_samples=None),
        train=TrainSpec(
            max_steps=-1,
            num_train_epochs=1.0,
            per_device_batch_size=8,
            gradient_accumulation_steps=2,
            sft_max_length=2048,
            dpo_max_length=1024,
            gradient_checkpointing=True,
        ),
        generation=GenerationSpec(max_new_tokens=1024, batch_size=64, num_prompts=10_000),
        evaluation=EvaluationSpec(num_items=5000),
        sft_recipe="sft_zephyr-7b-beta_full",
        dpo_recipe="dpo_zephyr-7b-beta_full",
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
    return profile.model.device == "cuda" and _cuda_available()


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
    if profile.model.device == "cuda" and not _cuda_available():
        raise RuntimeError(
            f"profile {profile.name!r} needs a CUDA GPU and none is visible; "
            f"unset {PROFILE_ENV_VAR} or set it to 'cpu' to run on this machine"
        )
    return profile
