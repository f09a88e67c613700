"""LLM-as-judge: pairwise comparisons with position swap, and single-answer grading, on any chat backend.

The judge is any :class:`~zephyr_tutorial.backends.ChatBackend` (the embedded
model in-process, or GPT-4 / vLLM / ``transformers serve`` / Ollama through
:class:`~zephyr_tutorial.backends.OpenAIBackend`), wrapped in a
:class:`~zephyr_tutorial.backends.CachedBackend` so a judgment is paid for once.
All prompts of a run go to the backend in one call, so local judges batch them.

Position bias: judges favour the answer shown first (or second). With
``swap=True`` each pair is judged in both orders; a verdict counts only when both
orders agree, and an inconsistent pair counts as a tie, as MT-Bench does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..backends import CachedBackend, ChatBackend, SamplingConfig
from ..data import DataError, read_jsonl
from .metrics import WinRate, win_rate
from .parsing import Parsed, parse_alpaca_ranking, parse_pairwise_verdict, parse_rating
from .prompts import mt_bench_single_prompt, pairwise_prompt

JUDGE_SAMPLING = SamplingConfig(max_new_tokens=256, temperature=0.0)


@dataclass(frozen=True)
class PairwiseItem:
    id: str
    instruction: str
    output_a: str
    output_b: str
    category: str = "general"


@dataclass(frozen=True)
class SingleItem:
    id: str
    question: str
    answer: str
    reference: str | None = None
    category: str = "general"


def _non_empty(names: Sequence[str]):
    def validate(row: dict, path: str, line: int) -> None:
        for name in names:
            if not row[name].strip():
                raise DataError(path, line, name, "empty")
    return validate


def load_pairwise_items(path) -> list[PairwiseItem]:
    """Rows ``{"id", "instruction", "output_a", "output_b"[, "category"]}``; ids must be unique."""
    fields = {"id": str, "instruction": str, "output_a": str, "output_b": str}
    rows = read_jsonl(path, fields=fields, validate=_non_empty(list(fields)))
    duplicates = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    if duplicates:
        raise DataError(path, None, "id", f"duplicate ids: {duplicates[:5]}")
    return [PairwiseItem(r["id"], r["instruction"], r["output_a"], r["output_b"], r.get("category", "general"))
            for r in rows]


def load_human_labels(path, known_ids: Sequence[str] | None = None) -> dict[str, str]:
    """``{pair id: "a" | "b" | "tie"}`` from rows ``{"id", "preferred", "reason"}``."""
    known = set(known_ids) if known_ids is not None else None

    def validate(row: dict, where: str, line: int) -> None:
        if row["preferred"] not in ("a", "b", "tie"):
            raise DataError(where, line, "preferred", f"must be 'a', 'b' or 'tie', got {row['preferred']!r}")
        if known is not None and row["id"] not in known:
            raise DataError(where, line, "id", f"{row['id']!r} is not an id of the pairwise items")

    rows = read_jsonl(path, fields={"id": str, "preferred": str, "reason": str}, validate=validate)
    return {row["id"]: row["preferred"] for row in rows}


@dataclass
class PairwiseJudgment:
    id: str
    forward: str | None
    """Verdict with output_a shown first, in the items' labels ``"a"``, ``"b"``, ``"tie"`` (None: unparseable)."""
    swapped: str | None
    """Verdict with output_b shown first, mapped back to the items' labels (None: unparseable or not run)."""
    verdict: str | None
    """Final verdict: the agreed one, ``"tie"`` if the two orders disagree, None if a reply could not be parsed."""
    errors: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    @property
    def flipped(self) -> bool | None:
        """Whether the two orders disagreed (None if not both were parsed)."""
        if self.forward is None or self.swapped is None:
            return None
        return self.forward != self.swapped


@dataclass
class PairwiseReport:
    judgments: list[PairwiseJudgment]
    judge: str
    prompt: str
    swap: bool

    @property
    def parse_failures(self) -> int:
        return sum(j.verdict is None for j in self.judgments)

    @property
    def verdicts(self) -> dict[str, str]:
        return {j.id: j.verdict for j in self.judgments if j.verdict is not None}

    @property
    def flip_rate(self) -> float:
        """Share of pairs (both orders parsed) whose verdict changed when the order was swapped."""
        flips = [j.flipped for j in self.judgments if j.flipped is not None]
        return sum(flips) / len(flips) if flips else float("nan")

    def first_position_rate(self) -> float:
        """Share of parsed replies that picked whichever answer was shown first (0.5 means no position bias)."""
        picks = [j.forward == "a" for j in self.judgments if j.forward in ("a", "b")]
        picks += [j.swapped == "b" for j in self.judgments if j.swapped in ("a", "b")]
        return sum(picks) / len(picks) if picks else float("nan")

    def win_rate(self, side: str = "a") -> WinRate:
        return win_rate(list(self.verdicts.values()), side)

    def first_order_only(self) -> "PairwiseReport":
        """The report a judge would give without the swap: each pair's verdict from the first order alone."""
        judgments = [PairwiseJudgment(j.id, j.forward, None, j.forward, j.errors[:1], j.replies[:1])
                     for j in self.judgments]
        return PairwiseReport(judgments, self.judge, self.prompt, swap=False)

    def to_dict(self) -> dict:
        rate = self.win_rate("a")
        return {
            "judge": self.judge, "prompt": self.prompt, "swap": self.swap, "n": len(self.judgments),
            "parse_failures": self.parse_failures, "win_rate_a": rate.value, "win_rate_a_stderr": rate.stderr,
            "wins_a": rate.wins, "ties": rate.ties, "wins_b": rate.losses,
            "flip_rate": self.flip_rate if self.swap else None,
        }


def _to_item_labels(parsed: Parsed, prompt: str, swapped: bool) -> str | None:
    """Map a parsed reply (A/B/tie or model_1/model_2, by position) to the item's labels a/b/tie."""
    if not parsed.ok:
        return None
    position = {"A": 0, "model_1": 0, "B": 1, "model_2": 1}.get(parsed.value)
    if position is None:
        return "tie"
    return ("a", "b")[position ^ int(swapped)]


def judge_pairwise(items: Sequence[PairwiseItem], backend: ChatBackend, *, prompt: str = "mt_bench",
                   swap: bool = True, sampling: SamplingConfig = JUDGE_SAMPLING) -> PairwiseReport:
    """Judge every pair (in both orders when ``swap``) with one batched backend call."""
    parse = parse_alpaca_ranking if prompt == "alpaca_eval" else parse_pairwise_verdict
    conversations = [pairwise_prompt(prompt, it.instruction, it.output_a, it.output_b) for it in items]
    if swap:
        conversations += [pairwise_prompt(prompt, it.instruction, it.output_b, it.output_a) for it in items]
    replies = [c.text for c in backend.chat(conversations, sampling)]
    judgments = []
    for index, item in enumerate(items):
        parsed = [parse(replies[index])] + ([parse(replies[index + len(items)])] if swap else [])
        labels = [_to_item_labels(p, prompt, swapped=bool(k)) for k, p in enumerate(parsed)]
        forward, swapped = labels[0], (labels[1] if swap else None)
        if any(label is None for label in labels):
            verdict = None
        elif swap and forward != swapped:
            verdict = "tie"
        else:
            verdict = forward
        judgments.append(PairwiseJudgment(
            item.id, forward, swapped, verdict, errors=[p.error for p in parsed if not p.ok],
            replies=[replies[index]] + ([replies[index + len(items)]] if swap else []),
        ))
    return PairwiseReport(judgments, backend.name, prompt, swap)


VERDICT_PREFIX = "[["


def _next_letter_logprobs(model, tokenizer, contexts: Sequence[str], letters: str, *, batch_size: int,
                          progress: bool) -> list[float]:
    """``log p(letter | context)`` for every context and letter, flattened context-major.

    When each letter is one token that does not merge with the context's end, one
    forward pass per context reads all letters; otherwise each letter is scored
    as a continuation.
    """
    import torch
    from tqdm.auto import tqdm

    from .multiple_choice import encode_pair, score_continuations

    encoded = [[encode_pair(tokenizer, c, letter) for letter in letters] for c in contexts]
    if not all(len(x) == 1 and ids == e[0][0] for e in encoded for ids, x in e):
        pairs = [(c, letter) for c in contexts for letter in letters]
        return [ll for ll, _ in score_continuations(model, tokenizer, pairs, batch_size=batch_size, progress=progress)]
    letter_ids = torch.tensor([x[0] for _, x in encoded[0]])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[float] = [0.0] * (len(contexts) * len(letters))
    order = sorted(range(len(contexts)), key=lambda i: -len(encoded[i][0][0]))  # little padding per batch
    for start in tqdm(range(0, len(contexts), batch_size), desc="judge (log-probs)", disable=not progress):
        rows = [encoded[i][0][0] for i in order[start:start + batch_size]]
        batch = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
        for r, ids in enumerate(rows):
            batch[r, :len(ids)] = torch.tensor(ids)  # right padding: causal positions never see it
        with torch.no_grad():
            logits = model(batch.to(model.device)).logits.float().cpu()
        for r, (ids, index) in enumerate(zip(rows, order[start:start + batch_size])):
            log_probs = torch.log_softmax(logits[r, len(ids) - 1], dim=-1)[letter_ids]
            scores[index * len(letters):(index + 1) * len(letters)] = log_probs.tolist()
    return scores


def judge_pairwise_logprobs(items: Sequence[PairwiseItem], model, tokenizer, *, swap: bool = True,
                            batch_size: int = 8, progress: bool = True) -> PairwiseReport:
    """A judge that reads its verdict from next-token probabilities instead of generating an explanation.

    The MT-Bench pairwise prompt is followed by the start of the assistant turn
    and ``"[["``; the verdict is whichever of ``A``, ``B``, ``C`` is most likely next,

    .. math::  v = \\arg\\max_{t \\in \\{A, B, C\\}} \\log p_\\theta(t \\mid \\text{prompt}, \\texttt{[[}).

    AlpacaEval 2's default annotator reads its preference from the judge's first-token
    log-probabilities the same way. It always yields a verdict (no parse failures)
    and costs one forward pass per order, so even a small local model can be
    measured as a judge; ``replies`` hold the three log-probabilities.
    """
    from .multiple_choice import score_continuations

    orders = [(it.output_a, it.output_b) for it in items]
    if swap:
        orders += [(it.output_b, it.output_a) for it in items]
    contexts = [tokenizer.apply_chat_template(pairwise_prompt("mt_bench", it.instruction, first, second),
                                              tokenize=False, add_generation_prompt=True) + VERDICT_PREFIX
                for it, (first, second) in zip(list(items) * (2 if swap else 1), orders)]
    scores = _next_letter_logprobs(model, tokenizer, contexts, "ABC", batch_size=batch_size, progress=progress)
    name = getattr(model.config, "_name_or_path", "") or model.config.model_type
    judgments = []
    for index, item in enumerate(items):
        labels, replies = [], []
        for k in range(2 if swap else 1):
            triple = scores[3 * (index + k * len(items)):3 * (index + k * len(items)) + 3]
            letter = "ABC"[max(range(3), key=lambda i: triple[i])]
            labels.append(_to_item_labels(Parsed({"A": "A", "B": "B", "C": "tie"}[letter]), "mt_bench", bool(k)))
            replies.append(" ".join(f"{t}:{ll:.3f}" for t, ll in zip("ABC", triple)))
        forward, swapped = labels[0], (labels[1] if swap else None)
        verdict = "tie" if swap and forward != swapped else forward
        judgments.append(PairwiseJudgment(item.id, forward, swapped, verdict, replies=replies))
    return PairwiseReport(judgments, f"logprobs:{name}", "mt_bench", swap)


@dataclass
class SingleJudgment:
    id: str
    rating: float | None
    error: str | None
    reply: str


def judge_single(items: Sequence[SingleItem], backend: ChatBackend, *,
                 sampling: SamplingConfig = JUDGE_SAMPLING) -> list[SingleJudgment]:
    """MT-Bench single-answer grading (reference-guided where an item has a reference), one batched call."""
    conversations = [mt_bench_single_prompt(it.question, it.answer, it.reference) for it in items]
    replies = [c.text for c in backend.chat(conversations, sampling)]
    judgments = []
    for item, reply in zip(items, replies):
        parsed = parse_rating(reply)
        judgments.append(SingleJudgment(item.id, parsed.value if parsed.ok else None, parsed.error, reply))
    return judgments


def make_judge(kind: str = "local", *, model=None, tokenizer=None, model_name: str | None = None,
               base_url: str | None = None, cache_path=None, batch_size: int = 16, concurrency: int = 4,
               timeout: float = 120.0, max_retries: int = 3) -> ChatBackend:
    """A judge backend: ``"local"`` (a transformers model in-process) or ``"openai"`` (any compatible endpoint).

    The API key of ``"openai"`` is read from ``$OPENAI_API_KEY`` by the backend and
    never stored here. With ``cache_path`` the judge is wrapped in an SQLite cache
    keyed by (judge name, prompt, sampling): the prompt holds the outputs, so a
    repeated judgment is free.
    """
    from ..backends import OpenAIBackend, TransformersBackend

    if kind == "local":
        if model is None or tokenizer is None:
            from ..models import load_embedded_model

            model, tokenizer = load_embedded_model()
        backend: ChatBackend = TransformersBackend(model, tokenizer, batch_size=batch_size, name=model_name)
    elif kind == "openai":
        if not model_name:
            raise ValueError("the openai judge needs model_name (e.g. 'gpt-4-0613' or the served model id)")
        backend = OpenAIBackend(model_name, base_url=base_url, timeout=timeout, max_retries=max_retries,
                                concurrency=concurrency)
    else:
        raise ValueError(f"unknown judge backend {kind!r}; choose 'local' or 'openai'")
    return CachedBackend(backend, cache_path) if cache_path is not None else backend
