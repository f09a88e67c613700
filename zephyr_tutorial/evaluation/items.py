"""What judges read and write: pairwise and single-grading items, their loaders, judgments and reports.

Position bias: judges favour the answer shown first (or second). A judge that is asked to
``compare(items, swap=True)`` sees each pair in both orders; a verdict counts only when both
orders agree, and an inconsistent pair counts as a tie, as MT-Bench does (:func:`combine_orders`).
The judges themselves are in :mod:`zephyr_tutorial.evaluation.judges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data import DataError, read_jsonl, unique_values
from .metrics import WinRate, win_rate
from .parsing import Parsed


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
    non_empty, unique_id = _non_empty(list(fields)), unique_values("id")

    def validate(row: dict, file: str, line: int) -> None:
        non_empty(row, file, line)
        unique_id(row, file, line)  # named at the line that repeats it, like every other bad row

    rows = read_jsonl(path, fields=fields, validate=validate)
    return [
        PairwiseItem(r["id"], r["instruction"], r["output_a"], r["output_b"], r.get("category", "general"))
        for r in rows
    ]


def load_single_items(path) -> list[SingleItem]:
    """Rows ``{"id", "instruction", "output"[, "reference", "category"]}`` to grade one by one; ids must be unique.

    A pairwise row (``output_a``, ``output_b`` instead of ``output``) gives both its answers,
    ``"<id>:a"`` and ``"<id>:b"`` (:func:`single_items_from_pairs`), as notebook 01 grades them. An empty
    instruction or answer is refused with its file, line and field, as :func:`load_pairwise_items` refuses one:
    a judge would rate nothing and the mean would count it.
    """
    unique_id = unique_values("id")  # a repeated id would be graded twice and one rating overwritten

    def validate(row: dict, file: str, line: int) -> None:
        answers = ("output_a", "output_b") if "output_a" in row else ("output",)
        for name in answers:
            if not isinstance(row.get(name), str):
                raise DataError(file, line, name, "missing (give output, or output_a and output_b)")
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise DataError(file, line, "reference", f"must be a string, got {type(reference).__name__}")
        _non_empty(["id", "instruction", *answers])(row, file, line)
        unique_id(row, file, line)

    items: list[SingleItem] = []
    for row in read_jsonl(path, fields={"id": str, "instruction": str}, validate=validate):
        category = row.get("category", "general")
        if "output_a" in row:
            pair = PairwiseItem(row["id"], row["instruction"], row["output_a"], row["output_b"], category)
            items += single_items_from_pairs([pair], {row["id"]: row["reference"]} if row.get("reference") else None)
        else:
            items.append(SingleItem(row["id"], row["instruction"], row["output"], row.get("reference"), category))
    return items


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

    def first_order_only(self) -> PairwiseReport:
        """The report a judge would give without the swap: each pair's verdict from the first order alone."""
        judgments = [
            PairwiseJudgment(j.id, j.forward, None, j.forward, j.errors[:1], j.replies[:1]) for j in self.judgments
        ]
        return PairwiseReport(judgments, self.judge, self.prompt, swap=False)

    def to_dict(self) -> dict:
        rate = self.win_rate("a")
        return {
            "judge": self.judge,
            "prompt": self.prompt,
            "swap": self.swap,
            "n": len(self.judgments),
            "parse_failures": self.parse_failures,
            "win_rate_a": rate.value,
            "win_rate_a_stderr": rate.stderr,
            "wins_a": rate.wins,
            "ties": rate.ties,
            "wins_b": rate.losses,
            "flip_rate": self.flip_rate if self.swap else None,
        }


def to_item_labels(parsed: Parsed, swapped: bool) -> str | None:
    """Map a parsed reply (A/B/tie or model_1/model_2, by position) to the item's labels a/b/tie."""
    if not parsed.ok:
        return None
    position = {"A": 0, "model_1": 0, "B": 1, "model_2": 1}.get(parsed.value)
    if position is None:
        return "tie"
    return ("a", "b")[position ^ int(swapped)]


def combine_orders(item_id: str, parsed: Sequence[Parsed], replies: Sequence[str]) -> PairwiseJudgment:
    """One pair's judgment from the parsed reply of each order (the forward one first, the swapped one second)."""
    labels = [to_item_labels(p, swapped=bool(k)) for k, p in enumerate(parsed)]
    forward, swapped = labels[0], (labels[1] if len(labels) > 1 else None)
    if any(label is None for label in labels):
        verdict = None
    elif len(labels) > 1 and forward != swapped:
        verdict = "tie"
    else:
        verdict = forward
    return PairwiseJudgment(
        item_id, forward, swapped, verdict, errors=[p.error for p in parsed if not p.ok], replies=list(replies)
    )


@dataclass
class SingleJudgment:
    id: str
    rating: float | None
    error: str | None
    reply: str


REFERENCE_CATEGORIES = ("math", "reasoning")
"""Categories MT-Bench grades against a reference answer, because judges grade wrong math and logic generously."""


def reference_answers(
    pairs: Sequence[PairwiseItem], human_labels: dict[str, str], *, categories: Sequence[str] = REFERENCE_CATEGORIES
) -> dict[str, str]:
    """``{pair id: reference}`` for pairs of ``categories``: the answer a person labelled better.

    MT-Bench's references are GPT-4 answers checked by its authors; ours are the
    answers our human labels (with their one-line reasons) mark as correct. Pairs
    the human called a tie give no reference.
    """
    return {
        p.id: p.output_a if human_labels[p.id] == "a" else p.output_b
        for p in pairs
        if p.category in categories and human_labels.get(p.id) in ("a", "b")
    }


def single_items_from_pairs(
    pairs: Sequence[PairwiseItem], references: dict[str, str] | None = None
) -> list[SingleItem]:
    """Both answers of every pair as single-grading items ``"<pair id>:a"`` and ``"<pair id>:b"``."""
    references = references or {}
    return [
        SingleItem(f"{p.id}:{side}", p.instruction, answer, references.get(p.id), p.category)
        for p in pairs
        for side, answer in (("a", p.output_a), ("b", p.output_b))
    ]


def ratings_by_human_label(
    judgments: Sequence[SingleJudgment], items: Sequence[SingleItem], human_labels: dict[str, str]
) -> dict[str, list[float]]:
    """Ratings of the answers people labelled better and worse, apart for reference-guided grading.

    ``judgments`` and ``items`` are ids ``"<pair id>:a|b"`` (see :func:`single_items_from_pairs`);
    pairs the human called a tie and unparsed ratings are left out. A judge worth its
    name rates the "better" groups higher.
    """
    graded_with_reference = {it.id for it in items if it.reference is not None}
    groups: dict[str, list[float]] = {}
    for judgment in judgments:
        pair_id, side = judgment.id.rsplit(":", 1)
        label = human_labels.get(pair_id)
        if judgment.rating is None or label not in ("a", "b"):
            continue
        how = "reference-guided" if judgment.id in graded_with_reference else "no reference"
        groups.setdefault(f"{'better' if side == label else 'worse'}, {how}", []).append(judgment.rating)
    return dict(sorted(groups.items()))
