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

from ..schemas import to_trl_preference
from .logprobs import collate_preferences, pair_logprobs, reference_model, tokenize_preference


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
) -> ImplicitRewardReport:
    """Implicit rewards of every held-out pair, with our from-scratch log-probabilities.

    The reference is ``ref_model`` if given, else ``model`` under
    :func:`~zephyr_tutorial.dpo.logprobs.reference_model` (frozen ``ref`` adapter or adapters disabled).
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    report = ImplicitRewardReport()
    try:
        for start in tqdm(range(0, len(rows), batch_size), desc="implicit rewards", leave=False):
            pairs = [to_trl_preference(row) for row in rows[start : start + batch_size]]
            tokens = [tokenize_preference(tokenizer, p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
            batch = collate_preferences(tokens, tokenizer.pad_token_id, max_length)
            chosen, rejected = pair_logprobs(model, batch)
            if ref_model is not None:
                ref_chosen, ref_rejected = pair_logprobs(ref_model, batch)
            else:
                with reference_model(model):
                    ref_chosen, ref_rejected = pair_logprobs(model, batch)
            report.chosen_rewards += (beta * (chosen - ref_chosen)).tolist()
            report.rejected_rewards += (beta * (rejected - ref_rejected)).tolist()
    finally:
        model.train(was_training)
    return report


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
    """Generate with one adapter of a PEFT model (``None``: all adapters disabled)."""
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
    model, tokenizer, prompts: Sequence[list], *, adapter: str | None, max_new_tokens: int, batch_size: int = 8
):
    """Greedy answers (``Completion`` objects) of one adapter of ``model`` to each prompt conversation."""
    from ..backends import SamplingConfig, TransformersBackend

    backend = TransformersBackend(model, tokenizer, batch_size=batch_size, name=f"adapter:{adapter}")
    was_training = model.training
    model.eval()
    try:
        with active_adapter(model, adapter):
            return backend.chat(list(prompts), SamplingConfig(max_new_tokens=max_new_tokens))
    finally:
        model.train(was_training)


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
