"""Run profiles: hardware and scale, one set of numbers per kind of machine.

Notebooks never hard-code a model id, a step count or a dataset size; they read
them from the active profile, so the same cells run in minutes on a laptop CPU
(``cpu``), on free Colab's T4 (``t4``), on one 24 GB GPU (``gpu24``) or as the full
multi-GPU recipe (``full``)::

    from zephyr_tutorial.profiles import active_profile
    profile = active_profile()          # ZEPHYR_PROFILE=t4 overrides
    profile.train.max_steps, profile.model.id

A profile is split by what reads it: ``model`` (which weights, in which dtype, on
which device, and how a notebook compares before/after a stage), ``data`` (datasets
and caps), ``train`` (steps, batch, lengths), ``generation``, ``evaluation`` (judge
prompts, question sets), ``roles`` (the models that play the parts GPT-3.5/GPT-4 played
in the paper) and ``hardware`` (the card the numbers were sized for).
Hyperparameters (learning rates, DPO's beta, the LoRA rank) are not here: they live in
the training recipes (``zephyr_tutorial/recipes``), and each profile names its default
SFT and DPO recipe (``profile.sft_recipe``). :mod:`zephyr_tutorial.plan` prints what a
profile will do (sizes, memory, time) before anything runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace

PROFILE_ENV_VAR = "ZEPHYR_PROFILE"
PROFILE_ALIASES = {"colab": "gpu24"}
"""Old names that still work: ``colab`` was the one-GPU profile before free Colab's T4 got its own."""

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-v0.1"
ULTRACHAT_200K = "HuggingFaceH4/ultrachat_200k"
ULTRAFEEDBACK_BINARIZED = "HuggingFaceH4/ultrafeedback_binarized"
ULTRACHAT_200K_TRAIN_ROWS = 207_865
"""Rows of ultrachat_200k's ``train_sft`` split: what one epoch of the full recipe covers."""
ULTRAFEEDBACK_TRAIN_PREFS_ROWS = 61_135
"""Rows of ultrafeedback_binarized's ``train_prefs`` split (the relabelled release): one epoch of full DPO."""

QWEN2_5_72B_INSTRUCT = "Qwen/Qwen2.5-72B-Instruct"
QWEN2_5_14B_INSTRUCT = "Qwen/Qwen2.5-14B-Instruct"
QWEN2_5_7B_INSTRUCT = "Qwen/Qwen2.5-7B-Instruct"
QWEN2_5_3B_INSTRUCT = "Qwen/Qwen2.5-3B-Instruct"
SMOLLM2_1_7B_INSTRUCT = "HuggingFaceTB/SmolLM2-1.7B-Instruct"

DISABLE_ADAPTER = "disable_adapter"
"""Before/after a stage on the one 4-bit model: the "before" answers come from it with the LoRA adapter switched
off (``with model.disable_adapter():``), so no second copy of the base weights is ever loaded. On the ``cpu``
profile too: bitsandbytes 0.50 decodes the 135M model in 4-bit faster than a float32 copy on 2 cores (40 prompts x 96
new tokens: 23.5 s against 29.6 s with the SFT adapter, 19.2 s against 24.5 s without), and no copy has to load."""
ANSWERS_BEFORE_TRAINING = "answers_before_training"
"""Before/after for full fine-tuning, which has no adapter to switch off: the base answers before training starts."""
BEFORE_AFTER_MODES = (DISABLE_ADAPTER, ANSWERS_BEFORE_TRAINING)


@dataclass(frozen=True)
class ModelSpec:
    """Which weights, stored how, computing where, and how the notebooks compare the model before/after a stage."""

    id: str
    """``EMBEDDED_MODEL`` (offline SmolLM2-135M-Instruct) or a hub id / local path."""
    dtype: str
    """The compute dtype: ``float32`` on a CPU, ``float16`` below compute capability 8.0, else ``bfloat16``."""
    load_in_4bit: bool
    device: str
    before_after: str = DISABLE_ADAPTER
    """One of :data:`BEFORE_AFTER_MODES`."""


@dataclass(frozen=True)
class DataSpec:
    sft_dataset: str
    """``"local"`` (the data shipped in ``data/``) or a hub id."""
    max_train_samples: int | None
    max_eval_samples: int | None
    preference_dataset: str = "local"
    """``"local"`` (notebook 04's pairs, else ``data/preferences``) or a hub id with ``train_prefs``/``test_prefs``."""


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int
    """Optimizer steps of one training run: always a real count, :func:`steps_for` of the data (never ``-1``)."""
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
    pairwise_prompt: str = "mt_bench"
    """A key of :data:`zephyr_tutorial.evaluation.prompts.PAIRWISE_PROMPTS`: ours on a CPU, the benchmark's own
    (read from its package at run time) on a GPU, where the score is meant to sit beside the published one."""
    single_prompt: str = "mt_bench"
    """A key of :data:`zephyr_tutorial.evaluation.prompts.SINGLE_PROMPTS`."""
    question_set: str = "local"
    """``"local"`` (``data/``) or ``"official"``: MT-Bench's 80 questions and AlpacaEval's instructions as the
    benchmarks ship them (:mod:`zephyr_tutorial.evaluation.official`)."""


@dataclass(frozen=True)
class RolesSpec:
    """The models that play the paper's GPT-3.5 and GPT-4 parts (:mod:`zephyr_tutorial.roles` loads them).

    The paper's teacher (UltraChat) was GPT-3.5-turbo, its judges (UltraFeedback's ratings, MT-Bench, AlpacaEval)
    GPT-4. A base model cannot stand in: it has no chat template and does not follow a judging instruction. On a GPU
    the defaults are open instruct models that need no licence acceptance, in 4-bit so that they fit beside the
    trained model; ``ZEPHYR_<ROLE>_MODEL`` / ``ZEPHYR_<ROLE>_BASE_URL`` put any OpenAI-compatible endpoint there
    instead (:func:`role_choice`). On a CPU every role is the embedded model.
    """

    teacher_model: str
    """Writes the synthetic dialogues of notebook 02."""
    judge_model: str
    """Judges in notebooks 01, 04 and 06."""
    pool_models: tuple[str, ...]
    """Answer beside the SFT model in notebook 04's completion pool (empty: the cpu pool of embedded policies)."""
    roles_in_4bit: bool


@dataclass(frozen=True)
class HardwareSpec:
    gpu_card: str | None
    """The card the numbers were sized for (a key of :data:`zephyr_tutorial.memory.GPU_CARDS`), ``None`` on CPU."""
    num_gpus: int = 1


PARTS = {
    "model": ModelSpec,
    "data": DataSpec,
    "train": TrainSpec,
    "generation": GenerationSpec,
    "evaluation": EvaluationSpec,
    "roles": RolesSpec,
    "hardware": HardwareSpec,
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
    roles: RolesSpec
    hardware: HardwareSpec
    sft_recipe: str
    """Name of the shipped SFT recipe this profile trains with (``zephyr-tutorial recipes`` lists them)."""
    dpo_recipe: str
    seed: int = 42

    @property
    def uses_embedded_model(self) -> bool:
        return self.model.id == EMBEDDED_MODEL

    @property
    def needs_hub(self) -> bool:
        """Whether anything this profile loads comes from the Hugging Face Hub (the cpu profile: nothing)."""
        roles = (self.roles.teacher_model, self.roles.judge_model, *self.roles.pool_models)
        datasets = (self.data.sft_dataset, self.data.preference_dataset)
        return (
            not self.uses_embedded_model
            or any(r != EMBEDDED_MODEL for r in roles)
            or any(d != "local" for d in datasets)
        )

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


def steps_for(rows: int, per_device_batch_size: int, accumulation: int, epochs: float = 1.0, gpus: int = 1) -> int:
    """Optimizer steps to see ``rows`` examples ``epochs`` times: ``ceil(rows * epochs / global batch)``."""
    if min(rows, per_device_batch_size, accumulation, gpus) < 1 or epochs <= 0:
        raise ValueError("rows, batch size, accumulation steps and GPUs must be positive, and epochs above 0")
    return math.ceil(rows * epochs / (per_device_batch_size * accumulation * gpus))


def _gpu_train(rows: int, batch: int, accumulation: int, sft_len: int, dpo_len: int, gpus: int = 1) -> TrainSpec:
    return TrainSpec(steps_for(rows, batch, accumulation, 1.0, gpus), 1.0, batch, accumulation, sft_len, dpo_len, True)


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
        roles=RolesSpec(EMBEDDED_MODEL, EMBEDDED_MODEL, (), roles_in_4bit=False),
        hardware=HardwareSpec(gpu_card=None),
        sft_recipe="sft_cpu",
        dpo_recipe="dpo_cpu",
    ),
    "t4": Profile(
        name="t4",
        description="Free Colab's T4 (15 GB, compute capability 7.5: float16): Mistral-7B in 4-bit NF4 with QLoRA, "
        "data and steps sized for under an hour per notebook.",
        model=ModelSpec(id=MISTRAL_7B, dtype="float16", load_in_4bit=True, device="cuda"),
        data=DataSpec(ULTRACHAT_200K, 320, 64, preference_dataset=ULTRAFEEDBACK_BINARIZED),
        train=_gpu_train(320, 2, 4, sft_len=1024, dpo_len=768),
        generation=GenerationSpec(max_new_tokens=256, batch_size=8, num_prompts=48),
        evaluation=EvaluationSpec(80, "alpaca_eval_official", "mt_bench_official", "official"),
        roles=RolesSpec(
            QWEN2_5_7B_INSTRUCT, QWEN2_5_7B_INSTRUCT, (QWEN2_5_3B_INSTRUCT, SMOLLM2_1_7B_INSTRUCT), roles_in_4bit=True
        ),
        hardware=HardwareSpec(gpu_card="T4 16 GB"),
        sft_recipe="sft_single_gpu",
        dpo_recipe="dpo_single_gpu",
    ),
    "gpu24": Profile(
        name="gpu24",
        description="One 24 GB GPU with bfloat16 (L4, A10G, RTX 3090/4090, or larger): Mistral-7B in 4-bit NF4 "
        "with QLoRA, data subsets.",
        model=ModelSpec(id=MISTRAL_7B, dtype="bfloat16", load_in_4bit=True, device="cuda"),
        data=DataSpec(ULTRACHAT_200K, 1200, 200, preference_dataset=ULTRAFEEDBACK_BINARIZED),
        train=_gpu_train(1200, 4, 2, sft_len=2048, dpo_len=1024),
        generation=GenerationSpec(max_new_tokens=512, batch_size=8, num_prompts=200),
        evaluation=EvaluationSpec(200, "alpaca_eval_official", "mt_bench_official", "official"),
        roles=RolesSpec(
            QWEN2_5_7B_INSTRUCT,
            QWEN2_5_14B_INSTRUCT,
            (QWEN2_5_7B_INSTRUCT, QWEN2_5_3B_INSTRUCT, SMOLLM2_1_7B_INSTRUCT),
            roles_in_4bit=True,
        ),
        hardware=HardwareSpec(gpu_card="L4 24 GB"),
        sft_recipe="sft_single_gpu",
        dpo_recipe="dpo_single_gpu",
    ),
    "full": Profile(
        name="full",
        description="The zephyr-7b-beta recipe on 8x80 GB GPUs: bf16 full fine-tuning with DeepSpeed ZeRO-3.",
        model=ModelSpec(
            id=MISTRAL_7B, dtype="bfloat16", load_in_4bit=False, device="cuda", before_after=ANSWERS_BEFORE_TRAINING
        ),
        data=DataSpec(ULTRACHAT_200K, None, None, preference_dataset=ULTRAFEEDBACK_BINARIZED),
        train=_gpu_train(ULTRACHAT_200K_TRAIN_ROWS, 8, 2, sft_len=2048, dpo_len=1024, gpus=8),
        generation=GenerationSpec(max_new_tokens=1024, batch_size=64, num_prompts=10_000, tensor_parallel_size=8),
        evaluation=EvaluationSpec(5000, "alpaca_eval_official", "mt_bench_official", "official"),
        roles=RolesSpec(
            QWEN2_5_72B_INSTRUCT,
            QWEN2_5_72B_INSTRUCT,
            (QWEN2_5_14B_INSTRUCT, QWEN2_5_7B_INSTRUCT, QWEN2_5_3B_INSTRUCT, SMOLLM2_1_7B_INSTRUCT),
            roles_in_4bit=False,
        ),
        hardware=HardwareSpec(gpu_card="A100 80 GB", num_gpus=8),
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


def profile_names() -> list[str]:
    """Every name :func:`get_profile` accepts: the profiles and their old names (:data:`PROFILE_ALIASES`)."""
    return [*PROFILES, *PROFILE_ALIASES]


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (old names in :data:`PROFILE_ALIASES` too); a clear error lists the known ones."""
    try:
        return PROFILES[PROFILE_ALIASES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(profile_names())}") from None


@dataclass(frozen=True)
class VisibleGPU:
    """The first CUDA device, as PyTorch sees it."""

    name: str
    memory_gib: float
    compute_capability: tuple[int, int]
    count: int = 1

    def __str__(self) -> str:
        major, minor = self.compute_capability
        return f"{self.name} ({self.memory_gib:.1f} GiB, compute capability {major}.{minor})"


def visible_gpu() -> VisibleGPU | None:
    """The first visible CUDA GPU, or ``None`` without one."""
    if not _cuda_available():
        return None
    import torch

    properties = torch.cuda.get_device_properties(0)
    return VisibleGPU(
        properties.name,
        properties.total_memory / 2**30,
        (properties.major, properties.minor),
        torch.cuda.device_count(),
    )


BFLOAT16_CAPABILITY = (8, 0)
"""Ampere and later compute bfloat16 natively; older cards (T4, V100) emulate it slowly, so they train in float16."""
MEMORY_TOLERANCE_GIB = 0.6
"""Cards report a little less than their class (an L4 or A10G 22.5 GiB, a 3090 24.0): a card this close to a
profile's target still gets it."""


@dataclass(frozen=True)
class ProfileChoice:
    profile: Profile
    reason: str
    """Why this profile: the name asked for, ``$ZEPHYR_PROFILE``, or the GPU that was seen."""


def _choose_for(gpu: VisibleGPU | None) -> tuple[str, str]:
    """``(profile name, why)`` for ``gpu``: the single-GPU profile with the largest target card that ``gpu``
    matches in memory and dtype, else the smallest one (its plan then shows what does not fit)."""
    from .memory import GPU_CARDS

    if gpu is None:
        return "cpu", "no CUDA GPU is visible"
    bf16 = gpu.compute_capability >= BFLOAT16_CAPABILITY
    single = [p for p in PROFILES.values() if p.hardware.gpu_card and p.hardware.num_gpus == 1]
    single.sort(key=lambda p: GPU_CARDS[p.hardware.gpu_card].memory_gib)

    def missing(profile: Profile) -> list[str]:
        card = GPU_CARDS[profile.hardware.gpu_card]
        lacks = []
        if card.memory_gib > gpu.memory_gib + MEMORY_TOLERANCE_GIB:
            lacks.append(f"{card.memory_gib:.1f} GiB")
        if profile.model.dtype == "bfloat16" and not bf16:
            lacks.append("bfloat16 (compute capability 8.0 or later)")
        return lacks

    fitting = [p for p in single if not missing(p)]
    chosen = fitting[-1] if fitting else single[0]
    card = GPU_CARDS[chosen.hardware.gpu_card]
    if fitting:
        why = f"GPU {gpu} matches the {card.name} that {chosen.name!r} was sized for ({chosen.model.dtype})"
    else:
        why = f"GPU {gpu} is below the {card.name} of {chosen.name!r}, the smallest GPU profile: see its plan"
    larger = [p for p in single[single.index(chosen) + 1 :]]
    if larger:
        why += "; not " + ", ".join(f"{p.name!r} (needs {' and '.join(missing(p))})" for p in larger)
    return chosen.name, why


def choose_profile(name: str | None = None, *, check_hardware: bool = True) -> ProfileChoice:
    """The profile to use and why: ``name`` → ``$ZEPHYR_PROFILE`` → by the visible GPU (:func:`visible_gpu`).

    By the GPU: none gives ``cpu``; one with the memory and bfloat16 of a 24 GB card gives ``gpu24``; any
    other (free Colab's T4, a V100, a 16 GB card) ``t4``. ``full`` is never picked automatically: it needs a
    multi-GPU launch. With ``check_hardware`` a GPU profile without a visible GPU raises ``RuntimeError``;
    without, any profile loads (to print its plan on a laptop).
    """
    asked = name or os.environ.get(PROFILE_ENV_VAR)
    if asked:
        reason = f"asked for {asked!r}" if name else f"${PROFILE_ENV_VAR}={asked}"
        if asked in PROFILE_ALIASES:
            reason += f" (the old name of {PROFILE_ALIASES[asked]!r})"
        profile = get_profile(asked)
    else:
        chosen, reason = _choose_for(visible_gpu())
        profile = get_profile(chosen)
    if check_hardware and profile.model.device == "cuda" and not _cuda_available():
        raise RuntimeError(
            f"profile {profile.name!r} needs a CUDA GPU and none is visible; "
            f"unset {PROFILE_ENV_VAR} or set it to 'cpu' to run on this machine"
        )
    return ProfileChoice(profile, reason)


def active_profile(name: str | None = None) -> Profile:
    """The profile to use (:func:`choose_profile`; :func:`zephyr_tutorial.plan.describe_plan` says why)."""
    return choose_profile(name).profile


ROLE_NAMES = ("teacher", "judge", "pool")


@dataclass(frozen=True)
class RoleChoice:
    """Who plays a role: a local model (``base_url is None`` and no endpoint) or an OpenAI-compatible endpoint."""

    role: str
    models: tuple[str, ...]
    """One model id (teacher, judge) or several (the pool)."""
    endpoint: bool
    base_url: str | None
    """``None`` with ``endpoint``: api.openai.com."""
    source: str
    """Where the choice came from: the profile's field or the environment variables that set it."""


def role_choice(profile: Profile, role: str, environ=None) -> RoleChoice:
    """The model(s) of ``role`` (``teacher``, ``judge``, ``pool``) for ``profile``, environment first.

    ``ZEPHYR_<ROLE>_MODEL`` (comma-separated for the pool) names the endpoint's model(s) and
    ``ZEPHYR_<ROLE>_BASE_URL`` its address (default: OpenAI's API); the key is read from ``$OPENAI_API_KEY`` by the
    backend and is never part of a choice, a name or a printout. Without them: the profile's ``roles`` fields.
    """
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLE_NAMES)}")
    environ = os.environ if environ is None else environ
    model_var, url_var = f"ZEPHYR_{role.upper()}_MODEL", f"ZEPHYR_{role.upper()}_BASE_URL"
    named = tuple(m.strip() for m in environ.get(model_var, "").split(",") if m.strip())
    base_url = environ.get(url_var) or None
    if base_url and not named:
        raise ValueError(f"${url_var} is set but ${model_var} is not: name the endpoint's model (e.g. gpt-4-0613)")
    if named:
        if role != "pool" and len(named) > 1:
            raise ValueError(f"${model_var} names {len(named)} models; the {role} is one model")
        source = f"${model_var}" + (f" at ${url_var}" if base_url else " at api.openai.com")
        return RoleChoice(role, named, True, base_url, source)
    field = {"teacher": "teacher_model", "judge": "judge_model", "pool": "pool_models"}[role]
    value = getattr(profile.roles, field)
    models = tuple(value) if role == "pool" else (value,)
    return RoleChoice(role, models, False, None, f"profile {profile.name!r} (roles.{field})")
