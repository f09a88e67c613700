"""Before/after SFT: has the model learned where a Zephyr answer ends?

"Share of answers that end with EOS" is only a measure of the template when the
generation budget (``max_new_tokens``) leaves room for the answers the model was
trained to give. SFT teaches the *length* of the training replies along with the
EOS that ends them; with a budget shorter than those replies, a model that learned
both is cut before it can stop and counts as "did not stop". So the comparison
budget comes from the trained reply lengths (:func:`answer_budget`), the stop rate
is read at every budget from one long generation (:func:`ended_within`: greedy
decoding makes the answer under a small budget a prefix of the answer under a
large one), and :func:`eos_probabilities` measures the same thing without any
budget, by teacher forcing on reference replies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..backends import evaluating
from .data import assistant_token_mask


def reply_token_lengths(tokenizer, conversations: Iterable, limit: int | None = 1000) -> list[int]:
    """Tokens of every assistant reply as the trainer sees it: content + EOS, the runs of the assistant mask.

    Only the first ``limit`` conversations are read (tokenizing all of ultrachat_200k would take minutes
    and does not change the distribution).
    """
    lengths = []
    for i, messages in enumerate(conversations):
        if limit is not None and i >= limit:
            break
        _, mask = assistant_token_mask(tokenizer, messages)
        run = 0
        for bit in [*mask, 0]:  # the trailing 0 closes a reply that ends the conversation
            if bit:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
    return lengths


def answer_budget(
    reply_lengths: Sequence[int], *, headroom: float = 1.5, multiple: int = 16, cap: int | None = None
) -> int:
    """``max_new_tokens`` for a before/after comparison: ``headroom`` x the longest trained reply, rounded up.

    The headroom lets a model that imitates the training data finish even its longest reply, while one that
    rambles or loops is still cut (and reported as ``"length"``). ``cap`` bounds the cost on long-reply data
    (e.g. the profile's ``sft_max_length``).
    """
    if not reply_lengths:
        raise ValueError("no assistant replies: cannot size the budget from the training data")
    budget = multiple * math.ceil(headroom * max(reply_lengths) / multiple)
    return min(budget, cap) if cap else budget


def ended_within(answers, budgets: Iterable[int]) -> list[float]:
    """For each budget k, the share of ``answers`` that ended with EOS within k generated tokens (EOS included).

    ``answers`` are ``Completion``s or reference reply lengths (ints, from :func:`reply_token_lengths`: a
    reference reply always ends with EOS). For completions the result is valid when they were generated
    greedily with a budget >= max(budgets): their first k tokens are exactly what a k-token budget gives.
    """

    def ended(answer, k: int) -> bool:
        if isinstance(answer, int):
            return answer <= k
        return answer.finish_reason == "stop" and answer.completion_tokens <= k

    answers = list(answers)
    n = max(len(answers), 1)
    return [sum(ended(answer, k) for answer in answers) / n for k in budgets]


def eos_probabilities(model, tokenizer, conversations: Iterable) -> dict[str, list[float]]:
    """Teacher-forced p(EOS) on reference replies, one value per assistant reply.

    ``"at_end"``: the probability of EOS where the reference reply does end (should rise with SFT);
    ``"inside"``: its mean over the reply's other positions (should stay near 0: a model that learned
    "always say EOS" would raise both).
    """
    import torch

    eos = tokenizer.eos_token_id
    result: dict[str, list[float]] = {"at_end": [], "inside": []}
    for messages in conversations:
        ids, mask = assistant_token_mask(tokenizer, messages)
        with evaluating(model), torch.no_grad():
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float()
        p_eos = torch.softmax(logits, dim=-1)[:, eos].tolist()  # p_eos[t - 1] predicts token t
        inside: list[float] = []
        for t in range(1, len(ids)):
            if not mask[t]:
                continue
            if ids[t] == eos:
                result["at_end"].append(p_eos[t - 1])
                result["inside"].append(sum(inside) / len(inside) if inside else float("nan"))
                inside = []
            else:
                inside.append(p_eos[t - 1])
    return result
