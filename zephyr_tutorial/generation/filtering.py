"""Cleaning synthetic dialogues the way ultrachat_200k was cleaned for Zephyr.

The Zephyr authors started from UltraChat (1.5M dialogues written by
gpt-3.5-turbo) and noticed two problems that a model would learn verbatim:
sentences that start in lower case, and replies such as "I don't have
personal opinions". The chain applies, in this order (a row is removed by the
first filter that objects):

1. **structure**: messages alternate user/assistant, end with the assistant, no empty turn;
2. **truncated**: a turn the generator recorded as cut at the token limit (``finish_reason == "length"``, for
   assistant replies and simulated user turns). Data without that record (all of ultrachat_200k) can be
   screened by a heuristic, which by default only *reports* what it would remove (:func:`truncation_suspect`);
3. **length**: dialogues too long for training (and, if asked, replies too short);
4. **disclaimer**: assistant replies matching configurable disclaimer patterns;
5. **exact duplicate** and 6. **near duplicate** (MinHash estimate of word-shingle Jaccard, LSH for candidates);

and **truecases** every message of the rows it keeps. Nothing disappears
silently: the returned :class:`FilterReport` counts the rows each step removed
and lists every one of them (``report.rejects``: position, filter, reason, row;
``write_rejects`` saves them as JSONL), and it checks that kept + removed = input.

Two runners share these checks: :func:`filter_dialogues` (a list in, plain Python, the one to read) and
:func:`filter_dataset` (a ``datasets.Dataset`` or a stream, ``map`` with ``num_proc`` processes, ``datasketch``
LSH; ``benchmarks/filtering_at_scale.py`` runs it on 200k dialogues and compares it with the reference).
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..data import DataError
from ..schemas import check_sft_row, prompt_id_for
from .similarity import datasketch_signature, estimated_jaccard, minhash_signature, shingle_hashes, shingles

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
    r"|^[ \t]*[A-Za-z_][\w.\[\]]*[ \t]*(?:[-+*/%]?=)[ \t]*\S.*$"  # x = 0, total += p
    # a shell command on its own line: a program no sentence starts with, or a lower-case word with a -flag
    r"|^[ \t]*(?:\$[ \t]+)?(?:pip3?|npm|npx|git|ls|cd|conda|sudo|apt-get|curl|wget|mkdir|chmod|kubectl)[ \t].*$"
    r"|^[ \t]*(?:\$[ \t]+)?[a-z][\w.-]*(?:[ \t]+[^\s-]\S*)*[ \t]+--?[A-Za-z][\w-]*(?:[ \t=].*)?$",
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
    imports, assignments, shell commands on their own line), URLs and e-mail addresses are kept.
    """
    spans: list[tuple[int, int]] | None = None  # computed on the first candidate: most texts have none
    chars: list[str] | None = None
    for match in _SENTENCE_START.finditer(text):
        spans = _protected_spans(text) if spans is None else spans
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
        chars = list(text) if chars is None else chars
        chars[word_start] = chars[word_start].upper()
    for match in _LOWERCASE_I.finditer(text):
        spans = _protected_spans(text) if spans is None else spans
        if not _inside(match.start(), spans):
            chars = list(text) if chars is None else chars
            chars[match.start()] = "I"
    return text if chars is None else "".join(chars)


# --------------------------------------------------------------------------- truncation without a recorded reason

_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|[a-zA-Z][.)])\s+\S")
_URL_OR_ADDRESS = re.compile(
    r"(?:https?://|ftp://|www\.)\S+$|\S+@\S+\.\w+$"
    r"|^(?:[\w-]+\.)+[a-zA-Z]{2,}(?:/\S*)?$"  # a bare domain or path: example.org, github.com/org/project
)
_NUMBER = re.compile(r"[-+]?[\d.,:/%]*\d[%°]?$")
UNITS = frozenset(
    "km m cm mm kg g mg lb lbs oz mi ft l ml kWh mph km/h kph h hrs min s ms MB GB TB KB °C °F K Hz kHz MHz GHz".split()
)
"""Units after a number ("about 14 km"): a measurement that ends the reply, like a bare number."""
# a command or code line shown after an introducing colon ("run this:\n\npip install --upgrade x y z"):
# it starts in lower case (or with a path or prompt sign) and holds a character prose rarely has
_COMMAND_LINE = re.compile(r"^[a-z$./~][^\s]*\s.*(?:--|\s-\w|[=(|/$<>{;_\\])")
_OPEN_ENDINGS = ",:;([{-–—/&+"
"""Last characters that leave a sentence open."""
SHORT_ANSWER_WORDS = 12
"""A reply of at most this many words is a short answer ("Paris", "42", "The capital of France is Paris"):
the heuristic never fires on one, with or without a final full stop."""
SHORT_LINE_WORDS = 5
"""A last line of at most this many words is a sign-off, a name, a title or an answer ("Best regards,\\nEmily")."""
VERSE_LINE_WORDS = 12


def _no_spaces_script(character: str) -> bool:
    """Letters of scripts written without spaces (CJK, kana, Thai...): a sentence end cannot be judged by words."""
    import unicodedata

    name = unicodedata.name(character, "")
    return any(script in name for script in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER"))


def _title_case(line: str) -> bool:
    tokens = [t for t in line.split() if t[:1].isalpha()]
    return bool(tokens) and sum(t[0].isupper() for t in tokens) >= 0.6 * len(tokens)


def truncation_suspect(text: str) -> str | None:
    """Why ``text`` *looks* cut off (for data without a recorded finish reason), or ``None``.

    A heuristic, deliberately conservative: it fires on an unclosed code block, and on a reply of more than
    :data:`SHORT_ANSWER_WORDS` words whose last line is prose of more than :data:`SHORT_LINE_WORDS` words ending
    in a letter, a digit or an open mark (``, : ; ( -``). It never fires on a closed code block, a list item, a line
    of verse (a last paragraph of short lines, or a line of `` / ``-separated verse), a short answer, a sign-off,
    a one-line title, a URL, a bare domain, a number or a measurement ("14 km") at the end, a command shown on its
    own after a colon ("run this:" then ``pip install --upgrade …``), nor on scripts written without spaces.
    A long sentence without a final full stop still fires: from the text alone it cannot be told from one cut off.
    Verify with the evidence: on the shipped raw data (which records finish reasons) notebook 02 counts what it
    catches and what it flags wrongly.
    """
    stripped = text.rstrip()
    if not stripped:
        return None
    if stripped.count("```") % 2 == 1:
        return "an unclosed code block"
    if stripped.endswith("```"):
        return None
    last = stripped[-1]
    if not (last.isalnum() or last in _OPEN_ENDINGS):
        return None  # . ! ? … ) " * | an emoji: ended on purpose
    if len(stripped.split()) <= SHORT_ANSWER_WORDS:
        return None
    paragraph = stripped.split("\n\n")[-1]
    lines = [line for line in paragraph.split("\n") if line.strip()]
    last_line = lines[-1].strip()
    if len(last_line.split()) <= SHORT_LINE_WORDS or _LIST_ITEM.match(last_line):
        return None
    if len(lines) >= 2 and all(len(line.split()) <= VERSE_LINE_WORDS for line in lines):
        return None  # verse, or a block of short lines (an address, a recipe card)
    if last_line.count(" / ") >= 2:
        return None  # verse written on one line
    tokens = last_line.split()
    final_token = tokens[-1]
    if _URL_OR_ADDRESS.search(final_token) or _NUMBER.fullmatch(final_token.rstrip(_OPEN_ENDINGS)):
        return None
    if final_token in UNITS and len(tokens) >= 2 and _NUMBER.fullmatch(tokens[-2]):
        return None
    before = stripped[: len(stripped) - len(paragraph)].rstrip()
    if len(lines) == 1 and before.endswith(":") and _COMMAND_LINE.match(last_line):
        return None  # a command or code line, displayed as its own paragraph
    if last.isalpha() and _no_spaces_script(last):
        return None
    if len(lines) == 1 and "\n" not in stripped and _title_case(last_line):
        return None  # a title or a headline ("The Quiet Work of Bees: How Pollinators Feed the World")
    return f"ends mid-sentence: …{stripped[-40:]!r}"


def looks_truncated(text: str) -> bool:
    """Whether :func:`truncation_suspect` has a reason for ``text``."""
    return truncation_suspect(text) is not None


# --------------------------------------------------------------------------- the filters

DEFAULT_DISCLAIMER_PATTERNS: tuple[str, ...] = (
    r"\bI (?:don['’]t|do not) have (?:personal|emotions|feelings|opinions|beliefs|preferences|a personal|the ability|access to real-time)",
    r"\bI (?:don['’]t|do not|cannot|can['’]t) (?:experience|feel) (?:emotions|feelings)",
    r"\bas an AI(?: language model| assistant| model)?\b",
    r"\bI(?: am|['’]m) (?:just |only )?an? (?:AI|artificial intelligence|language model)\b",
    r"\bI am not capable of (?:having|feeling|forming) (?:personal|emotions|opinions)",
)

TRUNCATION_HEURISTIC_MODES = ("off", "report", "remove")
NEAR_DUPLICATE_ENGINES = ("datasketch", "reference")


@dataclass(frozen=True)
class FilterConfig:
    """What counts as a bad dialogue. Lengths are in words (whitespace-separated)."""

    disclaimer_patterns: Sequence[str] = DEFAULT_DISCLAIMER_PATTERNS
    min_assistant_words: int = 1
    """A one-word answer ("Paris") is a good answer; raise this to drop terse replies on purpose."""
    max_dialogue_words: int = 2000
    min_assistant_turns: int = 1
    truncation_heuristic: str = "report"
    """For replies without a recorded finish reason: ``"off"``, ``"report"`` (count and list what
    :func:`truncation_suspect` would remove, keep it) or ``"remove"`` (opt-in: drop it)."""
    near_duplicate_threshold: float = 0.8
    shingle_size: int = 5
    num_permutations: int = 128
    lsh_bands: int = 20
    """LSH bands of ``num_permutations // lsh_bands`` rows (20 × 6 of the 128 positions): a pair of estimated
    Jaccard 0.8 becomes a candidate with probability :math:`1 - (1 - 0.8^6)^{20} = 0.998`, one of 0.9 with
    0.9999998. More bands catch more borderline pairs at the cost of time and memory (each band is a hash
    table of every kept row: 200k rows × 20 bands take about 1.4 GB in ``datasketch``)."""
    near_duplicates: str = "datasketch"
    """``"datasketch"`` (the pipeline) or ``"reference"`` (the from-scratch MinHash of :mod:`.similarity`)."""
    truecase: bool = True
    examples_per_filter: int = 3
    custom_filters: Sequence[tuple[str, Callable[[dict], str | None]]] = ()
    """Your own filters, ``(name, check)`` pairs run after the disclaimer filter: ``check(row)`` returns why the
    row goes (a string) or ``None``. Each gets its own line in the report and its rows in the rejects."""

    def __post_init__(self):
        if self.truncation_heuristic not in TRUNCATION_HEURISTIC_MODES:
            raise ValueError(f"truncation_heuristic must be one of {', '.join(TRUNCATION_HEURISTIC_MODES)}")
        if self.near_duplicates not in NEAR_DUPLICATE_ENGINES:
            raise ValueError(f"near_duplicates must be one of {', '.join(NEAR_DUPLICATE_ENGINES)}")
        if not 1 <= self.lsh_bands <= self.num_permutations:
            raise ValueError("lsh_bands must be between 1 and num_permutations")
        names = [name for name, _ in self.custom_filters]
        if len(set(names)) != len(names) or set(names) & {name for name, _ in STEPS}:
            raise ValueError(f"custom filter names must be unique and not those of the built-in filters: {names}")


STEPS: tuple[tuple[str, str], ...] = (
    ("structure", "roles out of order, empty turn or no final answer"),
    ("truncated", "a turn was cut at the token limit"),
    ("length", "a reply too short or the dialogue too long"),
    ("disclaimer", "an 'as an AI / I don't have personal…' reply"),
    ("exact duplicate", "same dialogue as an earlier row (case/space-insensitive)"),
    ("near duplicate", "MinHash Jaccard ≥ {threshold} with an earlier row"),
)
"""The filters in the order they run: a row is removed by the first that objects, and by no other."""


@dataclass
class Rejection:
    """One row a filter removed (or, in :attr:`FilterReport.flagged`, would remove)."""

    position: int
    """1-based position of the row in the input (its line in a JSONL file without blank lines)."""
    filter: str
    reason: str
    row: dict | None = None

    def as_record(self) -> dict:
        """What ``--rejects`` writes: where, which filter, why, and the row itself."""
        return {"position": self.position, "filter": self.filter, "reason": self.reason, "row": self.row}


@dataclass
class FilterStep:
    name: str
    reason: str
    removed: int = 0
    examples: list[dict] = field(default_factory=list)
    """The first ``examples_per_filter`` removed rows, each ``{"row": ..., "detail": why, "position": ...}``."""


@dataclass
class FilterReport:
    input_rows: int
    steps: list[FilterStep]
    truecased_rows: int
    output_rows: int
    rejects: list[Rejection] = field(default_factory=list)
    """Every removed row, in input order, with its filter and reason."""
    flagged: list[Rejection] = field(default_factory=list)
    """Kept rows the truncation heuristic would remove (``truncation_heuristic="report"``)."""
    fetch: Callable[[list[int]], Iterable[dict]] | None = field(default=None, repr=False, compare=False)
    """Where :meth:`write_rejects` reads rows the report does not hold (:func:`filter_dataset`: from the dataset)."""

    @property
    def removed_rows(self) -> int:
        return sum(step.removed for step in self.steps)

    def check(self) -> None:
        """Every input row is kept or removed by exactly one filter: kept + removed = input, rejects listed."""
        if self.output_rows + self.removed_rows != self.input_rows or len(self.rejects) != self.removed_rows:
            raise RuntimeError(
                f"rows unaccounted for: {self.output_rows} kept + {self.removed_rows} removed "
                f"({len(self.rejects)} listed) != {self.input_rows} input"
            )
        positions = [r.position for r in self.rejects]
        if len(set(positions)) != len(positions):
            raise RuntimeError("a row was removed twice")

    def as_rows(self) -> list[tuple[str, int, str]]:
        """``(filter, rows removed, reason)`` for every step."""
        return [(step.name, step.removed, step.reason) for step in self.steps]

    def removed_by(self) -> dict[str, int]:
        """``{filter: rows removed}``."""
        return {step.name: step.removed for step in self.steps}

    def write_rejects(self, path: str | os.PathLike, chunk: int = 4096) -> int:
        """Write every removed row (``{"position", "filter", "reason", "row"}``) as JSONL; return the count."""
        from ..data import write_jsonl

        def records():
            for start in range(0, len(self.rejects), chunk):
                part = self.rejects[start : start + chunk]
                missing = [r.position for r in part if r.row is None]
                fetched = dict(zip(missing, self.fetch(missing))) if missing and self.fetch else {}
                for rejection in part:
                    record = rejection.as_record()
                    if record["row"] is None:
                        record["row"] = fetched.get(rejection.position)
                    yield record

        written = write_jsonl(path, records())
        if written != self.removed_rows:
            raise RuntimeError(f"wrote {written} rejected rows, the filters removed {self.removed_rows}")
        return written

    def write_flagged(self, path: str | os.PathLike) -> int:
        """Write the kept rows the truncation heuristic flagged, in the same format as the rejects."""
        from ..data import write_jsonl

        return write_jsonl(path, (r.as_record() for r in self.flagged))

    def __str__(self) -> str:
        width = max(len(step.name) for step in self.steps)
        lines = [f"{'input':<{width}}  {self.input_rows:>6}"]
        lines += [f"{step.name:<{width}}  {-step.removed:>6}  {step.reason}" for step in self.steps]
        lines.append(f"{'kept':<{width}}  {self.output_rows:>6}  ({self.truecased_rows} rows truecased)")
        lines.append(
            f"{'accounted':<{width}}  {self.output_rows + self.removed_rows:>6}  "
            f"= {self.output_rows} kept + {self.removed_rows} removed, each removal listed with its reason"
        )
        if self.flagged:
            lines.append(
                f"{'flagged':<{width}}  {len(self.flagged):>6}  kept rows the truncation heuristic would remove "
                "(no finish reason recorded; truncation_heuristic='remove' drops them)"
            )
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


def _recorded(reasons) -> list:
    return reasons if isinstance(reasons, list) else []


def truncation_problem(row: dict, heuristic: bool = False) -> str | None:
    """Why ``row`` counts as cut off, from the evidence: a recorded ``finish_reason == "length"``.

    ``finish_reasons`` has one entry per assistant reply, ``user_finish_reasons`` one per simulated user
    message (user turn 1 on; the seed, user turn 0, was written by a person). With ``heuristic=True`` a reply
    that has no recorded reason is also judged by :func:`truncation_suspect`.
    """
    reasons = _recorded(row.get("finish_reasons"))
    if "length" in reasons:
        return f"assistant turn {reasons.index('length')} hit the token limit"
    user_reasons = _recorded(row.get("user_finish_reasons"))
    if "length" in user_reasons:
        return f"simulated user turn {user_reasons.index('length') + 1} hit the token limit"
    if heuristic:
        suspect = heuristic_truncation(row)
        if suspect:
            return suspect
    return None


def heuristic_truncation(row: dict) -> str | None:
    """:func:`truncation_suspect` on every assistant reply that has no recorded finish reason."""
    reasons = _recorded(row.get("finish_reasons"))
    for i, text in enumerate(_assistant_texts(row)):
        if i < len(reasons) and reasons[i] is not None:
            continue  # the generator said how this reply ended: evidence beats a guess
        suspect = truncation_suspect(text)
        if suspect:
            return f"heuristic, assistant turn {i} {suspect}"
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


def dialogue_key(row: dict) -> bytes:
    """A 16-byte BLAKE2 digest of :func:`normalized_dialogue`: equal dialogues, equal keys (200k keys fit in 10 MB)."""
    return hashlib.blake2b(normalized_dialogue(row).encode("utf-8"), digest_size=16).digest()


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


class _Checks:
    """The per-row filters (structure, truncated, length, disclaimer) for one config, compiled once."""

    def __init__(self, config: FilterConfig):
        self.config = config
        # one alternation: a reply is scanned once, not once per pattern
        patterns = config.disclaimer_patterns
        self.patterns = [re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)] if patterns else []

    def problem(self, row: dict) -> tuple[str, str] | None:
        """``(filter, reason)`` of the first per-row filter that removes ``row``, else ``None``."""
        problem = structure_problem(row["messages"])
        if problem:
            return "structure", problem
        problem = truncation_problem(row, heuristic=self.config.truncation_heuristic == "remove")
        if problem:
            return "truncated", problem
        problem = length_problem(row, self.config)
        if problem:
            return "length", problem
        problem = disclaimer_problem(row, self.patterns)
        if problem:
            return "disclaimer", problem
        for name, check in self.config.custom_filters:
            problem = check(row)
            if problem:
                return name, str(problem)
        return None

    def flag(self, row: dict) -> str | None:
        """What the truncation heuristic says about a row it does not remove (report mode), else ``None``."""
        return heuristic_truncation(row) if self.config.truncation_heuristic == "report" else None

    def signature(self, row: dict):
        """The MinHash signature of the dialogue's shingles, by the configured engine."""
        text = normalized_dialogue(row)
        if self.config.near_duplicates == "reference":
            return minhash_signature(shingles(text, self.config.shingle_size), self.config.num_permutations)
        return datasketch_signature(shingle_hashes(text, self.config.shingle_size), self.config.num_permutations)


class ReferenceNearDuplicateIndex:
    r"""MinHash with LSH banding, from scratch: signatures are cut into ``bands`` bands of ``r`` rows; rows sharing a
    band are candidates, and a candidate is a duplicate when the estimated Jaccard is at least ``threshold``.
    The chance that two sets of Jaccard :math:`s` become candidates is :math:`1 - (1 - s^r)^{bands}`.
    """

    def __init__(self, threshold: float, num_permutations: int, bands: int):
        self.threshold, self.bands, self.rows_per_band = threshold, bands, num_permutations // bands
        self.buckets: dict[tuple, list[int]] = {}
        self.signatures: list = []
        self.keys: list = []

    def find_or_add(self, signature, key) -> tuple[object, float] | None:
        """``(key, estimate)`` of the first kept row this one nearly duplicates, else add it and return ``None``."""
        r = self.rows_per_band
        bands = [(k, signature[k * r : (k + 1) * r].tobytes()) for k in range(self.bands)]
        for candidate in sorted({i for band in bands for i in self.buckets.get(band, [])}):
            similarity = estimated_jaccard(self.signatures[candidate], signature)
            if similarity >= self.threshold:
                return self.keys[candidate], similarity
        index = len(self.signatures)
        self.signatures.append(signature)
        self.keys.append(key)
        for band in bands:
            self.buckets.setdefault(band, []).append(index)
        return None


class DatasketchNearDuplicateIndex:
    """The same search with ``datasketch.MinHashLSH`` (same bands and rows, same verification of candidates)."""

    def __init__(self, threshold: float, num_permutations: int, bands: int):
        from datasketch import MinHashLSH

        self.threshold, self.num_permutations = threshold, num_permutations
        self.lsh = MinHashLSH(num_perm=num_permutations, params=(bands, num_permutations // bands))
        self.signatures: dict = {}
        self.order: dict = {}

    def find_or_add(self, signature, key) -> tuple[object, float] | None:
        from datasketch import LeanMinHash

        minhash = LeanMinHash(seed=1, hashvalues=signature, scheme="affine32")
        for candidate in sorted(self.lsh.query(minhash), key=self.order.__getitem__):
            similarity = estimated_jaccard(self.signatures[candidate], signature)
            if similarity >= self.threshold:
                return candidate, similarity
        self.order[key] = len(self.order)
        self.signatures[key] = signature
        self.lsh.insert(key, minhash, check_duplication=False)
        return None


def near_duplicate_index(config: FilterConfig):
    """The near-duplicate search of ``config.near_duplicates``."""
    kind = ReferenceNearDuplicateIndex if config.near_duplicates == "reference" else DatasketchNearDuplicateIndex
    return kind(config.near_duplicate_threshold, config.num_permutations, config.lsh_bands)


class _Ledger:
    """Counts, examples and the list of every removal; turns into the :class:`FilterReport`."""

    def __init__(self, config: FilterConfig):
        self.config = config
        steps = [(name, reason.format(threshold=config.near_duplicate_threshold)) for name, reason in STEPS]
        steps[4:4] = [
            (name, f"your filter {getattr(check, '__name__', name)}") for name, check in config.custom_filters
        ]
        self.steps = {name: FilterStep(name, reason) for name, reason in steps}
        self.rejects: list[Rejection] = []
        self.flagged: list[Rejection] = []
        self.fetch = None

    def remove(self, position: int, name: str, reason: str, row: dict | None) -> None:
        step = self.steps[name]
        step.removed += 1
        if len(step.examples) < self.config.examples_per_filter:
            step.examples.append({"row": row, "detail": reason, "position": position})
        self.rejects.append(Rejection(position, name, reason, row))

    def report(self, input_rows: int, kept: int, truecased: int) -> FilterReport:
        report = FilterReport(
            input_rows, list(self.steps.values()), truecased, kept, self.rejects, self.flagged, fetch=self.fetch
        )
        report.check()
        return report


class _Deduplicator:
    """Exact then near duplicates, in input order: the first copy is kept, later ones are removed."""

    def __init__(self, config: FilterConfig):
        self.exact: dict[bytes, int] = {}
        self.near = near_duplicate_index(config)

    def problem(self, position: int, key: bytes, signature) -> tuple[str, str] | None:
        if key in self.exact:
            return "exact duplicate", f"same as row {self.exact[key]}"
        duplicate = self.near.find_or_add(signature, position)
        if duplicate is not None:
            other, similarity = duplicate
            return "near duplicate", f"≈{similarity:.2f} estimated Jaccard with row {other}"
        self.exact[key] = position
        return None


def filter_dialogues(
    rows: Iterable[dict],
    config: FilterConfig = FilterConfig(),
    source: str = "<rows>",
    *,
    rejects: str | os.PathLike | None = None,
    progress: bool = False,
) -> tuple[list[dict], FilterReport]:
    """Apply the filters in order and truecase what is kept; return ``(kept rows, report)``.

    Plain Python, one row at a time: the readable version of the chain (:func:`filter_dataset` runs the same
    checks through ``datasets`` with several processes). Rows must have the ultrachat_200k shape (``prompt``,
    ``prompt_id``, ``messages``); a malformed row raises :class:`~zephyr_tutorial.data.DataError` naming
    ``source`` and its position rather than being dropped. Duplicates keep the first copy. Every removed row
    is in ``report.rejects`` (and written to ``rejects`` as JSONL when given); ``report.check()`` has verified
    that kept + removed = input.
    """
    from tqdm.auto import tqdm

    rows = list(rows)
    for position, row in enumerate(rows, start=1):
        check_sft_row(row, source, position)
    checks, ledger, dedup = _Checks(config), _Ledger(config), _Deduplicator(config)
    kept: list[dict] = []
    truecased = 0
    for position, row in enumerate(tqdm(rows, desc="filtering", unit="row", disable=not progress), start=1):
        problem = checks.problem(row)
        if problem is None:
            problem = dedup.problem(position, dialogue_key(row), checks.signature(row))
        if problem is not None:
            ledger.remove(position, *problem, row)
            continue
        flag = checks.flag(row)
        if flag:
            ledger.flagged.append(Rejection(position, "truncated", flag, row))
        if config.truecase:
            cased = truecase_row(row)
            truecased += cased != row
            row = cased
        kept.append(row)
    report = ledger.report(len(rows), len(kept), truecased)
    if rejects is not None:
        report.write_rejects(rejects)
    return kept, report


# --------------------------------------------------------------------------- the same chain through `datasets`

_CHECKS: dict = {}
_ANNOTATIONS = ("_problem", "_reason", "_flag", "_key", "_signature", "_error")


def _checks_for(config: FilterConfig) -> _Checks:
    """The compiled checks of ``config``, once per process."""
    try:
        checks = _CHECKS.get(config)
    except TypeError:  # a config holding a list (unhashable): compile it for every batch
        return _Checks(config)
    if checks is None:
        checks = _CHECKS[config] = _Checks(config)
    return checks


def _annotate(batch: dict, indices: list[int], config: FilterConfig) -> dict:
    """``datasets.map`` function (batched): the per-row filters, the dedup key and the MinHash of every row.

    Runs in the worker processes; nothing here depends on other rows, so the rows can be split among
    processes. A malformed row is not raised here (exceptions do not cross processes intact) but recorded in
    ``_error`` and raised by the caller with its position.
    """
    import numpy as np

    checks = _checks_for(config)
    empty = np.zeros(config.num_permutations, dtype=np.uint32)
    out: dict[str, list] = {name: [] for name in _ANNOTATIONS}
    names = list(batch)
    for j in range(len(indices)):
        row = {name: batch[name][j] for name in names}
        problem, flag, key, signature, error = None, None, b"", empty, ""
        try:
            check_sft_row(row, "row", None)
        except DataError as caught:
            error = f"{caught.field or ''}\t{str(caught).split(': ', 1)[1]}"
        if not error:
            problem = checks.problem(row)
            if problem is None:
                flag = checks.flag(row)
                key, signature = dialogue_key(row), np.asarray(checks.signature(row), dtype=np.uint32)
        out["_problem"].append(problem[0] if problem else "")
        out["_reason"].append(problem[1] if problem else "")
        out["_flag"].append(flag or "")
        out["_key"].append(key)
        out["_signature"].append(signature)
        out["_error"].append(error)
    return out


def _truecase_batch(batch: dict) -> dict:
    names = list(batch)
    out: dict[str, list] = {name: [] for name in names}
    out["_truecased"] = []
    for j in range(len(batch[names[0]])):
        row = {name: batch[name][j] for name in names}
        cased = truecase_row(row)
        for name in names:
            out[name].append(cased[name])
        out["_truecased"].append(cased != row)
    return out


def _annotated_rows(annotated, batch_size: int = 8192):
    """``(position, problem, reason, flag, key, signature, error)`` of every annotated row, read in batches."""
    columns = annotated.select_columns(list(_ANNOTATIONS)).with_format("numpy")
    for start in range(0, len(columns), batch_size):
        batch = columns[start : start + batch_size]
        for j in range(len(batch["_key"])):
            yield (
                start + j + 1,
                str(batch["_problem"][j]),
                str(batch["_reason"][j]),
                str(batch["_flag"][j]),
                bytes(batch["_key"][j]),
                batch["_signature"][j],
                str(batch["_error"][j]),
            )


def _raise_row_error(source: str, position: int, error: str) -> None:
    field, problem = error.split("\t", 1)
    raise DataError(source, position, field or None, problem)


def filter_dataset(
    dataset,
    config: FilterConfig = FilterConfig(),
    *,
    num_proc: int | None = None,
    source: str = "<dataset>",
    rejects: str | os.PathLike | None = None,
    limit: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
):
    """:func:`filter_dialogues` at scale: the same filters and report, through ``datasets``; returns ``(kept, report)``.

    ``dataset`` is a ``datasets.Dataset`` (e.g. ``load_dataset("json", ...)``) or an ``IterableDataset``
    (``load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft", streaming=True)``, optionally cut to
    ``limit`` rows). Three passes:

    1. ``map`` (batched, ``num_proc`` processes): every per-row filter, the exact-duplicate key and the MinHash
       signature (``datasketch``) of each row, as new columns;
    2. in input order, in this process: exact duplicates (a set of keys) and near duplicates (``datasketch``'s
       LSH), so that the first copy is the one kept, exactly as in :func:`filter_dialogues`;
    3. ``select`` the kept rows and ``map`` the truecaser over them (``num_proc`` processes).

    A ``Dataset`` comes back as a ``Dataset`` of the kept rows; a stream is read once and its kept rows come
    back as a ``Dataset`` too. Rejected rows are not held in memory (their positions and reasons are):
    ``rejects`` (or ``report.write_rejects``) fetches them from ``dataset``.
    """
    from datasets import Dataset, IterableDataset
    from tqdm.auto import tqdm

    if config.near_duplicates != "datasketch":
        raise ValueError("filter_dataset runs the datasketch engine; use filter_dialogues for the reference")
    streaming = isinstance(dataset, IterableDataset)
    if streaming and limit is not None:
        dataset = dataset.take(limit)
    elif limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    map_options = {"batched": True, "batch_size": batch_size, "with_indices": True, "fn_kwargs": {"config": config}}
    if streaming:
        annotated = dataset.map(_annotate, **map_options)
    else:
        annotated = dataset.map(_annotate, num_proc=num_proc, desc="per-row filters and MinHash", **map_options)
    ledger, dedup = _Ledger(config), _Deduplicator(config)
    kept_positions: list[int] = []
    kept_rows: list[dict] = []
    total = None if streaming else len(annotated)
    if streaming:
        stream = (
            (position, *(row.pop(name) for name in _ANNOTATIONS), row)
            for position, row in enumerate(annotated, start=1)
        )
    else:
        stream = (item + (None,) for item in _annotated_rows(annotated))
    count = 0
    for position, problem, reason, flag, key, signature, error, row in tqdm(
        stream, total=total, desc="duplicates (in order)", unit="row", disable=not progress
    ):
        count += 1
        if error:
            _raise_row_error(source, position, error)
        if not problem:
            found = dedup.problem(position, bytes(key), signature)
            if found:
                problem, reason = found
        if problem:
            ledger.remove(position, problem, reason, row)
            continue
        if flag:
            ledger.flagged.append(Rejection(position, "truncated", flag, row))
        kept_positions.append(position)
        if streaming:
            kept_rows.append(row)
    # the duplicate indexes are the largest objects here (about 1.4 GB for 200k rows): free them before the
    # truecasing workers fork, or each worker's garbage collector touches, and so copies, every page of them
    del dedup
    gc.collect()
    if streaming:
        kept = Dataset.from_list(kept_rows) if kept_rows else Dataset.from_dict({})
        truecase_options = {}
    else:
        kept = dataset.select([p - 1 for p in kept_positions])
        truecase_options = {"num_proc": num_proc, "desc": "truecasing"}
        _attach_rows(ledger, dataset)
    truecased = 0
    if config.truecase and len(kept):
        kept = kept.map(_truecase_batch, batched=True, batch_size=batch_size, **truecase_options)
        truecased = int(sum(kept["_truecased"]))
        kept = kept.remove_columns("_truecased")
    report = ledger.report(count, len(kept_positions), truecased)
    if rejects is not None:
        report.write_rejects(rejects)
    return kept, report


def _attach_rows(ledger: _Ledger, dataset) -> None:
    """Give the report's examples their rows, and the rejects a way to fetch theirs when written."""
    for step in ledger.steps.values():
        for example in step.examples:
            example["row"] = dataset[example["position"] - 1]
    for flagged in ledger.flagged:
        flagged.row = dataset[flagged.position - 1]
    ledger.fetch = lambda positions: dataset.select([p - 1 for p in positions])
