"""A rule-based judge: the stand-in for GPT-4 on the ``cpu`` profile, with verdicts that code can check.

Zephyr's preference labels came from GPT-4. A 135M model cannot play that part (notebook 01 measures it at
chance), so on the ``cpu`` profile the AI feedback comes from prompts whose quality *can be verified by code*,
in the spirit of IFEval's verifiable instructions (Zhou et al. 2023, arXiv:2311.07911): "in one sentence",
"in fewer than 15 words", "a bulleted list of 4 items", "only lowercase letters", "use the word …", "end with
the exact words …", a sum or a capital city with a reference answer. :class:`RuleJudge` rates a completion
on UltraFeedback's four aspects from those checks, so the rest of the pipeline (binarisation, DPO, judged
win rates) runs unchanged with it or with an LLM judge.

The rubric, each aspect 1-5 (the overall score is their mean, as in ultrafeedback_binarized):

==========================  ===========================================================================
aspect                      rule
==========================  ===========================================================================
instruction following       5 when every check of the prompt passes, 1 when none does, 3 in between;
                            at most 3 when the answer is wrong, at most 2 when it is unfinished (a
                            prompt without checks gets 5)
truthfulness                5 when it matches the reference answer, 1 when it does not; without a
                            reference 4, or 2 for an answer that loops (repeats itself)
honesty                     1 for an answer that writes turns of the conversation itself (role markers,
                            "User:"), 2 for an "as an AI / I don't have personal…" disclaimer, else 5
helpfulness                 5, minus 2 when it is unfinished (cut off mid-sentence), minus 2 when it
                            loops, minus 2 when it talks about the instruction instead of following it
                            ("in fewer than 15 words…"), minus 1 when it shares no content word with
                            the prompt, minus 1 when it is wrong; at least 1 (an empty answer is 1)
==========================  ===========================================================================

Every rule is a small function tested in both directions in ``tests/evaluation/test_rule_judge.py``; the
judge never runs model output, it only reads it with regular expressions (all linear-time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DataError, read_jsonl
from .items import PairwiseItem, PairwiseJudgment, PairwiseReport, SingleItem, SingleJudgment
from .rating import ASPECTS, Rating

MAX_CHARS = 20_000
"""Longer answers are judged on their first ``MAX_CHARS`` characters (every rule stays linear in the text)."""

_WORD = re.compile(r"[^\W_][\w'’-]*")
_SENTENCE_END = re.compile(r"[.!?]+(?=[\"'”’)\]]*(?:\s|$))")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|dr|mr|mrs|ms|st|no)\.$", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S")
DISCLAIMER = re.compile(
    r"\bas an ai\b|\bi(?: am|['’]m) (?:just |only )?an? (?:ai|language model|artificial intelligence)\b"
    r"|\bi (?:don['’]t|do not) have (?:personal|feelings|emotions|opinions|the ability)"
    r"|\bi (?:cannot|can['’]t) (?:provide|answer|help with)\b",
    re.I,
)
INVENTED_TURN = re.compile(
    r"<\|(?:user|assistant|system|im_start|im_end|endoftext)\|>|^\s*(?:user|assistant|human)\s*:", re.I | re.M
)
TALKS_ABOUT_INSTRUCTION = re.compile(
    r"in (?:fewer|less) than \d+ words|\bin one sentence\b|lowercase letters|bulleted list|separated by commas"
    r"|the exact words|with the number only|city name only|yes or no only",
    re.I,
)
_CONTINUES = frozenset(
    "and or but so because the a an of to with in on at for from by is are was were that which who than as "
    "their its his her my your our".split()
)
"""Words after which a sentence cannot end: an answer that stops on one was cut off."""
_STOPWORDS = frozenset(
    "a an the of in on at to for and or is are was be why how what when where who which does do did we you your "
    "people make makes made it its from into with by as that this these those about tell me give name list write "
    "describe explain answer using use only one two three four five words word sentence sentences without".split()
)


def words(text: str) -> list[str]:
    """Word tokens: letters or digits, with inner apostrophes and hyphens."""
    return _WORD.findall(text)


def sentence_count(text: str) -> int:
    """Sentences in ``text``: terminal punctuation followed by space or the end, plus an unterminated tail.

    A dot after a common abbreviation ("e.g.") or inside a number ("3.5") does not end a sentence.
    """
    stripped = text.strip()
    if not stripped:
        return 0
    count, last = 0, 0
    for match in _SENTENCE_END.finditer(stripped):
        if _ABBREVIATION.search(stripped[: match.end()]):
            continue
        count += 1
        last = match.end()
    tail = stripped[last:].strip(" \"'”’)]")
    return count + (1 if words(tail) else 0)


def is_finished(text: str) -> bool:
    """Whether the answer ends where an answer can end, rather than mid-sentence.

    Finished: terminal punctuation (or a closing quote/bracket after it), a list item as the last line, or a
    short answer of at most six words ("Paris", "42", "red, blue, green"). Never finished: an answer that
    stops on a comma or on a word a sentence cannot end with ("and", "the", "because"). A heuristic for text whose
    generator recorded no finish reason; the pool's own ``finish_reason`` is used where it exists.
    """
    stripped = text.rstrip()
    if not stripped:
        return False
    if re.search(r"[.!?][\"'”’)\]]*$", stripped) or stripped.endswith(("```", ")", "]")):
        return True
    last_word = (words(stripped) or [""])[-1].lower()
    if stripped[-1] in ",:;-(" or last_word in _CONTINUES:
        return False
    last_line = stripped.splitlines()[-1]
    if _BULLET.match(last_line) and len(words(last_line)) <= 8:
        return True
    return len(words(stripped)) <= 6


def loops(text: str) -> bool:
    """A degenerate answer: some 4-word sequence occurs three times, or most of its lines repeat."""
    tokens = [w.lower() for w in words(text)]
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(tokens) - 3):
        gram = tuple(tokens[i : i + 4])
        seen[gram] = seen.get(gram, 0) + 1
        if seen[gram] >= 3:
            return True
    lines = [line.strip().lower() for line in text.splitlines() if line.strip()]
    return len(lines) >= 3 and len(set(lines)) <= len(lines) / 2


def on_topic(text: str, prompt: str) -> bool:
    """The answer shares at least one content word with the prompt (compared on their first five letters).

    Short answers (three words or fewer: "Lima", "42", "Yes") are not asked to repeat the prompt's words.
    """
    answer_words = words(text)
    if len(answer_words) <= 3:
        return True
    stems = {w.lower()[:5] for w in words(prompt) if w.lower() not in _STOPWORDS and len(w) > 2}
    return not stems or any(w.lower()[:5] in stems for w in answer_words)


# ----------------------------------------------------------------------------------------- the checks


def _max_sentences(text: str, limit: int) -> bool:
    return 1 <= sentence_count(text) <= limit


def _max_words(text: str, limit: int) -> bool:
    return 1 <= len(words(text)) <= limit


def _lowercase(text: str, wanted: bool) -> bool:
    has_letters = re.search(r"[^\W\d_]", text) is not None
    return (has_letters and text == text.lower()) if wanted else True


def _ends_with(text: str, phrase: str) -> bool:
    return text.strip().rstrip(" \"'”’").endswith(phrase.strip().rstrip(" \"'”’"))


def _starts_with(text: str, word: str) -> bool:
    first = words(text)[:1]
    return bool(first) and first[0].lower() == word.lower()


def _bullets(text: str, count: int) -> bool:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return len(lines) == count and all(re.match(r"^\s*[-*•]\s+\S", line) for line in lines)


def _comma_items(text: str, count: int) -> bool:
    body = text.strip().rstrip(".")
    if "\n" in body or len(words(body)) > 4 * count:
        return False
    items = [item for item in re.split(r",|\band\b", body) if item.strip()]
    return len(items) == count


def _include(text: str, wanted: Sequence[str]) -> bool:
    return all(re.search(rf"\b{re.escape(word)}\b", text, re.I) for word in wanted)


def _exclude(text: str, banned: Sequence[str]) -> bool:
    return not any(re.search(rf"\b{re.escape(word)}", text, re.I) for word in banned)


def _number_only(text: str, wanted: bool) -> bool:
    return (re.fullmatch(r"-?\d+(?:\.\d+)?\.?", text.strip().replace(",", "")) is not None) if wanted else True


CHECKS: dict[str, Callable[[str, object], bool]] = {
    "max_sentences": _max_sentences,
    "max_words": _max_words,
    "lowercase": _lowercase,
    "ends_with": _ends_with,
    "starts_with": _starts_with,
    "bullets": _bullets,
    "comma_items": _comma_items,
    "include": _include,
    "exclude": _exclude,
    "number_only": _number_only,
}
"""Verifiable instructions by name: ``check(text, argument) -> passed``. A new check is one function and one line."""


def check_constraints(text: str, checks: Mapping[str, object]) -> dict[str, bool]:
    """``{check name: passed}`` for every check of a prompt; an unknown name raises ``KeyError``."""
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise KeyError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    return {name: CHECKS[name](text, argument) for name, argument in checks.items()}


def matches_reference(text: str, reference: str | None) -> bool | None:
    """Whether the answer gives the reference answer (``None`` without one).

    Numbers: the last number in the answer ("46 minus 12 is 34" → 34). Yes/No: the first word. Anything
    else: the reference appears in the answer, case-insensitively.
    """
    if reference is None:
        return None
    if re.fullmatch(r"-?\d+", reference):
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        return bool(numbers) and numbers[-1] == reference
    if reference.lower() in ("yes", "no"):
        first = words(text)[:1]
        return bool(first) and first[0].lower() == reference.lower()
    return reference.lower() in text.lower()


# ----------------------------------------------------------------------------------------- the rubric


@dataclass(frozen=True)
class PromptSpec:
    """A verifiable prompt: its text, its family, its checks (names of :data:`CHECKS` → argument) and reference."""

    prompt: str
    family: str = "open"
    checks: Mapping[str, object] = field(default_factory=dict)
    reference: str | None = None


@dataclass(frozen=True)
class Assessment:
    """What the rules found in one answer, and the four aspect scores they give."""

    checks: dict[str, bool]
    correct: bool | None
    finished: bool
    loops: bool
    disclaimer: bool
    invented_turns: bool
    talks_about_instruction: bool
    on_topic: bool

    def scores(self) -> dict[str, int]:
        """The rubric of the module docstring."""
        passed = sum(self.checks.values())
        follow = 5 if passed == len(self.checks) else 1 if passed == 0 else 3
        if self.correct is False:
            follow = min(follow, 3)
        if not self.finished:  # a fragment that happens to satisfy "fewer than 15 words" has not followed it
            follow = min(follow, 2)
        truth = 5 if self.correct else 1 if self.correct is False else (2 if self.loops else 4)
        honesty = 1 if self.invented_turns else 2 if self.disclaimer else 5
        helpful = 5 - 2 * (not self.finished) - 2 * self.loops - 2 * self.talks_about_instruction
        helpful -= (not self.on_topic) + (self.correct is False)
        return {
            "instruction_following": follow,
            "honesty": honesty,
            "truthfulness": truth,
            "helpfulness": max(1, helpful),
        }

    def as_dict(self) -> dict:
        return {
            "checks": self.checks,
            "correct": self.correct,
            "finished": self.finished,
            "loops": self.loops,
            "disclaimer": self.disclaimer,
            "invented_turns": self.invented_turns,
            "talks_about_instruction": self.talks_about_instruction,
            "on_topic": self.on_topic,
        }


def assess(text: str, spec: PromptSpec) -> Assessment:
    """Run every rule on one answer."""
    text = (text or "")[:MAX_CHARS]
    return Assessment(
        checks=check_constraints(text, spec.checks),
        correct=matches_reference(text, spec.reference),
        finished=is_finished(text),
        loops=loops(text),
        disclaimer=DISCLAIMER.search(text) is not None,
        invented_turns=INVENTED_TURN.search(text) is not None,
        talks_about_instruction=TALKS_ABOUT_INSTRUCTION.search(text) is not None,
        on_topic=on_topic(text, spec.prompt),
    )


def rule_rating(text: str, spec: PromptSpec) -> Rating:
    """The four aspect scores of one answer, with the findings as the rationale (JSON)."""
    if not (text or "").strip():
        return Rating({aspect: 1 for aspect in ASPECTS}, json.dumps({"empty": True}))
    found = assess(text, spec)
    return Rating(found.scores(), json.dumps(found.as_dict(), sort_keys=True))


# ----------------------------------------------------------------------------------------- the catalogue

PROMPT_FIELDS = {"id": str, "prompt_id": str, "prompt": str, "family": str, "checks": dict}


def _check_spec_row(row: dict, path: str, line: int) -> None:
    unknown = sorted(set(row["checks"]) - set(CHECKS))
    if unknown:
        raise DataError(path, line, "checks", f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    reference = row.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise DataError(path, line, "reference", f"expected a string or null, got {type(reference).__name__}")
    if not row["prompt"].strip():
        raise DataError(path, line, "prompt", "empty")


def read_verifiable_prompts(path: str | Path) -> list[dict]:
    """Rows of a verifiable-prompt file (``id, prompt_id, prompt, family, checks, reference``), validated."""
    return read_jsonl(path, fields=PROMPT_FIELDS, validate=_check_spec_row)


def default_catalog() -> dict[str, PromptSpec]:
    """The shipped verifiable prompts (``data/verifiable_prompts.jsonl``) as a catalogue."""
    from ..runtime import data_dir

    return prompt_catalog(read_verifiable_prompts(data_dir() / "verifiable_prompts.jsonl"))


def prompt_catalog(rows: Sequence[Mapping]) -> dict[str, PromptSpec]:
    """``{prompt text: PromptSpec}`` for :class:`RuleJudge`."""
    return {
        row["prompt"]: PromptSpec(row["prompt"], row["family"], dict(row["checks"]), row.get("reference"))
        for row in rows
    }


class RuleJudge:
    """Judge by the rules of this module (same interface as the LLM judges: ``rate``, ``compare``, ``grade``).

    ``catalog`` maps a prompt's text to its :class:`PromptSpec`; a prompt that is not in it is judged on the
    rules every answer faces (finished, no loop, no disclaimer, no invented turn, on topic).
    """

    def __init__(self, catalog: Mapping[str, PromptSpec] | None = None, *, name: str = "rules"):
        self.catalog = dict(catalog or {})
        self.name = name
        self.retries = 0  # the rules never need a second try

    def spec(self, instruction: str) -> PromptSpec:
        return self.catalog.get(instruction) or PromptSpec(instruction)

    def rate(self, items: Sequence[tuple[str, str, Sequence[str]]]) -> list[list[Rating]]:
        """Ratings of every completion of every ``(prompt_id, instruction, completions)`` item."""
        return [[rule_rating(text, self.spec(instruction)) for text in texts] for _, instruction, texts in items]

    def _preference(self, item: PairwiseItem) -> str:
        spec = self.spec(item.instruction)
        mean_a, mean_b = rule_rating(item.output_a, spec).mean, rule_rating(item.output_b, spec).mean
        return "tie" if mean_a == mean_b else "a" if mean_a > mean_b else "b"

    def compare(self, items: Sequence[PairwiseItem], *, swap: bool = True) -> PairwiseReport:
        """The answer with the higher mean rating wins, equal means tie. Rules do not see positions, so both
        orders always agree (flip rate 0); ``swap`` only fills the report the way a position-swapped judge does."""
        judgments = []
        for item in items:
            verdict = self._preference(item)
            judgments.append(
                PairwiseJudgment(
                    item.id,
                    verdict,
                    verdict if swap else None,
                    verdict,
                    replies=[f"rules: {verdict}"] * (2 if swap else 1),
                )
            )
        return PairwiseReport(judgments, self.name, "rules", swap)

    def grade(self, items: Sequence[SingleItem]) -> list[SingleJudgment]:
        """MT-Bench-style 1-10 grades: the mean aspect score mapped linearly from 1-5 to 1-10."""
        judgments = []
        for item in items:
            rating = rule_rating(item.answer, self.spec(item.question))
            grade = 1 + (rating.mean - 1) * 9 / 4
            judgments.append(SingleJudgment(item.id, round(grade, 2), None, rating.rationale))
        return judgments
