"""Does the GPU path work? One script, one CUDA GPU, no model hub: PASS/FAIL/SKIP lines, in a few minutes.

It uses only the embedded SmolLM2-135M-Instruct and the data the package ships, with the code the GPU profiles run
(4-bit loading, the ``sft_single_gpu``/``dpo_single_gpu`` recipes, the trainers), at a size that takes seconds::

    python benchmarks/gpu_check.py            # exit 0: no FAIL; 1: a check failed; 2: no CUDA GPU

Checks, in order (each prints ``PASS``, ``FAIL`` or ``SKIP``, its figures and its seconds):

1. ``nf4_loading``: bitsandbytes quantizes the model to 4-bit NF4 on the GPU; its loss on shipped SFT rows is
   within 15% of the 16-bit model's;
2. ``qlora_sft_paged_optimizer``: a few QLoRA SFT steps with the paged AdamW of the recipe, the loss finite and the
   adapter changed;
3. ``dpo_adapter_disabled_reference``: a few DPO steps on a fresh adapter whose reference is the same 4-bit model
   with the adapter disabled (no second copy): the first loss is log 2, as policy and reference start equal;
4. ``autocast_float16`` and 5. ``autocast_bfloat16``: a 4-bit forward pass under autocast is finite and close to
   float32 (bfloat16 only where the GPU computes it natively, compute capability 8.0 or later);
6. ``memory_estimate``: ``zephyr_tutorial.memory``'s estimate of a QLoRA step against
   ``torch.cuda.max_memory_allocated`` (within a factor of 1.5 either way);
7. ``vllm_backend``: ``VLLMBackend`` answers a conversation (SKIP when vLLM is not installed).

Needs, beyond a CUDA build of PyTorch (what a CUDA PyTorch image such as ``pytorch/pytorch:*-cuda*`` or Colab has):
this package's dependencies, ``pip install -e .`` (transformers, trl, peft, bitsandbytes, accelerate, datasets,
pyyaml, tqdm, gguf for the embedded model), and optionally ``vllm`` (``pip install -e ".[gpu]"``) for the last check.
The embedded model is prepared once beforehand with ``zephyr-tutorial model`` (it comes from PyPI, not a model hub),
or is found at ``$ZEPHYR_TUTORIAL_MODEL``. Record the output, the date and the GPU in the README.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STEPS = 4
SEQ_LEN = 256
BATCH = 4
MEMORY_TOLERANCE = 1.5
"""The estimate passes when the measured peak is within this factor of it, either way."""
NF4_LOSS_TOLERANCE = 0.15


class Skip(Exception):
    """A check that does not apply on this machine (its reason is printed)."""


@dataclass
class Context:
    """What the checks share: the GPU profile, a scratch folder, and the compute dtype of this GPU."""

    work: Path
    dtype: str
    profile: object = None
    rows: list = field(default_factory=list)


def _gpu_profile(dtype: str):
    """The ``cpu`` profile's embedded model moved to the GPU at check size, with the GPU profiles' settings."""
    from zephyr_tutorial.profiles import DISABLE_ADAPTER, get_profile

    return get_profile("cpu").with_overrides(
        device="cuda",
        dtype=dtype,
        load_in_4bit=True,
        before_after=DISABLE_ADAPTER,
        gradient_checkpointing=True,
        max_steps=STEPS,
        per_device_batch_size=2,
        gradient_accumulation_steps=1,
        sft_max_length=SEQ_LEN,
        dpo_max_length=SEQ_LEN,
        max_train_samples=16,
        max_eval_samples=4,
    )


def _sft_batch(tokenizer, rows, device):
    texts = [tokenizer.apply_chat_template(row["messages"], tokenize=False) for row in rows]
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=SEQ_LEN).to(device)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch, labels


def check_nf4_loading(ctx: Context) -> str:
    import bitsandbytes as bnb
    import torch

    from zephyr_tutorial.models import load_causal_lm, resolve_embedded_model
    from zephyr_tutorial.runtime import data_dir
    from zephyr_tutorial.schemas import read_sft_rows

    source = str(resolve_embedded_model())
    ctx.rows = read_sft_rows(data_dir() / "sft" / "train_sft.jsonl", 8)
    losses = {}
    for quantized in (False, True):
        model, tokenizer = load_causal_lm(source, dtype=ctx.dtype, load_in_4bit=quantized, device_map={"": 0})
        if quantized:
            layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
            if not layers or layers[0].weight.quant_type != "nf4" or layers[0].weight.device.type != "cuda":
                raise AssertionError("the linear layers are not 4-bit NF4 on the GPU")
        batch, labels = _sft_batch(tokenizer, ctx.rows, "cuda")
        with torch.no_grad():
            losses[quantized] = model(**batch, labels=labels).loss.float().item()
        del model
        torch.cuda.empty_cache()
    drift = abs(losses[True] - losses[False]) / losses[False]
    if not math.isfinite(losses[True]) or drift > NF4_LOSS_TOLERANCE:
        raise AssertionError(f"4-bit loss {losses[True]:.3f} vs 16-bit {losses[False]:.3f} ({drift:.0%} apart)")
    return f"{len(layers)} Linear4bit layers on cuda; loss 4-bit {losses[True]:.3f} vs {ctx.dtype} {losses[False]:.3f}"


def _adapter_weights(model) -> dict:
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters() if "lora_" in n}


def check_qlora_sft_paged_optimizer(ctx: Context) -> str:
    from zephyr_tutorial.profiles import get_profile
    from zephyr_tutorial.recipes import default_recipe
    from zephyr_tutorial.schemas import sft_splits
    from zephyr_tutorial.sft import load_model_for_training, sft_config, train_sft

    recipe = default_recipe("sft", get_profile("t4"))  # the GPU profiles' recipe: paged AdamW
    data = sft_splits(ctx.profile, "local")
    model, tokenizer = load_model_for_training(ctx.profile, recipe)
    before = _adapter_weights(model)
    args = sft_config(ctx.profile, recipe, ctx.work / "sft", logging_steps=1, save_strategy="no")
    run = train_sft(model, tokenizer, data["train"], args=args, resume=False)
    losses = [entry["loss"] for entry in run.training_metrics()]
    optimizer = type(
        run.trainer.optimizer.optimizer if hasattr(run.trainer.optimizer, "optimizer") else run.trainer.optimizer
    )
    changed = any(
        not (before[n] == p.detach().float().cpu()).all() for n, p in run.model.named_parameters() if n in before
    )
    if run.steps != STEPS or not all(math.isfinite(x) for x in losses) or not changed:
        raise AssertionError(f"steps {run.steps}, losses {losses}, adapter changed: {changed}")
    if "Paged" not in optimizer.__name__:
        raise AssertionError(f"optimizer {optimizer.__name__} is not a paged one")
    return f"{run.steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}, optimizer {optimizer.__name__}"


def check_dpo_adapter_disabled_reference(ctx: Context) -> str:
    from zephyr_tutorial.dpo import dpo_config, load_policy, train_dpo
    from zephyr_tutorial.profiles import get_profile
    from zephyr_tutorial.recipes import default_recipe
    from zephyr_tutorial.schemas import preference_splits

    recipe = default_recipe("dpo", get_profile("t4"))
    data = preference_splits(ctx.profile, "local")
    model, tokenizer, peft_config = load_policy(ctx.profile, recipe, None)  # a fresh adapter: reference = disabled
    args = dpo_config(ctx.profile, recipe, ctx.work / "dpo", logging_steps=1, save_strategy="no", beta=0.1)
    run = train_dpo(model, tokenizer, data["train"], args=args, peft_config=peft_config, resume=False)
    losses = [entry["loss"] for entry in run.training_metrics()]
    if run.trainer.ref_model is not None:
        raise AssertionError("the trainer holds a second reference model")
    if run.steps != STEPS or abs(losses[0] - math.log(2)) > 0.01 or not all(math.isfinite(x) for x in losses):
        raise AssertionError(f"steps {run.steps}, losses {losses} (the first must be log 2 = 0.693)")
    return f"{run.steps} steps, loss {losses[0]:.4f} (log 2) -> {losses[-1]:.4f}, no reference copy"


def _autocast(ctx: Context, dtype: str) -> str:
    import torch

    from zephyr_tutorial.models import load_base_model

    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        major, minor = torch.cuda.get_device_capability()
        raise Skip(f"compute capability {major}.{minor} has no native bfloat16 (the t4 profile uses float16)")
    model, tokenizer = load_base_model(ctx.profile.with_overrides(dtype="float32"), load_in_4bit=True)
    batch, _ = _sft_batch(tokenizer, ctx.rows, "cuda")
    with torch.no_grad():
        reference = model(**batch).logits.float()
        with torch.autocast("cuda", dtype=getattr(torch, dtype)):
            logits = model(**batch).logits
    agreement = (logits.float().argmax(-1) == reference.argmax(-1)).float().mean().item()
    if not torch.isfinite(logits).all() or agreement < 0.9:
        raise AssertionError(f"logits finite: {bool(torch.isfinite(logits).all())}, top-1 agreement {agreement:.2f}")
    return f"finite logits ({logits.dtype}), top-1 tokens equal to float32 at {agreement:.1%} of positions"


def check_autocast_float16(ctx: Context) -> str:
    return _autocast(ctx, "float16")


def check_autocast_bfloat16(ctx: Context) -> str:
    return _autocast(ctx, "bfloat16")


def check_memory_estimate(ctx: Context) -> str:
    import torch
    from peft import get_peft_model

    from zephyr_tutorial.memory import GIB, ModelShape, estimate_training_memory
    from zephyr_tutorial.models import load_base_model, lora_config, prepare_for_training
    from zephyr_tutorial.profiles import get_profile
    from zephyr_tutorial.recipes import default_recipe

    torch.cuda.empty_cache()
    recipe = default_recipe("sft", get_profile("t4"))
    model, _ = load_base_model(ctx.profile)
    shape = ModelShape.from_config(model.config)
    model = get_peft_model(prepare_for_training(model, gradient_checkpointing=True), lora_config(recipe["lora"]))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (BATCH, SEQ_LEN), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):  # the second step has the optimizer states the estimate counts
        with torch.autocast("cuda", dtype=getattr(torch, ctx.dtype)):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated() / GIB
    estimate = (
        estimate_training_memory(
            shape, "qlora", seq_len=SEQ_LEN, batch_size=BATCH, lora_r=recipe["lora"]["r"], compute_bytes=2
        ).total
        / GIB
    )
    ratio = measured / estimate
    figures = f"measured {measured:.2f} GiB, estimated {estimate:.2f} GiB (ratio {ratio:.2f})"
    if not 1 / MEMORY_TOLERANCE <= ratio <= MEMORY_TOLERANCE:
        raise AssertionError(figures)
    return figures


def check_vllm_backend(ctx: Context) -> str:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise Skip('vLLM is not installed (pip install -e ".[gpu]")')
    from zephyr_tutorial.backends import SamplingConfig, VLLMBackend
    from zephyr_tutorial.models import resolve_embedded_model

    backend = VLLMBackend(
        str(resolve_embedded_model()),
        dtype=ctx.dtype,
        gpu_memory_utilization=0.3,
        max_model_len=1024,
        enforce_eager=True,
    )
    reply = backend.chat([[{"role": "user", "content": "What is the capital of France?"}]], SamplingConfig(32))[0]
    if not reply.text.strip() or reply.completion_tokens == 0:
        raise AssertionError(f"empty reply: {reply}")
    return f"{reply.completion_tokens} tokens: {reply.text[:60]!r}"


CHECKS = (
    check_nf4_loading,
    check_qlora_sft_paged_optimizer,
    check_dpo_adapter_disabled_reference,
    check_autocast_float16,
    check_autocast_bfloat16,
    check_memory_estimate,
    check_vllm_backend,
)


def main(argv: list[str] | None = None) -> int:
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_check needs a CUDA GPU and PyTorch sees none (torch.cuda.is_available() is False): "
            f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}. Run it on a GPU machine.",
            file=sys.stderr,
        )
        return 2
    from zephyr_tutorial.runtime import describe_environment, seed_everything

    dtype = "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"
    report = dict(describe_environment().as_rows())
    versions = ", ".join(f"{name} {report[name]}" for name in ("torch", "transformers", "trl", "peft", "bitsandbytes"))
    print(f"gpu_check on {report['device']}: {versions}; compute dtype {dtype}")
    failed = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        ctx = Context(Path(work), dtype)
        ctx.profile = _gpu_profile(dtype)
        seed_everything(0)
        for check in CHECKS:
            name, begin = check.__name__.removeprefix("check_"), time.perf_counter()
            try:
                outcome, detail = "PASS", check(ctx)
            except Skip as reason:
                outcome, detail = "SKIP", str(reason)
            except Exception as error:  # a failed check is reported, and the others still run
                outcome, detail = "FAIL", f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
                failed += 1
            print(f"{outcome} {name}: {detail} ({time.perf_counter() - begin:.0f} s)", flush=True)
            torch.cuda.empty_cache()
    print(f"{len(CHECKS) - failed} of {len(CHECKS)} checks without failure in {time.perf_counter() - started:.0f} s; "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
