"""Next-token multiple-choice evaluation: score every choice by its log-likelihood, pick the most likely.

For a question with context :math:`x` and choices :math:`y_1, \\dots, y_k`, each
choice is scored by the summed log-probability of its tokens given the context,

.. math::  \\ell_i = \\log p_\\theta(y_i \\mid x) = \\sum_t \\log p_\\theta(y_{i,t} \\mid x, y_{i,<t}),

and the prediction is :math:`\\arg\\max_i \\ell_i` (``acc``) or
:math:`\\arg\\max_i \\ell_i / |y_i|_{\\text{chars}}` (``acc_norm``, which stops long
choices from being penalised for having more tokens). Nothing is generated: the
method assumes the model would answer *immediately*, which is true of a base
model and only roughly true of a chat model that likes to say "Sure! ..." first.

The conventions are those of lm-evaluation-harness ``output_type: multiple_choice``
tasks (target delimiter ``" "``, trailing context spaces moved to the
continuation, the continuation's tokens taken from encoding context+continuation
together, left truncation, acc_norm by character length of the choice), so on
the same items and model the numbers equal lm-eval's (``tests/test_evaluation_mc.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data import DataError, read_jsonl

DEFAULT_PROMPT = "Question: {question}\nAnswer:"
TARGET_DELIMITER = " "
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FORMATS = ("continuation", "letters")


@dataclass(frozen=True)
class MCItem:
    question: str
    choices: tuple[str, ...]
    answer: int
    id: str = ""
    category: str = "all"


@dataclass
class MCItemResult:
    id: str
    category: str
    answer: int
    loglikelihoods: list[float]
    is_greedy: list[bool]
    """Whether each choice is what greedy decoding would produce token by token."""
    prediction: int
    prediction_norm: int

    @property
    def correct(self) -> bool:
        return self.prediction == self.answer

    @property
    def correct_norm(self) -> bool:
        return self.prediction_norm == self.answer

    @property
    def margin(self) -> float:
        """log p(correct) - max log p(wrong): positive when the model prefers the right answer."""
        wrong = [ll for i, ll in enumerate(self.loglikelihoods) if i != self.answer]
        return self.loglikelihoods[self.answer] - max(wrong)


@dataclass
class MCReport:
    items: list[MCItemResult] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def acc(self) -> float:
        return sum(r.correct for r in self.items) / self.n

    @property
    def acc_norm(self) -> float:
        return sum(r.correct_norm for r in self.items) / self.n

    @property
    def acc_stderr(self) -> float:
        """Standard error of the mean of 0/1 outcomes (sample std, as lm-eval reports)."""
        if self.n < 2:
            return float("nan")
        p = self.acc
        return math.sqrt(p * (1 - p) * self.n / (self.n - 1) / self.n)

    def accuracy_by_category(self) -> dict[str, tuple[float, int]]:
        """``{category: (acc, n)}``."""
        groups: dict[str, list[bool]] = {}
        for r in self.items:
            groups.setdefault(r.category, []).append(r.correct)
        return {c: (sum(v) / len(v), len(v)) for c, v in sorted(groups.items())}

    def to_dict(self, per_item: bool = True) -> dict:
        out = {"acc": self.acc, "acc_norm": self.acc_norm, "acc_stderr": self.acc_stderr, "n": self.n}
        out["by_category"] = {c: {"acc": a, "n": n} for c, (a, n) in self.accuracy_by_category().items()}
        if per_item:
            out["items"] = [
                {"id": r.id, "answer": r.answer, "loglikelihoods": r.loglikelihoods, "prediction": r.prediction}
                for r in self.items
            ]
        return out


def _validate_mc_row(row: dict, path: str, line: int) -> None:
    choices = row["choices"]
    if len(choices) < 2:
        raise DataError(path, line, "choices", f"needs at least 2 choices, got {len(choices)}")
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or not choice.strip():
            raise DataError(path, line, "choices", f"choice {i} must be a non-empty string")
    if not 0 <= row["answer"] < len(choices):
        raise DataError(path, line, "answer", f"index {row['answer']} out of range for {len(choices)} choices")
    if not row["question"].strip():
        raise DataError(path, line, "question", "empty")


def load_mc_items(path) -> list[MCItem]:
    """Read ``{"question", "choices", "answer"[, "id", "category"]}`` rows; a bad row raises naming line and field."""
    rows = read_jsonl(path, fields={"question": str, "choices": list, "answer": int}, validate=_validate_mc_row)
    return [
        MCItem(
            question=row["question"],
            choices=tuple(row["choices"]),
            answer=row["answer"],
            id=str(row.get("id", index)),
            category=str(row.get("category", "all")),
        )
        for index, row in enumerate(rows)
    ]


def build_requests(
    item: MCItem, fmt: str = "continuation", prompt: str = DEFAULT_PROMPT
) -> tuple[str, list[str], list[str]]:
    """``(context, continuations, texts_for_norm)`` of one item.

    ``continuation`` format (ARC/HellaSwag style): the model scores ``" " + choice``.
    ``letters`` format (MMLU style): the choices are listed as ``A. ...`` in the
    prompt and the model scores ``" A"``, ``" B"``, ...
    """
    if fmt == "continuation":
        context = prompt.format(question=item.question)
        targets = list(item.choices)
    elif fmt == "letters":
        if len(item.choices) > len(LETTERS):
            raise ValueError(f"item {item.id}: too many choices for letter format ({len(item.choices)})")
        listed = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
        context = prompt.format(question=f"{item.question}\n{listed}")
        targets = [LETTERS[i] for i in range(len(item.choices))]
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return context, [TARGET_DELIMITER + t for t in targets], targets


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of context and continuation, split the way lm-eval does.

    Trailing spaces of the context move to the continuation (``"Answer: " + "Paris"``
    tokenizes like ``"Answer:" + " Paris"``), and the continuation's ids are what
    remains of ``encode(context + continuation)`` after ``encode(context)``, so the
    tokenizer merges across the boundary exactly as it would in running text.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    if not context:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], tokenizer.encode(continuation)
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    return context_ids, whole[len(context_ids) :]


def score_continuations(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    progress: bool = True,
) -> list[tuple[float, bool]]:
    """``(log p(continuation | context), is_greedy)`` for each ``(context, continuation)`` pair, batched.

    Sequences are sorted longest first and right-padded; with causal attention a
    position never sees the padding after it, so no attention mask is needed.
    Identical inputs are computed once (lm-eval caches one-token continuations the same way).
    """
    import torch
    from tqdm.auto import tqdm

    max_length = max_length or getattr(model.config, "max_position_embeddings", 2048)
    encoded = [encode_pair(tokenizer, c, x) for c, x in pairs]
    for i, (_, continuation_ids) in enumerate(encoded):
        if not continuation_ids:
            raise ValueError(f"request {i}: the continuation {pairs[i][1]!r} encodes to no tokens")
    # Requests whose model input is identical (a one-token continuation after a shared context, as in the
    # letters format) share one row: the targets are read from the same logits.
    inputs = [tuple((c + x)[-(max_length + 1) :][:-1]) for c, x in encoded]
    unique = list(dict.fromkeys(inputs))
    requests_of: dict[tuple, list[int]] = {}
    for index, row in enumerate(inputs):
        requests_of.setdefault(row, []).append(index)
    unique.sort(key=len, reverse=True)  # similar lengths batch together with little padding
    results: list[tuple[float, bool] | None] = [None] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bar = tqdm(total=len(encoded), desc="loglikelihood", disable=not progress)
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        batch = torch.full((len(chunk), len(chunk[0])), pad_id, dtype=torch.long)
        for row, ids in enumerate(chunk):
            batch[row, : len(ids)] = torch.tensor(ids)
        with torch.no_grad():
            log_probs = torch.log_softmax(model(batch.to(model.device)).logits.float(), dim=-1).cpu()
        for row, ids in enumerate(chunk):
            for index in requests_of[ids]:
                target = torch.tensor(encoded[index][1])
                window = log_probs[row, len(ids) - len(target) : len(ids)]
                greedy = bool((window.argmax(dim=-1) == target).all())
                results[index] = (float(window.gather(1, target[:, None]).sum()), greedy)
            bar.update(len(requests_of[ids]))
    bar.close()
    return results  # type: ignore[return-value]


_LETTER_START = re.compile(r"^[\s*_(\[]*([A-Z])[*_]*(?:[).:\]]|\s*$)")


def starts_with_choice(reply: str, choices: Sequence[str]) -> int | None:
    """The choice a free-form ``reply`` opens with, or ``None`` when it opens with anything else.

    A reply opens with choice *i* when it starts with its letter as a label (``"B. Paris"``, ``"(B)"``, ``"B"``;
    not ``"A carnivore is ..."``) or with the choice's own text, ignoring case and leading space and markup.
    Log-likelihood scoring assumes a model answers with a choice at once; this is how often a model does.
    """
    match = _LETTER_START.match(reply)
    if match and LETTERS.index(match.group(1)) < len(choices):
        return LETTERS.index(match.group(1))
    opening = reply.strip().strip("*_\"'").lower()
    for index, choice in enumerate(choices):
        text = choice.strip().lower()
        if text and opening.startswith(text) and not opening[len(text) : len(text) + 1].isalnum():
            return index
    return None


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def evaluate_multiple_choice(
    model,
    tokenizer,
    items: Sequence[MCItem],
    *,
    fmt: str = "continuation",
    prompt: str = DEFAULT_PROMPT,
    batch_size: int = 16,
    progress: bool = True,
) -> MCReport:
    """Score every choice of every item in one batched pass; returns per-item log-likelihoods and predictions."""
    requests = [build_requests(item, fmt, prompt) for item in items]
    pairs = [(context, continuation) for context, continuations, _ in requests for continuation in continuations]
    scores = score_continuations(model, tokenizer, pairs, batch_size=batch_size, progress=progress)
    report, cursor = MCReport(), 0
    for item, (_, continuations, texts) in zip(items, requests):
        chunk = scores[cursor : cursor + len(continuations)]
        cursor += len(continuations)
        lls = [ll for ll, _ in chunk]
        normalized = [ll / len(text) for ll, text in zip(lls, texts)]
        report.items.append(
            MCItemResult(
                id=item.id,
                category=item.category,
                answer=item.answer,
                loglikelihoods=lls,
                is_greedy=[g for _, g in chunk],
                prediction=_argmax(lls),
                prediction_norm=_argmax(normalized),
            )
        )
    return report


# Standard benchmarks by hub id (needs hub access): (dataset, config, split, row -> MCItem, prompt, format).
def _arc_item(row) -> MCItem:
    labels = list(row["choices"]["label"])
    return MCItem(row["question"], tuple(row["choices"]["text"]), labels.index(row["answerKey"]), str(row["id"]))


def _hellaswag_item(row) -> MCItem:
    import re

    def clean(text: str) -> str:  # the preprocessing lm-eval applies to HellaSwag's WikiHow text
        text = text.strip().replace(" [title]", ". ")
        text = re.sub("\\[.*?\\]", "", text)
        return text.replace("  ", " ")

    query = clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
    return MCItem(query, tuple(clean(e) for e in row["endings"]), int(row["label"]), str(row["ind"]))


def _mmlu_item(row) -> MCItem:
    return MCItem(
        row["question"].strip(), tuple(row["choices"]), int(row["answer"]), category=row.get("subject", "mmlu")
    )


HUB_BENCHMARKS = {
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test", _arc_item, DEFAULT_PROMPT, "continuation"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test", _arc_item, DEFAULT_PROMPT, "continuation"),
    "hellaswag": ("Rowan/hellaswag", None, "validation", _hellaswag_item, "{question}", "continuation"),
    "mmlu": ("cais/mmlu", "all", "test", _mmlu_item, "{question}\nAnswer:", "letters"),
}


def load_hub_benchmark(name: str, *, limit: int | None = None, subject: str | None = None):
    """``(items, prompt, fmt)`` of a standard benchmark downloaded from the hub (needs network access).

    ``name`` is a key of :data:`HUB_BENCHMARKS`; for MMLU ``subject`` picks one
    subset (e.g. ``"high_school_physics"``).
    """
    from datasets import load_dataset

    if name not in HUB_BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(HUB_BENCHMARKS)}")
    dataset_id, config, split, convert, prompt, fmt = HUB_BENCHMARKS[name]
    rows = load_dataset(dataset_id, subject or config, split=split)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    return [convert(row) for row in rows], prompt, fmt
