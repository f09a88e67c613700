"""Judges that read their verdict or rating from next-token probabilities instead of generating text.

A generating judge writes an explanation and then ``[[A]]`` or ``[[7]]``; a small
model rarely keeps to that format, so its replies are parse failures. Here the
judge's prompt is followed by the start of its answer and ``"[["``, and the
verdict or rating is read from the probabilities of the next token(s): one
forward pass per judgment, never a parse failure. AlpacaEval 2's default
annotator reads GPT-4 Turbo's first-token log-probabilities in the same spirit,
and G-Eval (Liu et al., 2023) weights each score by its probability.
"""

from __future__ import annotations

from typing import Sequence

from .judge import PairwiseItem, PairwiseJudgment, PairwiseReport, SingleItem, SingleJudgment, _to_item_labels
from .parsing import Parsed
from .prompts import mt_bench_single_prompt, pairwise_prompt

VERDICT_PREFIX = "[["


def _log_probs_at_end(model, tokenizer, rows: Sequence[Sequence[int]], token_ids: Sequence[int], *, positions: int,
                      batch_size: int, progress: bool, desc: str) -> list[list[list[float]]]:
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
        indices = order[start:start + batch_size]
        batch = torch.full((len(indices), max(len(rows[i]) for i in indices)), pad_id, dtype=torch.long)
        for r, index in enumerate(indices):
            batch[r, :len(rows[index])] = torch.tensor(list(rows[index]))
        with torch.no_grad():
            logits = model(batch.to(model.device)).logits.float().cpu()
        for r, index in enumerate(indices):
            ends = range(len(rows[index]) - positions, len(rows[index]))
            results[index] = [torch.log_softmax(logits[r, end], dim=-1)[columns].tolist() for end in ends]
    return results


def _next_letter_logprobs(model, tokenizer, contexts: Sequence[str], letters: str, *, batch_size: int,
                          progress: bool) -> list[float]:
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
    scores = _log_probs_at_end(model, tokenizer, rows, letter_ids, positions=1, batch_size=batch_size,
                               progress=progress, desc="judge (log-probs)")
    return [ll for per_context in scores for ll in per_context[0]]


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


RATINGS = tuple(range(1, 11))


def _rating_distributions(model, tokenizer, contexts: Sequence[str], *, batch_size: int,
                          progress: bool) -> list[list[float]]:
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
    log_probs = _log_probs_at_end(model, tokenizer, rows, digit_ids, positions=2, batch_size=batch_size,
                                  progress=progress, desc="judge (rating log-probs)")
    distributions = []
    for first_digit, after_one in log_probs:
        p = [math.exp(v) for v in first_digit[:9]]  # "1".."9"
        p_digit_after_one = [math.exp(v) for v in after_one]  # "1".."9", "0"
        weights = [p[0] * max(0.0, 1 - sum(p_digit_after_one))] + p[1:] + [p[0] * p_digit_after_one[9]]
        distributions.append([w / sum(weights) for w in weights])
    return distributions


def judge_single_logprobs(items: Sequence[SingleItem], model, tokenizer, *, batch_size: int = 8,
                          progress: bool = True) -> list[SingleJudgment]:
    """MT-Bench single grading read from the judge's probabilities of the rating, instead of generated text.

    After the grading prompt (reference-guided where an item has a reference) and
    ``"[["``, the judge's next-token distribution gives :math:`p(r)` for
    :math:`r = 1..10`; the rating is its mean :math:`\\sum_r r\\,p(r)`, the
    probability-weighted score of G-Eval (Liu et al., 2023, arXiv:2303.16634).
    It always yields a rating (no parse failures), in one forward pass per
    answer; ``reply`` holds the distribution.
    """
    contexts = [tokenizer.apply_chat_template(mt_bench_single_prompt(it.question, it.answer, it.reference),
                                              tokenize=False, add_generation_prompt=True) + VERDICT_PREFIX
                for it in items]
    distributions = _rating_distributions(model, tokenizer, contexts, batch_size=batch_size, progress=progress)
    return [SingleJudgment(item.id, sum(r * p for r, p in zip(RATINGS, probabilities)), None,
                           " ".join(f"{r}:{p:.3f}" for r, p in zip(RATINGS, probabilities)))
            for item, probabilities in zip(items, distributions)]
