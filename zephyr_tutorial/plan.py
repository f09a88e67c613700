"""What a profile will do, before it does it: models, dtypes, data sizes, steps, memory against the card, time.

Every notebook prints its plan after choosing the profile, and again before a long cell::

    from zephyr_tutorial.plan import describe_plan
    plan = describe_plan()            # the active profile, and why it was chosen
    describe_plan(get_profile("t4"))  # any profile, on any machine: nothing is loaded
    describe_stage("03")              # one notebook's estimate, before its long cell

Memory comes from :mod:`zephyr_tutorial.memory` (training: :func:`~zephyr_tutorial.memory.estimate_training_memory`,
generation: :func:`~zephyr_tutorial.memory.estimate_inference_memory`) and is set against the card the profile was
sized for (:data:`zephyr_tutorial.memory.GPU_CARDS`). Times are **estimates, not measurements**: training is
``FLOPs / (peak * utilisation)`` and decoding ``bytes read per token / (bandwidth * efficiency)``, with the two
assumed factors below; token counts assume every row fills ``max_length``, so real runs are usually shorter.
``benchmarks/gpu_check.py`` measures the memory estimator against ``torch.cuda.max_memory_allocated`` on a real GPU.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from . import memory
from .memory import GIB, GPU_CARDS, estimate_inference_memory, estimate_training_memory
from .profiles import (
    EMBEDDED_MODEL,
    MISTRAL_7B,
    QWEN2_5_3B_INSTRUCT,
    QWEN2_5_7B_INSTRUCT,
    QWEN2_5_14B_INSTRUCT,
    QWEN2_5_72B_INSTRUCT,
    SMOLLM2_1_7B_INSTRUCT,
    ULTRACHAT_200K,
    ULTRACHAT_200K_TRAIN_ROWS,
    ULTRAFEEDBACK_BINARIZED,
    ULTRAFEEDBACK_TRAIN_PREFS_ROWS,
    Profile,
    choose_profile,
    role_choice,
)
from .recipes import find_recipe, read_recipe_file
from .recipes.budget import planned_steps

SHAPES = {
    EMBEDDED_MODEL: memory.SMOLLM2_135M,
    MISTRAL_7B: memory.MISTRAL_7B,
    SMOLLM2_1_7B_INSTRUCT: memory.SMOLLM2_1_7B,
    QWEN2_5_3B_INSTRUCT: memory.QWEN2_5_3B,
    QWEN2_5_7B_INSTRUCT: memory.QWEN2_5_7B,
    QWEN2_5_14B_INSTRUCT: memory.QWEN2_5_14B,
    QWEN2_5_72B_INSTRUCT: memory.QWEN2_5_72B,
}
"""The sizes of every model a profile names, for the estimates."""

TRAINING_UTILISATION = 0.25
"""Assumed share of the tensor-core peak a QLoRA step sustains: every matmul first de-quantizes its 4-bit weight,
and LoRA adds small, inefficient matmuls beside each large one. (Well-tuned 16-bit training reaches 0.4-0.5.)"""
DECODE_EFFICIENCY = 0.3
"""Assumed share of the memory bandwidth a ``generate`` step sustains with bitsandbytes' 4-bit kernels and
transformers' per-token Python loop."""
CUDA_OVERHEAD_GIB = 1.0
"""CUDA context, cuBLAS workspace and allocator slack, on top of the tensors the estimator counts."""
JUDGE_PROMPT_TOKENS = 512
"""The judging instructions around the answers (MT-Bench's and AlpacaEval's templates are 200-400 tokens)."""
JUDGE_REPLY_TOKENS = 256
"""A judge's explanation and verdict (the judges' default ``max_new_tokens``)."""
TEACHER_CONTEXT_TOKENS = 1024
"""The dialogue so far that the teacher reads before each new turn (notebook 02)."""


@dataclass
class StagePlan:
    """One notebook stage: what it loads, the estimated peak memory per GPU and the estimated time."""

    notebook: str
    what: str
    memory_gib: float | None
    """``None`` when the work runs behind an endpoint (no local memory)."""
    seconds: float | None
    """``None`` where no estimate is made (the cpu profile: see the README's measured times; endpoints)."""


@dataclass
class Plan:
    profile: Profile
    reason: str
    card: memory.GPUCard | None
    lines: list[tuple[str, str]] = field(default_factory=list)
    stages: list[StagePlan] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Whether every stage's estimate is within the card's memory (always true without a card)."""
        if self.card is None:
            return True
        return all(s.memory_gib is None or s.memory_gib <= self.card.memory_gib for s in self.stages)

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.lines)
        out = [f"profile {self.profile.name!r}: {self.profile.description}", f"  chosen because {self.reason}"]
        out += [f"  {label:<{width}}  {value}" for label, value in self.lines]
        where = f"the {self.card.name}'s {self.card.memory_gib:.1f} GiB" if self.card else "this machine's RAM"
        out.append(f"  estimated peak memory per {'GPU' if self.card else 'process'}, against {where}:")
        for stage in self.stages:
            if stage.memory_gib is None:
                amount = "endpoint"
            else:
                fits = (
                    ""
                    if self.card is None
                    else ("  fits" if stage.memory_gib <= self.card.memory_gib else "  DOES NOT FIT")
                )
                amount = f"{stage.memory_gib:5.1f} GiB{fits}"
            time = f"   about {format_duration(stage.seconds)}" if stage.seconds is not None else ""
            out.append(f"    {stage.notebook}  {stage.what:<46} {amount}{time}")
        if self.card is not None:
            out.append(
                f"  times are estimates, upper bounds with every row at max_length: {TRAINING_UTILISATION:.0%} of the "
                f"card's {self.card.tensor_tflops:g} TFLOPS in training, {DECODE_EFFICIENCY:.0%} of its "
                f"{self.card.bandwidth_gbs:g} GB/s in decoding (assumed);\n  weights download on first use. "
                "Untested on a GPU until benchmarks/gpu_check.py has run there (README)"
            )
        else:
            out.append("  times: minutes per notebook on 2 CPU cores (the README lists the measured ones)")
        return "\n".join(out)


def format_duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def shape_of(model_id: str) -> memory.ModelShape:
    try:
        return SHAPES[model_id]
    except KeyError:
        raise ValueError(f"no size known for {model_id!r}: add its ModelShape to zephyr_tutorial.plan.SHAPES") from None


def _compute_bytes(profile: Profile) -> int:
    return 4 if profile.model.dtype == "float32" else 2


def training_tokens(profile: Profile, stage: str, steps: int | None = None) -> int:
    """Tokens of one training run at most: steps (default ``profile.train.max_steps``) x global batch x max_length
    (DPO: chosen and rejected)."""
    train = profile.train
    steps = train.max_steps if steps is None else steps
    sequences = steps * train.per_device_batch_size * train.gradient_accumulation_steps
    sequences *= profile.hardware.num_gpus
    if stage == "sft":
        return sequences * train.sft_max_length
    return 2 * sequences * train.dpo_max_length


def training_seconds(profile: Profile, stage: str, card: memory.GPUCard, steps: int | None = None) -> float:
    """``FLOPs / (GPUs * peak * utilisation)``. Per token: forward ``2N``, the recomputed forward of activation
    checkpointing ``2N``, backward through the activations ``2N`` (the frozen base needs no weight gradients;
    full fine-tuning adds ``2N`` for them); DPO adds the reference forward, ``2N``."""
    shape = shape_of(profile.model.id)
    per_token = 6 if profile.model.load_in_4bit else 8
    per_token += 0 if profile.train.gradient_checkpointing else -2
    per_token += 2 if stage == "dpo" else 0
    flops = per_token * shape.parameters * training_tokens(profile, stage, steps)
    return flops / (profile.hardware.num_gpus * card.tensor_tflops * 1e12 * TRAINING_UTILISATION)


def training_memory_gib(profile: Profile, stage: str) -> float:
    """Estimated peak per GPU of one training step; ZeRO-3 shards weights, gradients and optimizer over the GPUs."""
    train = profile.train
    length = train.sft_max_length if stage == "sft" else train.dpo_max_length
    batch = train.per_device_batch_size * (1 if stage == "sft" else 2)
    estimate = estimate_training_memory(
        shape_of(profile.model.id),
        "qlora" if profile.model.load_in_4bit else "full",
        seq_len=length,
        batch_size=batch,
        gradient_checkpointing=train.gradient_checkpointing,
        compute_bytes=_compute_bytes(profile),
        overhead_gib=CUDA_OVERHEAD_GIB if profile.hardware.gpu_card else 0.0,
    )
    sharded = estimate.weights + estimate.gradients + estimate.optimizer
    per_gpu = estimate.total - sharded + sharded / profile.hardware.num_gpus
    return per_gpu / GIB


def _weights_bytes(model_id: str, in_4bit: bool, compute_bytes: int) -> float:
    return estimate_inference_memory(
        shape_of(model_id), seq_len=0, batch_size=0, load_in_4bit=in_4bit, compute_bytes=compute_bytes
    ).weights


def generation_gib(model_id: str, profile: Profile, seq_len: int, in_4bit: bool) -> float:
    """One model generating ``generation.batch_size`` sequences of ``seq_len`` tokens."""
    estimate = estimate_inference_memory(
        shape_of(model_id),
        seq_len=seq_len,
        batch_size=profile.generation.batch_size,
        load_in_4bit=in_4bit,
        compute_bytes=_compute_bytes(profile),
    )
    return estimate.total / GIB / profile.generation.tensor_parallel_size


def decode_seconds(model_id: str, profile: Profile, sequences: int, in_4bit: bool, card: memory.GPUCard) -> float:
    """``sequences`` answers of ``max_new_tokens`` in batches: each step reads every weight once (bandwidth
    bound) or computes ``2N`` FLOPs per sequence of the batch (compute bound), whichever is slower."""
    batch = profile.generation.batch_size
    steps = math.ceil(sequences / batch) * profile.generation.max_new_tokens
    read = _weights_bytes(model_id, in_4bit, _compute_bytes(profile)) / (card.bandwidth_gbs * 1e9 * DECODE_EFFICIENCY)
    compute = batch * 2 * shape_of(model_id).parameters / (card.tensor_tflops * 1e12 * TRAINING_UTILISATION)
    return steps * max(read, compute) / profile.generation.tensor_parallel_size


def _role_stage(
    profile: Profile, card, notebook: str, role: str, sequences: int, seq_len: int, resident: list[str], what: str
) -> StagePlan:
    """A stage where ``role`` generates ``sequences`` answers, beside the ``resident`` local models."""
    choice = role_choice(profile, role)
    if choice.endpoint:
        return StagePlan(notebook, f"{what} (endpoint)", None, None)
    models = choice.models or (EMBEDDED_MODEL,)  # an empty pool is the cpu pool of embedded policies
    in_4bit = profile.roles.roles_in_4bit and models[0] != EMBEDDED_MODEL
    gib = sum(generation_gib(m, profile, seq_len, in_4bit) for m in models)
    gib += sum(_weights_bytes(m, profile.model.load_in_4bit, _compute_bytes(profile)) / GIB for m in resident)
    gib += CUDA_OVERHEAD_GIB if card else 0.0
    seconds = None if card is None else sum(decode_seconds(m, profile, sequences, in_4bit, card) for m in models)
    return StagePlan(notebook, what, gib, seconds)


WHOLE_DATASET_ROWS = {
    ULTRACHAT_200K: ULTRACHAT_200K_TRAIN_ROWS,
    ULTRAFEEDBACK_BINARIZED: ULTRAFEEDBACK_TRAIN_PREFS_ROWS,
}
"""Training rows of the hub datasets the GPU profiles read whole (``train_sft`` / ``train_prefs``)."""


@dataclass(frozen=True)
class StageBudget:
    """What one training stage trains, as its default recipe runs it (:func:`stage_budget`)."""

    profile: Profile
    """The profile with the recipe's ``profile_overrides`` applied."""
    steps: int | None
    """Optimizer steps; ``None`` for epochs over a dataset of unknown size."""
    epochs: float
    rows: int | None
    """Training rows counted: the profile's cap, else the whole hub dataset's published size, else unknown."""
    whole_dataset: bool
    """Whether ``rows`` is the whole dataset (no cap)."""

    @property
    def global_batch(self) -> int:
        train = self.profile.train
        return train.per_device_batch_size * train.gradient_accumulation_steps * self.profile.hardware.num_gpus


def stage_budget(profile: Profile, stage: str) -> StageBudget:
    """The :class:`StageBudget` of ``stage``: the default recipe's ``profile_overrides`` (``dpo_cpu``: 96 pairs of at
    most 160 tokens) and its trainer's ``max_steps`` or epochs. Epochs over a whole hub dataset (``full``) are counted
    over its published size."""
    # the file as written: the plan needs its budget only, not the trainer classes that check it (and import torch)
    written = read_recipe_file(find_recipe(profile.sft_recipe if stage == "sft" else profile.dpo_recipe))
    recipe = {key: dict(written.get(key) or {}) for key in ("profile_overrides", "trainer")}
    staged = profile.with_overrides(**recipe["profile_overrides"])
    epochs = recipe["trainer"].get("num_train_epochs", staged.train.num_train_epochs)
    dataset = staged.data.sft_dataset if stage == "sft" else staged.data.preference_dataset
    capped = staged.data.max_train_samples
    rows = capped or WHOLE_DATASET_ROWS.get(dataset)
    try:
        steps = planned_steps(profile, recipe, rows)
    except ValueError:  # epochs over every row of a dataset of unknown size
        return StageBudget(staged, None, epochs, None, True)
    budget = StageBudget(staged, steps, epochs, rows, not capped)
    if rows:  # the epochs the steps amount to (a step budget need not be a whole number of them)
        budget = StageBudget(staged, steps, steps * budget.global_batch / rows, rows, not capped)
    return budget


def _plural(count: float, noun: str) -> str:
    shown = f"{count:.3g}"
    return f"{shown} {noun}{'' if shown == '1' else 's'}"


def _training_line(stage: str, budget: StageBudget) -> str:
    train, gpus = budget.profile.train, budget.profile.hardware.num_gpus
    work = f"{budget.steps} steps" if budget.steps is not None else _plural(budget.epochs, "epoch")
    if budget.steps is None or not budget.rows:
        over = "all rows"
    elif budget.whole_dataset:
        over = f"all {budget.rows:,} rows ({_plural(budget.epochs, 'epoch')})"
    else:
        over = f"{budget.rows} rows ({_plural(budget.epochs, 'epoch')})"
    length = train.sft_max_length if stage == "sft" else train.dpo_max_length
    accumulation = f"{train.per_device_batch_size} x {train.gradient_accumulation_steps} accumulation"
    max_eval = budget.profile.data.max_eval_samples
    evaluated = max_eval if max_eval is not None else "all"
    return (
        f"{stage.upper()} {work} x global batch {budget.global_batch} ({accumulation}"
        f"{f' x {gpus} GPUs' if gpus > 1 else ''}) over {over}, {evaluated} eval rows, up to {length} tokens"
    )


def build_plan(profile: Profile, reason: str = "it was passed in") -> Plan:
    """The :class:`Plan` of ``profile``: nothing is loaded, so any profile's plan can be made on any machine."""
    card = GPU_CARDS[profile.hardware.gpu_card] if profile.hardware.gpu_card else None
    model, data, generation = profile.model, profile.data, profile.generation
    quantized = "4-bit NF4 weights" if model.load_in_4bit else "16-bit weights"
    plan = Plan(profile, reason, card)
    budgets = {stage: stage_budget(profile, stage) for stage in ("sft", "dpo")}
    gpus = f" x {profile.hardware.num_gpus}" if profile.hardware.num_gpus > 1 else ""
    plan.lines += [
        (
            "hardware",
            f"{card.name}{gpus}, compute capability {'.'.join(map(str, card.compute_capability))}" if card else "CPU",
        ),
        ("model", f"{model.id}, {quantized}, {model.dtype} compute, on {model.device}"),
        ("data", f"SFT {data.sft_dataset}, DPO {data.preference_dataset} (rows per stage: the training lines)"),
        *[("training" if stage == "sft" else "", _training_line(stage, budget)) for stage, budget in budgets.items()],
        ("recipes", f"{profile.sft_recipe}, {profile.dpo_recipe}"),
        ("before/after", model.before_after.replace("_", " ")),
        (
            "generation",
            f"{generation.num_prompts} prompts x up to {generation.max_new_tokens} new tokens, "
            f"batch {generation.batch_size}",
        ),
        (
            "evaluation",
            f"{profile.evaluation.num_items} items, prompts {profile.evaluation.pairwise_prompt} (pairwise) / "
            f"{profile.evaluation.single_prompt} (single), {profile.evaluation.question_set} questions",
        ),
    ]
    for role in ("teacher", "judge", "pool"):
        choice = role_choice(profile, role)
        in_4bit = " in 4-bit" if profile.roles.roles_in_4bit and not choice.endpoint else ""
        models = ", ".join(choice.models) or "the embedded policies of the cpu pool"
        plan.lines.append((role, f"{models}{in_4bit} ({choice.source})"))

    answer = generation.max_new_tokens
    policies = len(role_choice(profile, "pool").models) + 2  # the pool's models, the SFT model, the weak policy
    # (notebook, role, answers generated, tokens per sequence, local models resident beside it, what)
    generating = [
        ("01", "judge", 2 * profile.evaluation.num_items, JUDGE_PROMPT_TOKENS + 2 * answer + JUDGE_REPLY_TOKENS,
         [model.id], "judge, both orders, beside the base model"),
        ("02", "teacher", generation.num_prompts, TEACHER_CONTEXT_TOKENS + answer, [], "teacher, one turn per prompt"),
        ("04", "pool", generation.num_prompts, 256 + answer, [model.id], "pool, every model resident + SFT model"),
        ("04", "judge", generation.num_prompts, JUDGE_PROMPT_TOKENS + policies * answer + JUDGE_REPLY_TOKENS, [],
         "judge rates all answers to a prompt at once"),
    ]  # fmt: skip
    for notebook, role, sequences, seq_len, resident, what in generating:
        plan.stages.append(_role_stage(profile, card, notebook, role, sequences, seq_len, resident, what))
    for stage, notebook in (("sft", "03"), ("dpo", "05")):
        budget = budgets[stage]
        if budget.steps is None:  # the size of the whole dataset decides: no time without it
            seconds, what = None, f"{stage.upper()}: {_plural(budget.epochs, 'epoch')} over every row"
        else:
            seconds = training_seconds(budget.profile, stage, card, budget.steps) if card else None
            tokens = training_tokens(budget.profile, stage, budget.steps)
            what = f"{stage.upper()}: {budget.steps} steps, at most {tokens / 1e6:.2f}M tokens"
        plan.stages.append(StagePlan(notebook, what, training_memory_gib(budget.profile, stage), seconds))
    plan.stages.sort(key=lambda s: s.notebook)
    return plan


def describe_plan(profile: Profile | None = None, *, file=None) -> Plan:
    """Print the plan of ``profile`` (default: the active one, with why it was chosen) and return it.

    Without a profile the choice follows :func:`~zephyr_tutorial.profiles.choose_profile` but does not need the
    hardware, so ``ZEPHYR_PROFILE=t4`` prints the T4 plan on a laptop.
    """
    plan = build_plan(*_active_choice()) if profile is None else build_plan(profile)
    print(plan, file=file or sys.stdout)
    return plan


def describe_stage(notebook: str, profile: Profile | None = None, *, file=None) -> list[StagePlan]:
    """Print the estimates of one notebook's long cells (``"03"``: SFT training), to show before running them."""
    plan = build_plan(profile) if profile is not None else build_plan(*_active_choice())
    stages = [stage for stage in plan.stages if stage.notebook == notebook]
    if not stages:
        raise ValueError(
            f"no stage of notebook {notebook!r} in the plan; one of {sorted({s.notebook for s in plan.stages})}"
        )
    card = f" on the {plan.card.name} ({plan.card.memory_gib:.1f} GiB)" if plan.card else ""
    for stage in stages:
        memory = "endpoint" if stage.memory_gib is None else f"about {stage.memory_gib:.1f} GiB"
        time = f", about {format_duration(stage.seconds)} (estimate)" if stage.seconds is not None else ""
        print(f"{plan.profile.name}{card}: {stage.what}: {memory}{time}", file=file or sys.stdout)
    return stages


def _active_choice() -> tuple[Profile, str]:
    choice = choose_profile(check_hardware=False)
    return choice.profile, choice.reason


if __name__ == "__main__":  # python -m zephyr_tutorial.plan  (ZEPHYR_PROFILE=t4 for another profile's plan)
    describe_plan()
