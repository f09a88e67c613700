"""The AI-feedback pipeline end to end, each stage resumable: pool -> ratings -> preference pairs.

Files in the output folder::

    completions.jsonl   one row per (prompt, policy)          (resumable)
    ratings.jsonl       one row per completion, the judge's   (resumable)
    train_prefs.jsonl   binarized pairs, ultrafeedback_binarized schema
    test_prefs.jsonl
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..data import DataError, ResumableJsonlWriter, iter_jsonl, read_jsonl, unique_values, write_jsonl
from ..evaluation.rating import ASPECTS, Rating
from ..schemas import split_by_prompt_id
from .binarize import binarize

PROMPT_FIELDS = {"id": str, "prompt": str}


def read_prompts(path) -> list[dict]:
    """The prompt rows ``{id, prompt}`` of ``path``: ids unique (a repeated one would be skipped as already
    answered, silently) and neither field empty; a bad row raises :class:`~zephyr_tutorial.data.DataError`."""
    unique_id = unique_values("id")

    def validate(row: dict, where: str, line: int) -> None:
        for name in PROMPT_FIELDS:
            if not row[name].strip():
                raise DataError(where, line, name, "empty")
        unique_id(row, where, line)

    return read_jsonl(path, PROMPT_FIELDS, validate)


def rating_row(completion: dict, rating: Rating, judge_name: str) -> dict:
    """One line of ``ratings.jsonl``: the completion, its four aspect scores, their mean, or why it is missing."""
    return {
        "id": completion["id"],
        "prompt_id": completion["prompt_id"],
        "prompt": completion["prompt"],
        "policy": completion["policy"],
        "principle": completion.get("principle"),
        "text": completion["text"],
        "finish_reason": completion.get("finish_reason"),
        "judge": judge_name,
        "scores": rating.scores,
        "mean": None if rating.mean is None else round(rating.mean, 3),
        "rationale": rating.rationale,
        "missing_reason": rating.missing_reason,
    }


def rate_completions(completions_path, writer: ResumableJsonlWriter, judge, *, prompts_per_call: int = 8) -> Counter:
    """Rate every completion of ``completions_path`` not yet in ``writer``; return counts (rated / missing).

    ``judge`` is any :class:`~zephyr_tutorial.evaluation.judges.Judge`; it sees all unrated completions of a
    prompt together (a generating judge shuffles them in one request), so run it after the pool has finished
    for those prompts. An unparseable reply is written as a *missing* rating (with the reason); a request
    that failed (no reply at all) is not written but counted as ``failed``, so a rerun asks again.
    """
    from tqdm.auto import tqdm

    groups: dict[str, list[dict]] = defaultdict(list)
    for row in iter_jsonl(completions_path):
        if row["id"] not in writer.done_ids:
            groups[row["prompt_id"]].append(row)
    counts: Counter = Counter()
    prompt_ids = list(groups)
    bar = tqdm(total=len(prompt_ids), desc=f"rate ({judge.name})")
    for start in range(0, len(prompt_ids), prompts_per_call):
        chunk = [groups[pid] for pid in prompt_ids[start : start + prompts_per_call]]
        items = [(group[0]["prompt_id"], group[0]["prompt"], [row["text"] for row in group]) for group in chunk]
        for group, ratings in zip(chunk, judge.rate(items)):
            for completion, rating in zip(group, ratings):
                if rating.request_failed:
                    counts["failed"] += 1
                    continue
                writer.append(rating_row(completion, rating, judge.name))
                counts["missing" if rating.missing_reason else "rated"] += 1
        bar.update(len(chunk))
    bar.close()
    return counts


def write_preferences(
    ratings_path,
    out_dir,
    *,
    strategy: str = "random",
    margin: float = 1.0,
    seed: int = 0,
    test_fraction: float = 0.1,
    pool_order: Sequence[str] | None = None,
) -> dict:
    """Binarize ``ratings_path`` into ``train_prefs.jsonl``/``test_prefs.jsonl`` in ``out_dir``; return the counts."""
    pairs, report = binarize(iter_jsonl(ratings_path), strategy, margin=margin, seed=seed, pool_order=pool_order)
    train, test = split_by_prompt_id(pairs, test_fraction, seed)
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "train_prefs.jsonl", train)
    write_jsonl(out_dir / "test_prefs.jsonl", test)
    return {**dict(report), "train_pairs": len(train), "test_pairs": len(test)}


def rating_table(ratings_path) -> list[dict]:
    """Flat rows ``policy, aspect, score`` of the rated completions (for plots and summaries)."""
    return [
        {"policy": row["policy"], "aspect": aspect, "score": row["scores"][aspect]}
        for row in iter_jsonl(ratings_path)
        if row.get("missing_reason") is None
        for aspect in ASPECTS
    ]


def format_pair(row: dict, width: int = 240) -> str:
    """A preference row as readable text: the prompt, then chosen and rejected answers with their scores."""

    def clip(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 3] + "..."

    chosen_by = f" ({row['policy_chosen']})" if "policy_chosen" in row else ""
    rejected_by = f" ({row['policy_rejected']})" if "policy_rejected" in row else ""
    return (
        f"PROMPT   {clip(row['prompt'])}\n"
        f"CHOSEN   [{row['score_chosen']:.2f}]{chosen_by} {clip(row['chosen'][-1]['content'])}\n"
        f"REJECTED [{row['score_rejected']:.2f}]{rejected_by} {clip(row['rejected'][-1]['content'])}"
    )
