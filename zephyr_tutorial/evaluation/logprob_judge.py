"""The log-prob judge: verdicts, grades and aspect ratings read from next-token probabilities, not generated text.

A generating judge writes an explanation and then ``[[A]]`` or ``[[7]]``; a small
model rarely keeps to that format, so its replies are parse failures. Here the
judge's prompt is followed by the start of its answer and ``"[["``, and the
verdict or rating is read from the probabilities of the next token(s): one
forward pass per judgment, never a parse failure. AlpacaEval 2's default
annotator reads GPT-4 Turbo's first-token log-probabilities in the same spirit,
and G-Eval (Liu et al., 2023) weights each score by its probability.

:class:`LogprobJudge` implements the :class:`~zephyr_tutorial.evaluation.judges.Judge` interface:
``compare`` (MT-Bench pairwise), ``grade`` (MT-Bench single, 1-10) and ``rate`` (UltraFeedback's four
aspects, 1-5: for each completion the rating request is encoded once, then for each aspect
``"<Aspect>: "`` is appended as the start of the judge's reply and the rating is the expected digit
:math:`r = \\sum_k k\\,p(k) / \\sum_j p(j)` over 1..5; the request's key/value cache is computed once and
reused for the four aspects, 2.1x faster than four full passes on 2 CPU cores,
``benchmarks/feedback_probability_judge.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from .items import PairwiseItem, PairwiseJudgment, PairwiseReport, SingleItem, SingleJudgment, to_item_labels
from .parsing import Parsed
from .prompts import mt_bench_single_prompt, pairwise_prompt
from .rating import ASPECT_TITLES, ASPECTS, JUDGE_SYSTEM_PROMPT, Rating

VERDICT_PREFIX = "[["


def _log_probs_at_end(
    model,
    tokenizer,
    rows: Sequence[Sequence[int]],
    token_ids: Sequence[int],
    *,
    positions: int,
    batch_size: int,
    progress: bool,
    desc: str,
) -> list[list[list[float]]]:
    """For every row of token ids, ``log p(token | row[:i])`` of ``token_ids`` at each of the last ``positions`` ends.

    ``result[row][k][j]`` is the log-probability of ``token_ids[j]`` as the token
    after the first ``len(row) - positions + 1 + k`` tokens. Rows are batched
    longest first with right padding (causal positions never see it).
    """
    import torch
    from tqdm.auto import tqdm

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    columns = torch.tensor(list(token_ids))
    results: list[list[list[float]]] = [[] for _ in rows]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # little padding per batch
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress):
        indices = order[start : start + batch_size]
        batch = torch.full((len(indices), max(len(rows[i]) for i in indices)), pad_id, dtype=torch.long)
        for r, index in enumerate(indices):
            batch[r, : len(rows[index])] = torch.tensor(list(rows[index]))
        with torch.no_grad():
            logits = model(batch.to(model.device)).logits.float().cpu()
        for r, index in enumerate(indices):
            ends = range(len(rows[index]) - positions, len(rows[index]))
            results[index] = [torch.log_softmax(logits[r, end], dim=-1)[columns].tolist() for end in ends]
    return results


def _next_letter_logprobs(
    model, tokenizer, contexts: Sequence[str], letters: str, *, batch_size: int, progress: bool
) -> list[float]:
    """``log p(letter | context)`` for every context and letter, flattened context-major.

    When each letter is one token that does not merge with the context's end, one
    forward pass per context reads all letters; otherwise each letter is scored
    as a continuation.
    """
    from .multiple_choice import encode_pair, score_continuations

    encoded = [[encode_pair(tokenizer, c, letter) for letter in letters] for c in contexts]
    if not all(len(x) == 1 and ids == e[0][0] for e in encoded for ids, x in e):
        pairs = [(c, letter) for c in contexts for letter in letters]
        return [ll for ll, _ in score_continuations(model, tokenizer, pairs, batch_size=batch_size, progress=progress)]
    letter_ids = [x[0] for _, x in encoded[0]]
    rows = [e[0][0] for e in encoded]
    scores = _log_probs_at_end(
        model,
        tokenizer,
        rows,
        letter_ids,
        positions=1,
        batch_size=batch_size,
        progress=progress,
        desc="judge (log-probs)",
    )
    return [ll for per_context in scores for ll in per_context[0]]


def _compare(
    items: Sequence[PairwiseItem], model, tokenizer, *, swap: bool, batch_size: int, progress: bool, name: str
) -> PairwiseReport:
    """Pairwise verdicts read from next-token probabilities instead of a generated explanation.

    The MT-Bench pairwise prompt is followed by the start of the assistant turn
    and ``"[["``; the verdict is whichever of ``A``, ``B``, ``C`` is most likely next,

    .. math::  v = \\arg\\max_{t \\in \\{A, B, C\\}} \\log p_\\theta(t \\mid \\text{prompt}, \\texttt{[[}).

    AlpacaEval 2's default annotator reads its preference from the judge's first-token
    log-probabilities the same way. It always yields a verdict (no parse failures)
    and costs one forward pass per order, so even a small local model can be
    measured as a judge; ``replies`` hold the three log-probabilities.
    """
    orders = [(it.output_a, it.output_b) for it in items]
    if swap:
        orders += [(it.output_b, it.output_a) for it in items]
    contexts = [
        tokenizer.apply_chat_template(
            pairwise_prompt("mt_bench", it.instruction, first, second), tokenize=False, add_generation_prompt=True
        )
        + VERDICT_PREFIX
        for it, (first, second) in zip(list(items) * (2 if swap else 1), orders)
    ]
    scores = _next_letter_logprobs(model, tokenizer, contexts, "ABC", batch_size=batch_size, progress=progress)
    judgments = []
    for index, item in enumerate(items):
        labels, replies = [], []
        for k in range(2 if swap else 1):
            triple = scores[3 * (index + k * len(items)) : 3 * (index + k * len(items)) + 3]
            letter = "ABC"[max(range(3), key=lambda i: triple[i])]
            labels.append(to_item_labels(Parsed({"A": "A", "B": "B", "C": "tie"}[letter]), bool(k)))
            replies.append(" ".join(f"{t}:{ll:.3f}" for t, ll in zip("ABC", triple)))
        forward, swapped = labels[0], (labels[1] if swap else None)
        verdict = "tie" if swap and forward != swapped else forward
        judgments.append(PairwiseJudgment(item.id, forward, swapped, verdict, replies=replies))
    return PairwiseReport(judgments, name, "mt_bench", swap)


RATINGS = tuple(range(1, 11))


def _rating_distributions(
    model, tokenizer, contexts: Sequence[str], *, batch_size: int, progress: bool
) -> list[list[float]]:
    """``p(rating)`` for ratings 1..10 written right after each context (which ends with ``"[["``).

    With digits as single tokens, a rating starts with its first digit. Ratings 2-9
    are that digit. "1" starts 1, 10 and the out-of-range 11-19, told apart by the
    next token: ``p(10) = p("1") p("0" | "1")`` and ``p(1) = p("1") p(no digit | "1")``.
    One forward pass over context + "1" reads both positions. The ten values are
    renormalised: mass on tokens that are not ratings (or on 11-19) is dropped.
    """
    import math

    from .multiple_choice import encode_pair

    if not contexts:
        return []
    digit_ids = []
    for digit in "1234567890":
        _, ids = encode_pair(tokenizer, contexts[0], digit)
        if len(ids) != 1:
            raise ValueError(f"the judge's tokenizer does not write {digit!r} as one token after the prompt")
        digit_ids.append(ids[0])
    rows = []
    for context in contexts:
        context_ids, one = encode_pair(tokenizer, context, "1")
        if one != digit_ids[:1] or encode_pair(tokenizer, context, "10") != (context_ids, [digit_ids[0], digit_ids[9]]):
            raise ValueError("the judge's tokenizer merges the rating's digits with each other or with the prompt")
        rows.append(context_ids + one)
    log_probs = _log_probs_at_end(
        model,
        tokenizer,
        rows,
        digit_ids,
        positions=2,
        batch_size=batch_size,
        progress=progress,
        desc="judge (rating log-probs)",
    )
    distributions = []
    for first_digit, after_one in log_probs:
        p = [math.exp(v) for v in first_digit[:9]]  # "1".."9"
        p_digit_after_one = [math.exp(v) for v in after_one]  # "1".."9", "0"
        weights = [p[0] * max(0.0, 1 - sum(p_digit_after_one))] + p[1:] + [p[0] * p_digit_after_one[9]]
        distributions.append([w / sum(weights) for w in weights])
    return distributions


def _grade(items: Sequence[SingleItem], model, tokenizer, *, batch_size: int, progress: bool) -> list[SingleJudgment]:
    """MT-Bench single grading read from the judge's probabilities of the rating, instead of generated text.

    After the grading prompt (reference-guided where an item has a reference) and
    ``"[["``, the judge's next-token distribution gives :math:`p(r)` for
    :math:`r = 1..10`; the rating is its mean :math:`\\sum_r r\\,p(r)`, the
    probability-weighted score of G-Eval (Liu et al., 2023, arXiv:2303.16634).
    It always yields a rating (no parse failures), in one forward pass per
    answer; ``reply`` holds the distribution.
    """
    contexts = [
        tokenizer.apply_chat_template(
            mt_bench_single_prompt(it.question, it.answer, it.reference), tokenize=False, add_generation_prompt=True
        )
        + VERDICT_PREFIX
        for it in items
    ]
    distributions = _rating_distributions(model, tokenizer, contexts, batch_size=batch_size, progress=progress)
    return [
        SingleJudgment(
            item.id,
            sum(r * p for r, p in zip(RATINGS, probabilities)),
            None,
            " ".join(f"{r}:{p:.3f}" for r, p in zip(RATINGS, probabilities)),
        )
        for item, probabilities in zip(items, distributions)
    ]


def single_text_rating_prompt(instruction: str, text: str) -> str:
    """The rating request for one completion: short, because every token costs a forward pass on a CPU."""
    lines = "\n".join(f"{ASPECT_TITLES[a]}: <score>" for a in ASPECTS)
    return (
        "Rate the answer from 5 (excellent) down to 1 (very poor) on each aspect.\n\n"
        f"Instruction:\n{instruction}\n\nAnswer:\n{text}\n\nReply in exactly this form:\n{lines}"
    )


def digit_continuations(tokenizer, title: str) -> tuple[list[int], list[int]]:
    """``(suffix_ids, digit_ids)``: tokens of ``"<title>: "`` as they precede a digit, and the token of each digit 1-5.

    Found by tokenizing ``"<title>: k"`` for each k: the shared part is the
    suffix and the one extra token is the digit, whatever the tokenizer does
    with the space.
    """
    encodings = [tokenizer.encode(f"{title}: {k}", add_special_tokens=False) for k in range(1, 6)]
    shared = encodings[0][:-1]
    for k, ids in enumerate(encodings, start=1):
        if ids[:-1] != shared:
            raise ValueError(
                f"tokenizer splits '{title}: {k}' differently from '{title}: 1'; cannot read digit probabilities"
            )
    return shared, [ids[-1] for ids in encodings]


class LogprobJudge:
    """A judge over a local transformers model that reads every verdict from next-token probabilities.

    It never fails to parse and costs one forward pass per judgment, so even the 135M embedded model can be
    measured as a judge. ``name`` defaults to ``logprobs:<model>``.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 8, name: str | None = None, progress: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or f"logprobs:{getattr(model.config, '_name_or_path', '') or model.config.model_type}"
        self.progress = progress
        self.retries = 0
        self._aspect_tokens = None

    def compare(self, items: Sequence[PairwiseItem], *, swap: bool = True) -> PairwiseReport:
        """MT-Bench pairwise verdicts (see :func:`_compare`), in both orders when ``swap``."""
        return _compare(
            items,
            self.model,
            self.tokenizer,
            swap=swap,
            batch_size=self.batch_size,
            progress=self.progress,
            name=self.name,
        )

    def grade(self, items: Sequence[SingleItem]) -> list[SingleJudgment]:
        """MT-Bench single grades, the probability-weighted rating (see :func:`_grade`)."""
        return _grade(items, self.model, self.tokenizer, batch_size=self.batch_size, progress=self.progress)

    def _prompt_text(self, instruction: str, text: str) -> str:
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": single_text_rating_prompt(instruction, text)},
        ]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _score_batch(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        if self._aspect_tokens is None:
            self._aspect_tokens = {a: digit_continuations(self.tokenizer, ASPECT_TITLES[a]) for a in ASPECTS}

        tokenizer = self.tokenizer
        previous_side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            batch = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tokenizer.padding_side = previous_side
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        scores: list[dict[str, float]] = [{} for _ in texts]
        with torch.no_grad():
            prefix = self.model(
                input_ids=batch["input_ids"],
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
            )
            for aspect, (suffix_ids, digit_ids) in self._aspect_tokens.items():
                suffix = torch.tensor([suffix_ids] * len(texts), dtype=torch.long)
                suffix_positions = positions[:, -1:] + 1 + torch.arange(len(suffix_ids))
                output = self.model(
                    input_ids=suffix,
                    attention_mask=torch.cat([mask, torch.ones_like(suffix)], dim=1),
                    position_ids=suffix_positions,
                    past_key_values=copy.deepcopy(prefix.past_key_values),
                    use_cache=True,
                    logits_to_keep=1,
                )
                digit_probs = output.logits[:, -1].float().softmax(-1)[:, digit_ids]
                digit_probs = digit_probs / digit_probs.sum(-1, keepdim=True)
                expected = (digit_probs * torch.arange(1, 6, dtype=digit_probs.dtype)).sum(-1)
                for row, value in enumerate(expected.tolist()):
                    scores[row][aspect] = round(value, 3)
        return scores

    def rate(self, items: Sequence[tuple[str, str, Sequence[str]]]) -> list[list[Rating]]:
        """UltraFeedback ratings: ``items`` are ``(prompt_id, instruction, completions)``; one list per item."""
        from tqdm.auto import tqdm

        flat = [
            (i, j, self._prompt_text(instruction, text))
            for i, (_, instruction, texts) in enumerate(items)
            for j, text in enumerate(texts)
        ]
        order = sorted(range(len(flat)), key=lambda k: len(flat[k][2]))
        results: list[list[Rating | None]] = [[None] * len(texts) for _, _, texts in items]
        bar = tqdm(total=len(flat), desc=f"judge ({self.name})", disable=not self.progress or len(flat) <= 1)
        for start in range(0, len(order), self.batch_size):
            chunk = [flat[k] for k in order[start : start + self.batch_size]]
            for (i, j, _), scores in zip(chunk, self._score_batch([text for _, _, text in chunk])):
                results[i][j] = Rating(scores, rationale="expected digit under the judge's next-token distribution")
            bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]
