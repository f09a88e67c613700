"""Held-out evaluation of a DPO model: implicit-reward accuracy and a judged win rate against SFT.

Two different questions:

- *Does the policy rank held-out pairs the way the AI feedback did?* The
  implicit reward :math:`\\hat r(y) = \\beta \\log \\frac{\\pi_\\theta(y|x)}{\\pi_{ref}(y|x)}`
  orders a pair correctly when :math:`\\hat r(y_w) > \\hat r(y_l)`. No generation needed.
- *Are its own answers better?* Both models answer the held-out prompts, and the
  judge of notebook 01 compares the answers pairwise (both orders).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..backends import GENERATION_BATCH_SIZE, evaluating
from ..schemas import to_trl_preference
from .logprobs import collate_preferences, pair_logprobs, pair_width, reference_model, tokenize_preference


@dataclass
class ImplicitRewardReport:
    chosen_rewards: list[float] = field(default_factory=list)
    rejected_rewards: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.chosen_rewards)

    @property
    def margins(self) -> list[float]:
        return [c - r for c, r in zip(self.chosen_rewards, self.rejected_rewards)]

    @property
    def accuracy(self) -> float:
        """Share of pairs with :math:`\\hat r(y_w) > \\hat r(y_l)`."""
        return sum(m > 0 for m in self.margins) / self.n if self.n else float("nan")

    @property
    def mean_margin(self) -> float:
        return sum(self.margins) / self.n if self.n else float("nan")

    def as_dict(self) -> dict:
        return {"n": self.n, "reward_accuracy": round(self.accuracy, 4), "mean_margin": round(self.mean_margin, 4)}


_UNSET = object()


@torch.no_grad()
def evaluate_implicit_rewards(
    model,
    tokenizer,
    rows: Sequence[dict],
    beta: float,
    *,
    batch_size: int = 4,
    max_length: int | None = None,
    ref_model=None,
    policy_adapter: str | None = None,
    reference_adapter=_UNSET,
    cache_path=None,
    cache_key: str | None = None,
    reference_logps: dict | None = None,
) -> ImplicitRewardReport:
    """Implicit rewards of every held-out pair, with our from-scratch log-probabilities.

    The policy is ``model`` as it is, or its adapter ``policy_adapter``. The reference is ``ref_model`` if given,
    else ``model`` as adapter ``reference_adapter`` (``None``: every adapter disabled, the base model), else
    ``model`` under :func:`~zephyr_tutorial.dpo.logprobs.reference_model` (frozen ``ref`` adapter or adapters
    disabled).

    With ``cache_path`` (a JSON file) and ``cache_key`` (what names the policy and reference weights, e.g. their
    :func:`~zephyr_tutorial.models.adapter_key`), the rewards are stored under that key, the rows, ``beta``,
    ``max_length`` and ``batch_size``, and a later call with the same ones reads them back: notebook 06 reuses
    what notebook 05 measured on the same checkpoints.

    ``reference_logps``: a dict that keeps the reference's log-probabilities of these rows. Pass the same dict to
    every call whose reference is the same weights (notebook 05: each checkpoint against the frozen SFT adapter, and
    the label-noise run against the same adapter), and the reference's forward passes run once instead of each time.
    """
    from tqdm.auto import tqdm

    entry = None
    if cache_path is not None:
        if cache_key is None:
            raise ValueError("cache_path needs a cache_key naming the policy and reference weights")
        entry = _reward_cache_entry(cache_key, rows, beta, max_length, batch_size)
        cached = _read_reward_cache(cache_path).get(entry)
        if cached is not None:
            return ImplicitRewardReport(list(cached["chosen"]), list(cached["rejected"]))

    def policy():
        return active_adapter(model, policy_adapter) if policy_adapter is not None else contextlib.nullcontext(model)

    def reference():
        if ref_model is not None:
            return contextlib.nullcontext(ref_model)
        if reference_adapter is not _UNSET:
            return active_adapter(model, reference_adapter)
        return reference_model(model)

    kept = None
    if reference_logps is not None:  # the reference's log-probs of exactly these rows, batched the same way
        kept = reference_logps.setdefault(_reward_cache_entry("reference", rows, None, max_length, batch_size), {})
    pairs = [to_trl_preference(row) for row in rows]
    tokens = [tokenize_preference(tokenizer, p["prompt"], p["chosen"], p["rejected"]) for p in pairs]

    # Pairs of similar length batch together: a batch is as wide as its longest row, and on the 135M model's held-out
    # pairs, batches in row order are 75% padding over the real tokens, batches by length 27%.
    widths = [pair_width(t["prompt_ids"], t["chosen_ids"], t["rejected_ids"], max_length) for t in tokens]
    order = sorted(range(len(rows)), key=lambda i: -widths[i])
    chosen_rewards, rejected_rewards = [0.0] * len(rows), [0.0] * len(rows)
    with evaluating(model):
        for start in tqdm(range(0, len(rows), batch_size), desc="implicit rewards", leave=False):
            indices = order[start : start + batch_size]
            batch = collate_preferences([tokens[i] for i in indices], tokenizer.pad_token_id, max_length)
            with policy() as scored:
                chosen, rejected = pair_logprobs(scored, batch)
            if kept is not None and start in kept:
                ref_chosen, ref_rejected = kept[start]
            else:
                with reference() as scored:
                    ref_chosen, ref_rejected = pair_logprobs(scored, batch)
                if kept is not None:
                    kept[start] = (ref_chosen, ref_rejected)
            for i, c, r in zip(
                indices, (beta * (chosen - ref_chosen)).tolist(), (beta * (rejected - ref_rejected)).tolist()
            ):
                chosen_rewards[i], rejected_rewards[i] = c, r
    report = ImplicitRewardReport(chosen_rewards, rejected_rewards)
    if entry is not None:
        _write_reward_cache(cache_path, entry, report)
    return report


def _reward_cache_entry(cache_key: str, rows: Sequence[dict], beta: float, max_length, batch_size: int) -> str:
    import hashlib
    import json

    rows_hash = hashlib.sha256(json.dumps(list(rows), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{cache_key}|rows={rows_hash}|beta={beta!r}|max_length={max_length}|batch={batch_size}"


def _read_reward_cache(path) -> dict:
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a JSON implicit-reward cache ({error}); delete it to measure again") from None


def _write_reward_cache(path, entry: str, report: ImplicitRewardReport) -> None:
    import json
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = _read_reward_cache(path)
    cache[entry] = {"chosen": report.chosen_rewards, "rejected": report.rejected_rewards}
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(cache))
    temporary.replace(path)  # a reader never sees half a file


def evaluate_run(run, rows: Sequence[dict]) -> ImplicitRewardReport:
    """:func:`evaluate_implicit_rewards` of a finished run, with the ``beta``, ``max_length`` and eval batch size it
    trained with: batched as TRL's evaluation batches them, the numbers equal TRL's ``eval_rewards/*``."""
    args = run.trainer.args
    return evaluate_implicit_rewards(
        run.model,
        run.tokenizer,
        rows,
        args.beta,
        batch_size=args.per_device_eval_batch_size,
        max_length=args.max_length,
    )


@contextlib.contextmanager
def active_adapter(model, adapter: str | None):
    """Run a PEFT model as one of its adapters (``None``: all adapters disabled, the base model).

    A model without adapters runs as itself for ``None`` and refuses any adapter name.
    """
    if not getattr(model, "peft_config", None):
        if adapter is not None:
            raise ValueError(f"no adapters are loaded, cannot use {adapter!r}")
        yield model
        return
    if adapter is None:
        with model.disable_adapter():
            yield model
        return
    previous = model.active_adapter
    model.set_adapter(adapter)
    try:
        yield model
    finally:
        model.set_adapter(previous)


def answer_prompts(
    model,
    tokenizer,
    prompts: Sequence[list],
    *,
    adapter: str | None,
    max_new_tokens: int,
    batch_size: int = GENERATION_BATCH_SIZE,
    cache_path=None,
    cache_name: str | None = None,
):
    """Greedy answers (``Completion`` objects) of one adapter of ``model`` to each prompt conversation.

    With ``cache_path`` (SQLite, :class:`~zephyr_tutorial.backends.CachedBackend`) the answers are stored under
    ``cache_name``, which must name the adapter's *weights* (``"arm:" + adapter_key(folder)``), not its slot in
    ``model``: notebook 06 then reads the answers notebook 05 generated with the same checkpoints.
    """
    from ..backends import CachedBackend, SamplingConfig, TransformersBackend

    if cache_path is not None and cache_name is None:
        raise ValueError("cache_path needs a cache_name naming the adapter's weights")
    backend = TransformersBackend(model, tokenizer, batch_size=batch_size, name=cache_name or f"adapter:{adapter}")
    if cache_path is not None:
        backend = CachedBackend(backend, cache_path)
    with active_adapter(model, adapter):
        return backend.chat(list(prompts), SamplingConfig(max_new_tokens=max_new_tokens))


def judged_win_rate(
    model,
    tokenizer,
    rows: Sequence[dict],
    judge,
    *,
    policy_adapter: str = "default",
    baseline_adapter: str | None = "ref",
    max_new_tokens: int = 64,
):
    """Pairwise judgment of the DPO answers (``a``) against the SFT answers (``b``) on held-out prompts.

    Both answer sets come from the same weights: the trained adapter versus the
    frozen reference adapter (the SFT model). ``judge`` is any
    :class:`~zephyr_tutorial.evaluation.judges.Judge` (``make_judge("openai", ...)`` for GPT-4, notebook 01's
    log-prob judge ...); it compares each pair in both orders. Returns ``(PairwiseReport, answers)``;
    ``report.win_rate("a")`` is the DPO model's win rate, ties counting half.
    """
    from ..evaluation.items import PairwiseItem

    prompts = [to_trl_preference(row)["prompt"] for row in rows]
    dpo_answers = [
        c.text for c in answer_prompts(model, tokenizer, prompts, adapter=policy_adapter, max_new_tokens=max_new_tokens)
    ]
    sft_answers = [
        c.text
        for c in answer_prompts(model, tokenizer, prompts, adapter=baseline_adapter, max_new_tokens=max_new_tokens)
    ]
    items = [
        PairwiseItem(str(row.get("prompt_id", i)), row["prompt"], dpo or "(empty answer)", sft or "(empty answer)")
        for i, (row, dpo, sft) in enumerate(zip(rows, dpo_answers, sft_answers))
    ]
    return judge.compare(items, swap=True), {"dpo": dpo_answers, "sft": sft_answers}
