"""Reading judge replies: untrusted text in, a typed verdict or a clear parse failure out.

A judge's reply is model output, so it is treated like any untrusted input. The
AlpacaEval prompt tells the judge "we will directly execute it in Python"; we
never do. Every judge format goes through the same hardened path:

1. :func:`reply_problem`: the reply must be a string, non-empty and at most :data:`MAX_REPLY_CHARS` long
   (checked before anything reads it, so a 10 MB reply costs nothing);
2. :func:`scan_reply`: one linear pass that blanks what the judge *quotes* (answer sections echoed from the
   prompt, ``> `` block quotes, ``"..."`` and ``“...”`` spans of prose, triple-quoted strings) and finds the
   top-level ``{...}`` / ``[...]`` literals of what remains. A verdict that appears only inside quoted
   answer text is the answer's, not the judge's;
3. the format's own reading, on the judge's own text: literals with :func:`load_literal` (strict JSON, else
   :func:`ast.literal_eval`, which accepts only literals: a call such as ``__import__('os').system(...)``
   is a ``ValueError``, not an execution), markers with regular expressions that cannot backtrack;
4. refusal over guessing: several different verdicts, duplicated keys, out-of-range values and verdicts
   found only in quoted text are failures.

Every ``parse_*`` function returns :class:`Parsed`: ``value`` on success, ``error`` (a one-line reason) on
failure, and never raises: any exception inside is mapped to a failure (:func:`hardened`). Failures are
counted and reported by the caller, never guessed.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_REPLY_CHARS = 20_000
"""Longer replies are refused before parsing, so a runaway judge cannot make the parser slow."""

_MAX_DIGITS = 20
"""Integers longer than this in a literal are refused: no verdict is such a number."""
_DOUBLE_BRACKET_NUMBER = re.compile(r"\[\[[ \t]{0,3}([+-]?\d{1,6}(?:\.\d{1,6})?)[ \t]{0,3}\]\]")
# MT-Bench's fallback reads any "[n]", which also matches footnotes and list indices ("reference [1]"); here it
# is read only where it is labelled as the rating.
_LABELLED_SINGLE_BRACKET = re.compile(
    r"\brating\b[*_]{0,2}[ \t]{0,3}[:=][ \t]{0,3}[*_]{0,2}\[[ \t]{0,3}([+-]?\d{1,6}(?:\.\d{1,6})?)[ \t]{0,3}\](?!\])",
    re.IGNORECASE,
)
_LIST_OF_DICTS = re.compile(r"\[[ \t\r\n]{0,40}\{")
_VERDICT = re.compile(r"\[\[[ \t]{0,3}([ABC])[ \t]{0,3}\]\]")
_ECHOED_SECTION = re.compile(
    r"\[The (?P<edge>Start|End) of (?P<name>[^\]\n]{1,80})\]|<(?P<close>/?)text[ \t]?(?P<number>\d{1,3})>",
    re.IGNORECASE,
)
"""The prompts' answer delimiters (MT-Bench's ``[The Start of Assistant's Answer]``, UltraFeedback's
``<text 1>``): what lies between an echoed pair is the answer being judged."""
_LITERAL_OPENER = re.compile(r"[{\[][ \t\r\n]{0,40}[{\[\"'\d+\-}\]]")
"""Where a literal may start: ``{`` or ``[`` followed by a quote, a bracket or a number (not ``{really}``)."""


@dataclass(frozen=True)
class Parsed:
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fail(reason: str) -> Parsed:
    return Parsed(error=reason)


def reply_problem(reply: Any) -> str | None:
    """Why ``reply`` cannot be parsed at all (not a string, too long, empty), or None."""
    if not isinstance(reply, str):
        return f"reply is {type(reply).__name__}, not text"
    if len(reply) > MAX_REPLY_CHARS:
        return f"reply longer than {MAX_REPLY_CHARS} characters"
    if not reply.strip():
        return "empty reply"
    return None


def hardened(parse: Callable[..., Parsed]) -> Callable[..., Parsed]:
    """Wrap a reply parser: the :func:`reply_problem` gate first, and any exception inside becomes a failure.

    A parser bug on a hostile reply must cost one unparseable judgment, never the batch around it."""

    @functools.wraps(parse)
    def guarded(reply, *args, **kwargs) -> Parsed:
        problem = reply_problem(reply)
        if problem is not None:
            return _fail(problem)
        try:
            return parse(reply, *args, **kwargs)
        except Exception as error:  # untrusted input: every failure mode is a parse failure, by design
            return _fail(f"unreadable reply ({type(error).__name__})")

    return guarded


# --------------------------------------------------------------------------- one scan of the reply


@dataclass(frozen=True)
class ReplyScan:
    own: str
    """The reply with every quoted span blanked by spaces (same length, so positions agree)."""
    literals: list[str]
    """Balanced top-level ``{...}`` / ``[...]`` spans of the judge's own text, in order."""
    broken: list[str]
    """Literals opened in the judge's own text that never close or close with the wrong bracket (a reply cut
    by the token limit, broken JSON), each from its opener on."""


_VISIBLE = re.compile(r"[^\n]")


def _blank(chars: list[str], start: int, end: int) -> None:
    """Replace ``chars[start:end]`` by spaces, keeping line breaks (so that line-based reading still works)."""
    chars[start:end] = _VISIBLE.sub(" ", "".join(chars[start:end]))


def _blank_echoed_sections(text: str, chars: list[str]) -> None:
    open_at, open_key = None, None
    for match in _ECHOED_SECTION.finditer(text):
        if match["edge"]:
            key, opening = ("section", match["name"].strip().lower()), match["edge"].lower() == "start"
        else:
            key, opening = ("text", match["number"]), not match["close"]
        if open_at is None:
            if opening:
                open_at, open_key = match.start(), key
        elif not opening and key == open_key:
            _blank(chars, open_at, match.end())
            open_at = None
    if open_at is not None:  # an answer section that never ends: everything after its start is the answer's
        _blank(chars, open_at, len(text))


_LITERAL_EVENT = re.compile(r"[\"'{}\[\]]")
_STRING_EVENT = {quote: re.compile(rf"[{quote}\\\n]") for quote in "'\""}


def _literal_end(text: str, start: int, limit: int) -> tuple[int, str]:
    """Scan the literal opened at ``start``, reading at most up to ``limit``: ``(end, "ok")``,
    ``(stop, "mismatch")`` or ``(limit, "open")``.

    Jumps from one bracket or quote to the next with a regular expression, so text in between costs nothing."""
    closers = ["}" if text[start] == "{" else "]"]
    index = start + 1
    while True:
        event = _LITERAL_EVENT.search(text, index, limit)
        if event is None:
            return limit, "open"
        char, index = event.group(), event.end()
        if char in "'\"":  # a string: up to its closing quote (a backslash escapes; strings do not span lines)
            pattern = _STRING_EVENT[char]
            while True:
                inside = pattern.search(text, index, limit)
                if inside is None:
                    return limit, "open"
                index = inside.end()
                if inside.group() == "\\":
                    index += 1
                else:
                    break
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char != closers[-1]:
            return index, "mismatch"
        else:
            closers.pop()
            if not closers:
                return index, "ok"


_PROSE_EVENT = re.compile(r'["“{\[]')
_QUOTE_EVENT = re.compile(r'["“]')
_WITHOUT_CURLY = {_PROSE_EVENT: re.compile(r'["{\[]'), _QUOTE_EVENT: re.compile(r'["]')}
"""The same events, for the rest of a line where an opening curly quote was found unclosed."""


def _scan_own_text(text: str, chars: list[str]) -> tuple[list[str], list[str]]:
    """Blank prose quotations in ``chars`` and collect the literals of what is left, in one pass.

    A ``"..."`` or ``“...”`` span closed on its line, or a triple-quoted string, is a quotation unless it lies
    inside a literal (whose strings are its own). A literal that does not close (or closes with the wrong
    bracket) is recorded as broken and its opener read as prose, so quotations after it are still seen; the
    bracket matching reads at most about half the reply in all, so the whole scan stays linear."""
    literals: list[str] = []
    broken: list[str] = []
    budget = len(text) // 2 + 1_000
    events = _PROSE_EVENT
    line_end, unclosed_curly_until = -1, -1
    i = 0
    while True:
        if i <= unclosed_curly_until:  # no “ on the rest of this line can close: do not stop at each one
            event = _WITHOUT_CURLY[events].search(text, i, unclosed_curly_until + 1)
            if event is None:
                i = unclosed_curly_until + 1
                continue
        else:
            event = events.search(text, i)
            if event is None:
                break
        i, char = event.start(), event.group()
        if i > line_end:
            line_end = text.find("\n", i)
            line_end = len(text) if line_end == -1 else line_end
        if char == '"' and text.startswith('"""', i) and (end := text.find('"""', i + 3)) != -1:
            _blank(chars, i, end + 3)
            i = end + 3
        elif char == '"' or (char == "“" and i > unclosed_curly_until):
            end = text.find('"' if char == '"' else "”", i + 1, line_end)
            if end == -1:  # no closing mark on this line: a lone inch sign or apostrophe-like use, not a quote
                unclosed_curly_until = line_end if char == "“" else unclosed_curly_until
                i += 1
            else:
                chars[i : end + 1] = " " * (end + 1 - i)  # within one line: no line break to keep
                i = end + 1
        elif char in "{[" and _LITERAL_OPENER.match(text, i):
            end, how = _literal_end(text, i, min(len(text), i + budget))
            budget -= end - i
            if how == "ok":
                literals.append(text[i:end])
                i = end
            else:
                broken.append(text[i:end])
                i += 1
            if budget <= 0:  # too many broken openers to tell literals apart: no literal is trusted
                broken.append(text)
                events = _QUOTE_EVENT
        else:
            i += 1
    return literals, broken


def _find_literals(text: str) -> list[str]:
    literals, _ = _scan_own_text(text, list(text))
    return literals


_BLOCK_QUOTE = re.compile(r"^[ \t]{0,40}>[^\n]*", re.MULTILINE)


def scan_reply(reply: str) -> ReplyScan:
    """What the judge itself wrote (quoted spans blanked) and the literals in it, in one linear pass."""
    chars = list(reply)
    _blank_echoed_sections(reply, chars)
    text = _BLOCK_QUOTE.sub(lambda match: " " * len(match.group()), "".join(chars))
    chars = list(text)
    literals, broken = _scan_own_text(text, chars)
    return ReplyScan("".join(chars), literals, broken)


# --------------------------------------------------------------------------- literals, strictly


class _Refused(ValueError):
    """A literal that parses but is refused (a repeated key, a number no score can be)."""


def _unique_pairs(pairs):
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _Refused("a key appears twice in one object")
    return data


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:20]} is not finite")
    return value


def _short_int(text: str) -> int:
    if len(text) > _MAX_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits")
    return int(text)


def _refuse_constant(name: str):
    raise _Refused(f"{name} is not a number")


def _check_python_literal(tree: ast.AST) -> None:
    for node in ast.walk(tree):  # iterative: no recursion on deep input
        if isinstance(node, ast.Dict):
            keys = [ast.dump(key) for key in node.keys if key is not None]
            if len(keys) != len(set(keys)):
                raise _Refused("a key appears twice in one object")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if isinstance(node.value, int) and len(str(abs(node.value))) > _MAX_DIGITS:
                raise _Refused("an integer of more than 20 digits")
            if isinstance(node.value, float) and not math.isfinite(node.value):
                raise _Refused("a number that is not finite")


def load_literal(text: str) -> Any:
    """A JSON or Python literal, or ``ValueError`` saying why not; never evaluates code.

    Stricter than both readers: a key twice in one object (which they would resolve silently to the last
    value), ``NaN``/``Infinity`` and integers of more than 20 digits are refused."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_float=_finite,
            parse_int=_short_int,
            parse_constant=_refuse_constant,
        )
    except _Refused:
        raise
    except (ValueError, RecursionError):
        pass  # not JSON; maybe a Python literal (single quotes, True/None)
    try:
        tree = ast.parse(text.strip(), mode="eval")
        _check_python_literal(tree)
        return ast.literal_eval(tree)
    except _Refused:
        raise
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not a Python or JSON literal") from None


def outermost_lists(text: str) -> list[str]:
    """Every outermost ``[...]`` span of ``text`` that starts with a dict, found in one linear pass.

    Brackets inside quoted strings do not count. (A regular expression for nested
    lists backtracks exponentially on adversarial input; this scan cannot.)
    """
    return _lists_of_dicts(_find_literals(text))


def _lists_of_dicts(literals: list[str]) -> list[str]:
    return [span for span in literals if span.startswith("[") and span[1:].lstrip().startswith("{")]


_QUOTED_ONLY = "{} appears only inside quoted text (the answer's words, not the judge's)"


# --------------------------------------------------------------------------- the formats


@hardened
def parse_alpaca_ranking(reply: str) -> Parsed:
    """The winner of an AlpacaEval ranking reply: ``Parsed("model_1")`` or ``Parsed("model_2")``.

    Accepts the list of ``{'model': ..., 'rank': ...}`` dicts alone or wrapped in
    prose or a code fence; refuses several different lists, missing or repeated
    models, ranks other than 1 and 2, anything that is not a literal, and a list
    that appears only in quoted text.
    """
    scan = scan_reply(reply)
    candidates = _lists_of_dicts(scan.literals)
    if not candidates:
        if _lists_of_dicts(scan.broken):
            return _fail("no list of {'model', 'rank'} dicts found (one is opened but not closed properly)")
        if _LIST_OF_DICTS.search(reply):
            return _fail(_QUOTED_ONLY.format("ranking"))
        return _fail("no list of {'model', 'rank'} dicts found")
    rankings = []
    for candidate in candidates:
        try:
            data = load_literal(candidate)
        except ValueError as error:
            return _fail(f"ranking is not a literal: {error}")
        rankings.append(data)
    if any(r != rankings[0] for r in rankings[1:]):
        return _fail(f"{len(rankings)} different rankings in one reply")
    ranking = rankings[0]
    if not isinstance(ranking, list) or len(ranking) != 2 or not all(isinstance(d, dict) for d in ranking):
        return _fail("expected a list of exactly two dicts")
    models, ranks = [], []
    for entry in ranking:
        model, rank = entry.get("model"), entry.get("rank")
        if not isinstance(model, str) or model not in ("model_1", "model_2"):
            return _fail(f"unknown model name {str(model)[:40]!r}")
        if isinstance(rank, bool) or not isinstance(rank, (int, str)) or str(rank).strip() not in ("1", "2"):
            return _fail(f"rank must be 1 or 2, got {str(rank)[:40]!r}")
        models.append(model)
        ranks.append(int(str(rank).strip()))
    if sorted(models) != ["model_1", "model_2"] or sorted(ranks) != [1, 2]:
        return _fail("each model must appear once, with ranks 1 and 2")
    return Parsed(models[ranks.index(1)])


@hardened
def parse_rating(reply: str, low: float = 1, high: float = 10) -> Parsed:
    """The ``[[rating]]`` of an MT-Bench single-answer reply; ``Rating: [n]`` is accepted when no ``[[ ]]`` is there.

    A bare ``[n]`` elsewhere is a footnote or an index, not a rating. Several different ratings, a rating
    outside ``[low, high]``, or one found only in quoted text is a failure.
    """
    own = scan_reply(reply).own
    found = _DOUBLE_BRACKET_NUMBER.findall(own) or _LABELLED_SINGLE_BRACKET.findall(own)
    if not found:
        quoted = _DOUBLE_BRACKET_NUMBER.search(reply) or _LABELLED_SINGLE_BRACKET.search(reply)
        return _fail(_QUOTED_ONLY.format("[[rating]]") if quoted else "no [[rating]] found")
    values = {float(v) for v in found}
    if len(values) > 1:
        return _fail(f"several different ratings: {sorted(values)}")
    rating = values.pop()
    if not low <= rating <= high:
        return _fail(f"rating {rating:g} outside {low:g}-{high:g}")
    return Parsed(rating)


@hardened
def parse_pairwise_verdict(reply: str) -> Parsed:
    """``"A"``, ``"B"`` or ``"tie"`` from an MT-Bench pairwise reply (``[[A]]``, ``[[B]]``, ``[[C]]``).

    A reply naming more than one different verdict is a failure, not the first one; so is a verdict that
    appears only inside quoted text.
    """
    verdicts = set(_VERDICT.findall(scan_reply(reply).own))
    if not verdicts:
        if _VERDICT.search(reply):
            return _fail(_QUOTED_ONLY.format("verdict"))
        return _fail("no [[A]], [[B]] or [[C]] verdict found")
    if len(verdicts) > 1:
        return _fail(f"several different verdicts: {sorted(verdicts)}")
    return Parsed({"A": "A", "B": "B", "C": "tie"}[verdicts.pop()])
