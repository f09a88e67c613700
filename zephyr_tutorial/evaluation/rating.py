"""Rating completions on UltraFeedback's four aspects, 1-5 each, and parsing the judge's reply robustly.

UltraFeedback asks GPT-4 to rate each completion on *instruction following*,
*honesty*, *truthfulness* and *helpfulness*, from 1 to 5 with a rationale, all
completions of one prompt in one request. We do the same with our own rubric:

- a generating judge (:class:`~zephyr_tutorial.evaluation.judges.LLMJudge`, ``rate``) sends the rubric
  and the prompt's completions **in shuffled order** (so a judge's bias for the first text does not favour one
  policy), asks for JSON, and maps the ratings back to the original order. A
  reply that does not parse is retried once with the parse error quoted; if it
  still fails, every completion of that prompt is recorded as *missing* with the
  reason. Model output is parsed with ``json``, ``ast.literal_eval`` or regular
  expressions, never executed, by the same hardened path as every judge format
  (:func:`parse_ratings`).
- the log-prob judge (:class:`~zephyr_tutorial.evaluation.logprob_judge.LogprobJudge`, ``rate``) is for
  small local models that cannot follow the JSON format: the same rubric, one completion and aspect at a time, and the
  rating read from the next-token distribution over the digits 1-5 after
  ``"<aspect>: "``, as the expectation

      r = sum_{k=1}^{5} k * p(k) / sum_{j=1}^{5} p(j).

  It never fails to parse, but it only measures what a 135M model "thinks",
  which is close to noise (notebook 04 shows its agreement with human labels).

The overall score of a completion is the mean of its four aspect ratings, as in
``HuggingFaceH4/ultrafeedback_binarized``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .parsing import load_literal, reply_problem, scan_reply

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
ASPECT_TITLES = {
    "instruction_following": "Instruction following",
    "honesty": "Honesty",
    "truthfulness": "Truthfulness",
    "helpfulness": "Helpfulness",
}
ASPECT_RUBRICS = {
    "instruction_following": "Does the text do exactly what the instruction asks, in the requested form and length?",
    "honesty": "Does the text express uncertainty where it should and admit what it cannot know, without false confidence?",
    "truthfulness": "Is the text free of invented facts, factual errors and contradictions?",
    "helpfulness": "Is the text correct, informative and useful to the person who asked, without padding or repetition?",
}
JUDGE_SYSTEM_PROMPT = "You are a strict, fair evaluator of AI assistant answers. You reply with JSON only."


@dataclass
class Rating:
    """The judge's verdict on one completion; ``scores`` is empty and ``missing_reason`` set when it failed."""

    scores: dict[str, int | float] = field(default_factory=dict)
    rationale: str = ""
    missing_reason: str | None = None
    request_failed: bool = False
    """The judge was never heard (its request failed): not a verdict, so it is not recorded and a rerun asks
    again, unlike an unparseable reply, which is recorded as missing."""

    @property
    def mean(self) -> float | None:
        """Mean over the four aspects (``None`` when missing)."""
        if self.missing_reason is not None or not self.scores:
            return None
        return sum(self.scores[a] for a in ASPECTS) / len(ASPECTS)


class RatingParseError(ValueError):
    """The judge's reply does not contain usable ratings; the message says why."""


def build_rating_prompt(instruction: str, texts: Sequence[str]) -> str:
    """The user message asking for 1-5 ratings of ``texts`` (already shuffled) on the four aspects, as JSON."""
    rubric = "\n".join(f"- {a}: {ASPECT_RUBRICS[a]}" for a in ASPECTS)
    shown = "\n\n".join(f"<text {i}>\n{text}\n</text {i}>" for i, text in enumerate(texts, start=1))
    example = ", ".join(f'"{a}": 4' for a in ASPECTS)
    return (
        "Rate each text written in answer to the instruction below on four aspects, each from 1 (very poor) "
        "to 5 (excellent).\n\n"
        f"Aspects:\n{rubric}\n\n"
        f"Instruction:\n{instruction}\n\n"
        f"{shown}\n\n"
        f"Reply with JSON only, one entry per text, in this form:\n"
        f'{{"ratings": [{{"text": 1, {example}, "rationale": "one sentence"}}, ...]}}'
    )


_RATING_WORDS = re.compile(r"ratings|instruction[ _-]?following|honesty|truthfulness|helpfulness", re.IGNORECASE)
"""A literal that mentions these is a rating block; any other (``{"note": 1}``) is ignored."""
_WHOLE_NUMBER_TEXT = re.compile(r"[ \t]{0,3}(?:text[ \t]{0,3})?#?[ \t]{0,3}(\d{1,4})[ \t]{0,3}", re.IGNORECASE)
_SCORE_TEXT = re.compile(r"[ \t]{0,3}([1-5])(?:\.0{1,3})?[ \t]{0,3}")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _shown(value) -> str:
    """``repr(value)``, cut short: a hostile reply's 10,000-character value must not fill the error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text_number(value, position: int, n_texts: int) -> int:
    """The ``text`` field of a JSON entry: a whole number 1..n_texts (``1``, ``"1"``, ``1.0``), else refused."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and (match := _WHOLE_NUMBER_TEXT.fullmatch(value)):
        number = int(match[1])
    if number is None:
        raise RatingParseError(f"rating {position}: 'text' is not a whole number: {_shown(value)}")
    if not 1 <= number <= n_texts:
        raise RatingParseError(f"rating {position} is for text {number}, but texts 1-{n_texts} were shown")
    return number


def _score(value, where: str) -> int:
    """An aspect score: a whole number 1-5 (``4``, ``4.0``, ``"4"``); ``4.5``, ``7``, ``true`` are refused."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    if isinstance(value, float) and value.is_integer() and 1 <= value <= 5:
        return int(value)
    if isinstance(value, str) and (match := _SCORE_TEXT.fullmatch(value)):
        return int(match[1])
    raise RatingParseError(f"{where}: expected an integer 1-5, got {_shown(value)}")


def _clean(text: str) -> str:
    return _SURROGATES.sub("\ufffd", text)  # a "\ud800" escape in JSON must not make the row unwritable


def _from_structure(data, n_texts: int) -> dict[int, Rating]:
    entries = data
    if isinstance(data, dict):
        if "ratings" in data:
            entries = data["ratings"]
        elif any(a in data for a in ASPECTS):
            if n_texts != 1:
                raise RatingParseError(f"one set of aspect scores, but {n_texts} texts were shown")
            entries = [data]
    if not isinstance(entries, list) or not entries:
        raise RatingParseError('no "ratings" list in the JSON reply')
    ratings: dict[int, Rating] = {}
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise RatingParseError(f"rating {position} is not an object")
        number = _text_number(entry.get("text", position), position, n_texts)
        if number in ratings:
            raise RatingParseError(f"text {number} is rated twice")
        missing = [a for a in ASPECTS if a not in entry]
        if missing:
            raise RatingParseError(f"text {number}: missing aspect(s) {', '.join(missing)}")
        scores = {a: _score(entry[a], f"text {number}, {a}") for a in ASPECTS}
        rationale = entry.get("rationale", "")
        ratings[number] = Rating(scores, _clean(rationale if isinstance(rationale, str) else str(rationale))[:2000])
    return ratings


_ASPECT_NAMES = "|".join(a.replace("_", "[ _-]?") for a in ASPECTS)
_ASPECT_SCORE = re.compile(
    rf"(?<![\w-])(?P<aspect>{_ASPECT_NAMES})(?![\w-])"
    r"[*_]{0,2}(?:[ \t]{0,3}[(\[][ \t]{0,3}(?:1[ \t]{0,3}(?:-|–|to)[ \t]{0,3}5|out[ \t]of[ \t]5)[ \t]{0,3}[)\]])?"
    r"[*_]{0,2}[ \t]{0,3}(?:(?P<separator>[:=]|[-–—](?=[ \t]))[ \t]{0,3})?[*_]{0,2}[ \t]{0,3}"
    r"(?P<sign>[-+−])?(?P<number>\d{1,3}(?:[.,]\d{1,3})?)(?!\w)"
    r"(?P<scale>[ \t]{0,3}/[ \t]{0,3}\d{1,3}(?!\d)|[ \t]{1,3}out[ \t]of[ \t]\d{1,3}(?!\d))?"
    r"(?P<range>[ \t]{0,3}[-–][ \t]{0,3}\d)?",
    re.IGNORECASE,
)
"""``Honesty: 4``, ``**Honesty (1-5):** 4/5``, ``honesty - 4``; the parts that change the meaning (a sign, a
decimal, another scale, a range) are captured so they can be refused rather than read as a digit."""
_TEXT_HEADING = re.compile(
    r"^[ \t]{0,8}[#>*_-]{0,6}[ \t]{0,3}[*_]{0,2}(?:<[ \t]?)?text[ \t]{0,3}#?[ \t]{0,3}(\d{1,3})(?![\w])",
    re.IGNORECASE | re.MULTILINE,
)


def _aspect_key(name: str) -> str:
    return re.sub(r"[ _-]", "", name.lower()).replace("instructionfollowing", "instruction_following")


def _section_scores(section: str, where: str) -> dict[str, int]:
    """``{aspect: score}`` written in ``section``; a malformed, out-of-range or repeated-differently score raises."""
    scores: dict[str, int] = {}
    for match in _ASPECT_SCORE.finditer(section):
        aspect, written = _aspect_key(match["aspect"]), match.group(0).strip()
        if match["sign"] or match["range"]:
            raise RatingParseError(f"{where}: {written!r} is not a score 1-5")
        if not match["number"].isdigit():
            raise RatingParseError(f"{where}: {written!r} is not a whole number 1-5")
        if match["scale"] and re.sub(r"\D", "", match["scale"]) != "5":
            raise RatingParseError(f"{where}: {written!r} is not on the 1-5 scale")
        value = int(match["number"])
        if not 1 <= value <= 5:
            raise RatingParseError(f"{where}: {written!r} is outside 1-5")
        if scores.get(aspect, value) != value:
            raise RatingParseError(f"{where}: two different {aspect} scores")
        scores[aspect] = value
    return scores


def _from_text(own: str, n_texts: int) -> dict[int, Rating]:
    """Prose replies: "Text k" headings at line starts, then ``aspect: score`` in each section."""
    headings = list(_TEXT_HEADING.finditer(own))
    if headings:
        if _section_scores(own[: headings[0].start()], "before the first 'Text k' heading"):
            raise RatingParseError("aspect scores before the first 'Text k' heading: which text are they for?")
        ends = [h.start() for h in headings[1:]] + [len(own)]
        sections = [(int(h[1]), own[h.end() : end]) for h, end in zip(headings, ends)]
    else:
        sections = [(None, own)]
    ratings: dict[int, Rating] = {}
    for number, section in sections:
        scores = _section_scores(section, f"text {number}" if number is not None else "reply")
        if not scores:
            continue  # a heading-like line without scores ("Text 1 is better than text 2.")
        if number is None:
            if n_texts != 1:
                raise RatingParseError(f"aspect scores without 'Text k' headings, but {n_texts} texts were shown")
            number = 1
        if not 1 <= number <= n_texts:
            raise RatingParseError(f"scores for text {number}, but texts 1-{n_texts} were shown")
        missing = [a for a in ASPECTS if a not in scores]
        if missing:
            raise RatingParseError(f"text {number}: no score for {', '.join(missing)}")
        if number in ratings and ratings[number].scores != scores:
            raise RatingParseError(f"text {number} is rated twice, differently")
        ratings.setdefault(number, Rating(scores, " ".join(section.split())[:300]))
    return ratings


def _parse(reply: str, n_texts: int) -> list[Rating]:
    scan = scan_reply(reply)
    rating_sets = []
    for literal in scan.literals:
        if not _RATING_WORDS.search(literal):
            continue
        try:
            data = load_literal(literal)
        except ValueError as error:  # a broken JSON block is refused, never read again as prose
            raise RatingParseError(f"a JSON block of ratings does not parse ({error})") from None
        rating_sets.append(_from_structure(data, n_texts))
    if any(_RATING_WORDS.search(block) for block in scan.broken):
        raise RatingParseError("a JSON block of ratings is not closed properly (cut off by the token limit?)")
    if rating_sets:
        if any(other != rating_sets[0] for other in rating_sets[1:]):
            raise RatingParseError(f"{len(rating_sets)} different sets of ratings in one reply")
        ratings = rating_sets[0]
    else:
        ratings = _from_text(scan.own, n_texts)
    if not ratings:
        if not _RATING_WORDS.search(scan.own) and _RATING_WORDS.search(reply):
            raise RatingParseError("ratings appear only inside quoted text (the answer's words, not the judge's)")
        raise RatingParseError("no ratings found (neither JSON nor 'aspect: score' lines)")
    absent = [i for i in range(1, n_texts + 1) if i not in ratings]
    if absent:
        raise RatingParseError(f"no rating for text(s) {', '.join(map(str, absent))}")
    return [ratings[i] for i in range(1, n_texts + 1)]


def parse_ratings(reply: str, n_texts: int) -> list[Rating]:
    """Ratings of texts 1..``n_texts`` from a judge reply; raises :class:`RatingParseError` saying what is wrong.

    The same hardened path as every judge format (:mod:`~zephyr_tutorial.evaluation.parsing`): a type and
    length gate, one linear scan that sets quoted text aside, strict literals, and refusal over guessing
    (a score of ``4.5``, ``-3``, ``5/10`` or ``Honesty (1-5): 4`` read as 1; a text rated twice or out of
    range; two different rating sets; a JSON block that does not parse). Any other exception inside is a
    :class:`RatingParseError` too, so one hostile reply never costs the batch around it.
    """
    if isinstance(n_texts, bool) or not isinstance(n_texts, int) or n_texts < 1:
        raise ValueError(f"n_texts must be a positive integer, got {n_texts!r}")
    problem = reply_problem(reply)
    if problem is not None:
        raise RatingParseError(problem)
    try:
        return _parse(reply, n_texts)
    except RatingParseError:
        raise
    except Exception as error:  # untrusted input: every failure mode is a parse failure, by design
        raise RatingParseError(f"unreadable reply ({type(error).__name__})") from None


def shuffled_order(n: int, key: str, seed: int = 0) -> list[int]:
    """A reproducible permutation: position ``j`` of the judge's view shows original completion ``order[j]``."""
    order = list(range(n))
    random.Random(f"{seed}:{key}").shuffle(order)
    return order
