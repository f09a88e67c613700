"""How much to trust the ratings: agreement with human labels, spread per policy, agreement between aspects."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..data import read_jsonl
from ..evaluation.rating import ASPECTS

PAIRWISE_FIELDS = {"id": str, "instruction": str, "output_a": str, "output_b": str}
HUMAN_FIELDS = {"id": str, "preferred": str}


def _check_preferred(row: dict, path: str, line: int) -> None:
    from ..data import DataError

    if row["preferred"] not in ("a", "b", "tie"):
        raise DataError(path, line, "preferred", f"expected 'a', 'b' or 'tie', got {row['preferred']!r}")


def load_human_pairs(pairwise_path, labels_path) -> list[dict]:
    """Pairs of notebook 01 joined with their human label: rows ``id, instruction, output_a, output_b, preferred``."""
    labels = {row["id"]: row["preferred"] for row in read_jsonl(labels_path, HUMAN_FIELDS, _check_preferred)}
    pairs = read_jsonl(pairwise_path, PAIRWISE_FIELDS)
    unlabelled = [row["id"] for row in pairs if row["id"] not in labels]
    if unlabelled:
        raise ValueError(f"{labels_path}: no human label for pair(s) {', '.join(unlabelled[:5])}")
    return [dict(row, preferred=labels[row["id"]]) for row in pairs]


def preference_from_means(mean_a: float | None, mean_b: float | None, tie_tolerance: float = 0.0) -> str | None:
    """``"a"``, ``"b"`` or ``"tie"`` from two mean ratings; ``None`` when either rating is missing."""
    if mean_a is None or mean_b is None:
        return None
    if abs(mean_a - mean_b) <= tie_tolerance:
        return "tie"
    return "a" if mean_a > mean_b else "b"


def judge_agreement(judge, pairs: Sequence[dict], *, tie_tolerance: float = 0.0, batch: int = 8) -> dict:
    """Rate both outputs of each human-labelled pair and compare the judge's preference with the human's.

    ``agreement`` is measured on the pairs where the human preferred a side and
    the judge's ratings exist; chance is 0.5 on those. Returns the counts too.
    """
    verdicts = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        items = [(row["id"], row["instruction"], [row["output_a"], row["output_b"]]) for row in chunk]
        for row, (rating_a, rating_b) in zip(chunk, judge.rate(items)):
            verdicts.append(
                (row, preference_from_means(rating_a.mean, rating_b.mean, tie_tolerance), rating_a, rating_b)
            )
    decided = [(row, verdict) for row, verdict, _, _ in verdicts if row["preferred"] != "tie" and verdict is not None]
    agree = sum(verdict == row["preferred"] for row, verdict in decided)
    return {
        "pairs": len(pairs),
        "human_ties": sum(row["preferred"] == "tie" for row in pairs),
        "judge_missing": sum(verdict is None for _, verdict, _, _ in verdicts),
        "judge_ties_on_decided": sum(verdict == "tie" for _, verdict in decided),
        "decided": len(decided),
        "agree": agree,
        "agreement": agree / len(decided) if decided else float("nan"),
        "verdicts": [
            {
                "id": row["id"],
                "human": row["preferred"],
                "judge": verdict,
                "mean_a": rating_a.mean,
                "mean_b": rating_b.mean,
            }
            for row, verdict, rating_a, rating_b in verdicts
        ],
    }


def scores_by_policy(rating_rows: Iterable[dict]) -> dict[str, dict[str, list[float]]]:
    """``{policy: {aspect: [scores]}}`` of the rated completions (missing ones left out)."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rating_rows:
        if row.get("missing_reason") is None and row.get("scores"):
            for aspect in ASPECTS:
                table[row["policy"]][aspect].append(row["scores"][aspect])
    return {policy: dict(aspects) for policy, aspects in table.items()}


def aspect_correlations(rating_rows: Iterable[dict]):
    """Pearson correlation matrix (4x4 numpy array, in :data:`ASPECTS` order) between aspect scores."""
    import numpy as np

    matrix = np.array(
        [
            [row["scores"][a] for a in ASPECTS]
            for row in rating_rows
            if row.get("missing_reason") is None and row.get("scores")
        ],
        dtype=float,
    )
    if len(matrix) < 2:
        raise ValueError("need at least two rated completions to correlate aspects")
    return np.corrcoef(matrix, rowvar=False)


def missing_reasons(rating_rows: Iterable[dict]) -> Counter:
    """How many completions are missing a rating, by reason."""
    return Counter(row["missing_reason"] for row in rating_rows if row.get("missing_reason"))
