"""Cleaning synthetic dialogues the way ultrachat_200k was cleaned for Zephyr.

The Zephyr authors started from UltraChat (1.5M dialogues written by
gpt-3.5-turbo) and noticed two problems that a model would learn verbatim:
sentences that start in lower case, and replies such as "I don't have
personal opinions". :func:`filter_dialogues` applies, in this order:

1. **structure**: messages alternate user/assistant, end with the assistant, no empty turn;
2. **truncated**: a reply cut at the token limit (recorded by the generator, else guessed);
3. **length**: replies too short to teach anything, dialogues too long for training;
4. **disclaimer**: assistant replies matching configurable disclaimer patterns;
5. **exact duplicate** and 6. **near duplicate** (MinHash estimate of word-shingle Jaccard);

and **truecases** every message of the rows it keeps. Nothing disappears
silently: the returned :class:`FilterReport` counts the rows each step removed,
with examples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..schemas import check_sft_row, prompt_id_for
from .similarity import minhash_signature, shingles

# --------------------------------------------------------------------------- truecasing

_PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"  # fenced code block (an unterminated one runs to the end)
    r"|`[^`\n]+`"  # inline code
    r"|\b(?:https?|ftp)://\S*[^\s.,;:!?)\]'\"]|\bwww\.\S*[^\s.,;:!?)\]'\"]"  # URLs, without trailing punctuation
    r"|\S+@\S+\.\w+",  # e-mail addresses
    re.DOTALL,
)
# Code pasted without a fence (a user's "explain this code" passage): a sentence-start rule would turn
# "def total(prices):" into "Def total(prices):". Indented lines and lines shaped like definitions,
# imports or assignments are kept as they are.
_UNFENCED_CODE_LINE = re.compile(
    r"^(?:[ ]{4}|\t).*$"  # indented block
    r"|^[ \t]*(?:def|class)[ \t]+\w+[ \t]*[(:].*$"  # def f(...):, class C:
    r"|^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import|import[ \t]+[\w.]+)\b[\w., \t]*$"  # imports
    r"|^[ \t]*[A-Za-z_][\w.\[\]]*[ \t]*(?:[-+*/%]?=)[ \t]*\S.*$",  # x = 0, total += p
    re.MULTILINE,
)
_SENTENCE_START = re.compile(
    r"(?P<before>^\s*|(?P<punct>[.!?]+)[\"'”’)\]]*\s+)(?P<open>[\"'“‘(\[]?)(?P<word>[a-z][\w'’\-]*)"
)
_LOWERCASE_I = re.compile(r"(?<![\w'’\-])i(?=(?:['’](?:m|ve|ll|d))?(?![\w'’\-]))")
ABBREVIATIONS = frozenset(
    "e.g. i.e. etc. vs. cf. approx. a.m. p.m. mr. mrs. ms. dr. st. fig. al. ca. incl. esp. resp.".split()
)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for pattern in (_PROTECTED, _UNFENCED_CODE_LINE) for match in pattern.finditer(text)]


def _inside(position: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _looks_intentionally_lowercase(word: str, rest: str) -> bool:
    """iPhone, mRNA, x86, snake_case, file.txt, module.attr, print(...), path/to: lower case on purpose."""
    if any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word) or "_" in word:
        return True
    return bool(re.match(r"\(|[./:@]\w", rest))


def _ends_with_abbreviation_or_ellipsis(text_before: str, punct: str) -> bool:
    if punct.startswith("..") or text_before.endswith("…"):
        return True
    token = (text_before.split() or [""])[-1].lower()
    # "3. apples" in a numbered list, "v2." and the like are not sentence ends
    return token in ABBREVIATIONS or token.rstrip(".").isdigit()


def truecase(text: str) -> str:
    """Upper-case the first letter of each sentence and the pronoun "i", leaving code, URLs and odd words alone.

    A sentence starts at the beginning of the text or after ``.``, ``!`` or
    ``?`` followed by white space, unless the dot ends an abbreviation
    ("e.g."), an ellipsis or a list number. Words that are lower case on
    purpose (iPhone, mRNA, snake_case, file.txt, ``print(``) and everything
    inside code blocks, inline code, unfenced code lines (indented, ``def``/``class``,
    imports, assignments), URLs and e-mail addresses are kept.
    """
    spans = _protected_spans(text)
    chars = list(text)
    for match in _SENTENCE_START.finditer(text):
        word_start = match.start("word")
        if _inside(word_start, spans):
            continue
        if match.group("punct"):
            punct_start = match.start("punct")
            if _inside(punct_start, spans) or _ends_with_abbreviation_or_ellipsis(
                text[: punct_start + 1], match.group("punct")
            ):
                continue
        if _looks_intentionally_lowercase(match.group("word"), text[match.end("word") :]):
            continue
        chars[word_start] = chars[word_start].upper()
    for match in _LOWERCASE_I.finditer(text):
        if not _inside(match.start(), spans):
            chars[match.start()] = "I"
    return "".join(chars)


# --------------------------------------------------------------------------- the filters

DEFAULT_DISCLAIMER_PATTERNS: tuple[str, ...] = (
    r"\bI (?:don['’]t|do not) have (?:personal|emotions|feelings|opinions|beliefs|preferences|a personal|the ability|access to real-time)",
    r"\bI (?:don['’]t|do not|cannot|can['’]t) (?:experience|feel) (?:emotions|feelings)",
    r"\bas an AI(?: language model| assistant| model)?\b",
    r"\bI(?: am|['’]m) (?:just |only )?an? (?:AI|artificial intelligence|language model)\b",
    r"\bI am not capable of (?:having|feeling|forming) (?:personal|emotions|opinions)",
)


@dataclass(frozen=True)
class FilterConfig:
    """What counts as a bad dialogue. Lengths are in words (whitespace-separated)."""

    disclaimer_patterns: Sequence[str] = DEFAULT_DISCLAIMER_PATTERNS
    min_assistant_words: int = 3
    max_dialogue_words: int = 2000
    min_assistant_turns: int = 1
    detect_truncation_heuristically: bool = True
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 5
    num_permutations: int = 128
    truecase: bool = True
    examples_per_filter: int = 3


@dataclass
class FilterStep:
    name: str
    reason: str
    removed: int = 0
    examples: list[dict] = field(default_factory=list)
    """Up to ``examples_per_filter`` removed rows, each ``{"row": ..., "detail": why}``."""


@dataclass
class FilterReport:
    input_rows: int
    steps: list[FilterStep]
    truecased_rows: int
    output_rows: int

    def as_rows(self) -> list[tuple[str, int, str]]:
        """``(filter, rows removed, reason)`` for every step."""
        return [(step.name, step.removed, step.reason) for step in self.steps]

    def __str__(self) -> str:
        width = max(len(step.name) for step in self.steps)
        lines = [f"{'input':<{width}}  {self.input_rows:>6}"]
        lines += [f"{step.name:<{width}}  {-step.removed:>6}  {step.reason}" for step in self.steps]
        lines.append(f"{'kept':<{width}}  {self.output_rows:>6}  ({self.truecased_rows} rows truecased)")
        return "\n".join(lines)


def _assistant_texts(row: dict) -> list[str]:
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def structure_problem(messages: Sequence[dict]) -> str | None:
    """Why a chat cannot be an SFT example (or ``None``): roles must alternate, start with user, end with assistant."""
    turns = [m for m in messages if m["role"] != "system"]
    if any(m["role"] == "system" for m in messages[1:]):
        return "system message after the first position"
    if not turns or turns[0]["role"] != "user":
        return "does not start with a user message"
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            return f"turn {i} is {message['role']!r}, expected {expected!r}"
        if not message["content"].strip():
            return f"turn {i} ({expected}) is empty"
    if turns[-1]["role"] != "assistant":
        return "ends with a user message (no answer)"
    return None


def looks_truncated(text: str) -> bool:
    """A reply that stops mid-sentence: last character a letter, digit, comma, colon or opening bracket.

    Code blocks must be closed. A heuristic for data without recorded finish reasons.
    """
    stripped = text.rstrip()
    if stripped.count("```") % 2 == 1:
        return True
    return bool(stripped) and (stripped[-1].isalnum() or stripped[-1] in ",:;([{-") and not stripped.endswith("```")


def truncation_problem(row: dict, heuristic: bool) -> str | None:
    reasons = row.get("finish_reasons")
    if isinstance(reasons, list) and "length" in reasons:
        return f"assistant turn {reasons.index('length')} hit the token limit"
    if heuristic:
        for i, text in enumerate(_assistant_texts(row)):
            if looks_truncated(text):
                return f"assistant turn {i} ends mid-sentence: …{text.rstrip()[-40:]!r}"
    return None


def length_problem(row: dict, config: FilterConfig) -> str | None:
    replies = _assistant_texts(row)
    if len(replies) < config.min_assistant_turns:
        return f"{len(replies)} assistant turns < {config.min_assistant_turns}"
    for i, text in enumerate(replies):
        if len(text.split()) < config.min_assistant_words:
            return f"assistant turn {i} has {len(text.split())} words < {config.min_assistant_words}"
    total = sum(len(m["content"].split()) for m in row["messages"])
    if total > config.max_dialogue_words:
        return f"{total} words > {config.max_dialogue_words}"
    return None


def disclaimer_problem(row: dict, patterns: Sequence[re.Pattern]) -> str | None:
    for i, text in enumerate(_assistant_texts(row)):
        for pattern in patterns:
            found = pattern.search(text)
            if found:
                return f"assistant turn {i}: {found.group(0)!r}"
    return None


def normalized_dialogue(row: dict) -> str:
    """Case- and whitespace-insensitive text of a dialogue (what exact deduplication compares)."""
    return "\n".join(f"{m['role']}: {' '.join(m['content'].lower().split())}" for m in row["messages"])


def truecase_row(row: dict) -> dict:
    """A copy of ``row`` with every message (and ``prompt``) truecased."""
    messages = [{**m, "content": truecase(m["content"])} for m in row["messages"]]
    out = {**row, "messages": messages}
    if isinstance(row.get("prompt"), str):
        out["prompt"] = truecase(row["prompt"])
        # ultrachat_200k's prompt_id is the SHA-256 of the prompt: keep that true when truecasing changed the prompt
        # (an id that was not such a hash is left alone)
        if out["prompt"] != row["prompt"] and row.get("prompt_id") == prompt_id_for(row["prompt"]):
            out["prompt_id"] = prompt_id_for(out["prompt"])
    return out


class _NearDuplicateIndex:
    r"""MinHash with LSH banding: signatures are cut into ``bands`` bands of ``r`` rows; rows sharing a band are
    candidates, and a candidate is a duplicate when the estimated Jaccard is at least ``threshold``.
    The chance that two sets of Jaccard :math:`s` become candidates is :math:`1 - (1 - s^r)^{bands}`.
    """

    def __init__(self, threshold: float, num_permutations: int, shingle_size: int, rows_per_band: int = 4):
        self.threshold, self.num_permutations, self.shingle_size = threshold, num_permutations, shingle_size
        self.rows_per_band = rows_per_band
        self.buckets: dict[tuple, list[int]] = {}
        self.signatures: list = []

    def find_or_add(self, text: str) -> tuple[int, float] | None:
        """Index of a kept text this one nearly duplicates (with the estimate), else add it and return None."""
        signature = minhash_signature(shingles(text, self.shingle_size), self.num_permutations)
        keys = [
            (start, signature[start : start + self.rows_per_band].tobytes())
            for start in range(0, self.num_permutations, self.rows_per_band)
        ]
        for candidate in sorted({i for key in keys for i in self.buckets.get(key, [])}):
            similarity = float((self.signatures[candidate] == signature).mean())
            if similarity >= self.threshold:
                return candidate, similarity
        index = len(self.signatures)
        self.signatures.append(signature)
        for key in keys:
            self.buckets.setdefault(key, []).append(index)
        return None


def filter_dialogues(
    rows: Iterable[dict], config: FilterConfig = FilterConfig(), source: str = "<rows>"
) -> tuple[list[dict], FilterReport]:
    """Apply the filters in order and truecase what is kept; return ``(kept rows, report)``.

    Rows must have the ultrachat_200k shape (``prompt``, ``prompt_id``,
    ``messages``); a malformed row raises :class:`~zephyr_tutorial.data.DataError` naming ``source``
    and its position rather than being dropped. Duplicates keep the first copy.
    """
    rows = list(rows)
    for position, row in enumerate(rows, start=1):
        check_sft_row(row, source, position)
    patterns = [re.compile(p, re.IGNORECASE) for p in config.disclaimer_patterns]
    steps = {
        "structure": FilterStep("structure", "roles out of order, empty turn or no final answer"),
        "truncated": FilterStep("truncated", "a reply was cut at the token limit"),
        "length": FilterStep("length", "a reply too short or the dialogue too long"),
        "disclaimer": FilterStep("disclaimer", "an 'as an AI / I don't have personal…' reply"),
        "exact duplicate": FilterStep("exact duplicate", "same dialogue as an earlier row (case/space-insensitive)"),
        "near duplicate": FilterStep(
            "near duplicate", f"MinHash Jaccard ≥ {config.near_duplicate_threshold} with an earlier row"
        ),
    }

    def remove(step: str, row: dict, detail: str) -> None:
        entry = steps[step]
        entry.removed += 1
        if len(entry.examples) < config.examples_per_filter:
            entry.examples.append({"row": row, "detail": detail})

    seen_exact: dict[str, int] = {}
    near = _NearDuplicateIndex(config.near_duplicate_threshold, config.num_permutations, config.shingle_size)
    kept: list[dict] = []
    truecased = 0
    for row in rows:
        problem = structure_problem(row["messages"])
        if problem:
            remove("structure", row, problem)
            continue
        problem = truncation_problem(row, config.detect_truncation_heuristically)
        if problem:
            remove("truncated", row, problem)
            continue
        problem = length_problem(row, config)
        if problem:
            remove("length", row, problem)
            continue
        problem = disclaimer_problem(row, patterns)
        if problem:
            remove("disclaimer", row, problem)
            continue
        key = normalized_dialogue(row)
        if key in seen_exact:
            remove("exact duplicate", row, f"same as kept row {seen_exact[key]} ({kept[seen_exact[key]]['prompt_id']})")
            continue
        duplicate = near.find_or_add(key)
        if duplicate is not None:
            index, similarity = duplicate
            remove("near duplicate", row, f"≈{similarity:.2f} Jaccard with kept row {index}")
            continue
        seen_exact[key] = len(kept)
        if config.truecase:
            cased = truecase_row(row)
            truecased += cased != row
            row = cased
        kept.append(row)
    report = FilterReport(len(rows), list(steps.values()), truecased, len(kept))
    return kept, report
