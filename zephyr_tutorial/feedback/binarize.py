"""From per-completion ratings to (prompt, chosen, rejected) triplets in the ultrafeedback_binarized schema.

For each prompt the completion with the highest mean rating is *chosen*. The
*rejected* one is, by strategy:

- ``"random"`` (Zephyr's choice): a random completion among those rated strictly
  lower than the chosen one. Pairs are then not always "best vs. worst", which
  makes the DPO task harder and, the paper argues, the model better;
- ``"worst"``: the lowest-rated completion;
- ``"margin"``: a random completion rated at least ``margin`` below the chosen one.

Only a *finished* completion can be chosen: one the generator stopped itself (``finish_reason`` ``"stop"``, or
no recorded reason, as in data from elsewhere), never one cut at the token budget (``"length"``) or by the
weak policy (``"truncated"``); such a completion can still be the rejected one. A reply cut off mid-sentence
must never become what DPO pulls the model towards.

Tie rule: when several completions share the top mean, the first in pool order
is chosen (what ``argmax`` does). Prompts whose rated completions all tie, that
have fewer than two rated completions, or (``"margin"``) no completion far
enough below, are dropped and counted by reason. The schema of the pairs, their validation and
their train/test split are :mod:`zephyr_tutorial.schemas`'s.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

STRATEGIES = ("random", "worst", "margin")
FINISHED = (None, "stop")
"""The finish reasons of a completion that may be chosen (``None``: the data records none)."""


def chat(prompt: str, answer: str) -> list[dict]:
    """The two-message conversation stored in ``chosen``/``rejected``."""
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def group_ratings(rows: Iterable[dict], pool_order: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Rating rows grouped by ``prompt_id``, each group in pool order (ties then resolve by that order)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["prompt_id"]].append(row)
    if pool_order is not None:
        rank = {name: i for i, name in enumerate(pool_order)}
        for group in groups.values():
            group.sort(key=lambda r: rank.get(r["policy"], len(rank)))
    return dict(groups)


def select_pair(group: Sequence[dict], strategy: str = "random", *, margin: float = 1.0, seed: int = 0):
    """``(chosen_row, rejected_row)`` for one prompt's rated completions, or ``(None, reason)`` when it is dropped."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    rated = [row for row in group if row.get("mean") is not None]
    if len(rated) < 2:
        return None, "fewer than two rated completions"
    finished = [row for row in rated if row.get("finish_reason") in FINISHED]
    if not finished:
        return None, "no finished completion to choose"
    best = max(row["mean"] for row in finished)
    chosen = next(row for row in finished if row["mean"] == best)  # first in pool order among the tied top
    lower = [row for row in rated if row["mean"] < best]
    if not lower:
        return None, "all completions tie"
    rng = random.Random(f"{seed}:{chosen['prompt_id']}")
    if strategy == "worst":
        worst = min(row["mean"] for row in lower)
        return chosen, next(row for row in lower if row["mean"] == worst)
    if strategy == "margin":
        lower = [row for row in lower if best - row["mean"] >= margin]
        if not lower:
            return None, f"no completion rated {margin} or more below the chosen one"
    return chosen, rng.choice(lower)


def binarize(
    rating_rows: Iterable[dict],
    strategy: str = "random",
    *,
    margin: float = 1.0,
    seed: int = 0,
    pool_order: Sequence[str] | None = None,
) -> tuple[list[dict], Counter]:
    """Preference rows (ultrafeedback_binarized schema) and a Counter of kept / dropped-by-reason prompts."""
    pairs, report = [], Counter()
    for prompt_id, group in group_ratings(rating_rows, pool_order).items():
        chosen, rejected = select_pair(group, strategy, margin=margin, seed=seed)
        if chosen is None:
            report[f"dropped: {rejected}"] += 1
            continue
        report["kept"] += 1
        pairs.append(
            {
                "prompt": chosen["prompt"],
                "prompt_id": prompt_id,
                "chosen": chat(chosen["prompt"], chosen["text"]),
                "rejected": chat(chosen["prompt"], rejected["text"]),
                "score_chosen": round(chosen["mean"], 3),
                "score_rejected": round(rejected["mean"], 3),
                "policy_chosen": chosen["policy"],
                "policy_rejected": rejected["policy"],
            }
        )
    return pairs, report


def flip_pairs(rows: Sequence[dict], fraction: float, *, seed: int = 0) -> list[dict]:
    """A copy of ``rows`` with chosen and rejected swapped in ``round(fraction * len(rows))`` pairs drawn at random.

    The label-noise knob of notebook 05: a judge that disagrees with the truth on a share ``fraction`` of the
    pairs produces exactly such data. Swapped rows carry ``"flipped": True`` (and their scores swapped too).
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    count = round(fraction * len(rows))
    flipped = set(random.Random(seed).sample(range(len(rows)), count))
    result = []
    for index, row in enumerate(rows):
        if index in flipped:
            row = {
                **row,
                "chosen": row["rejected"],
                "rejected": row["chosen"],
                "score_chosen": row["score_rejected"],
                "score_rejected": row["score_chosen"],
                "flipped": True,
            }
            if "policy_chosen" in row:
                row["policy_chosen"], row["policy_rejected"] = row["policy_rejected"], row["policy_chosen"]
        result.append(row)
    return result
