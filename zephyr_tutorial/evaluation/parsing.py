"""Reading judge replies: untrusted text in, a typed verdict or a clear parse failure out.

A judge's reply is model output, so it is treated like any untrusted input. The
AlpacaEval prompt tells the judge "we will directly execute it in Python"; we
never do. Replies are read with :func:`ast.literal_eval` (which accepts only
literals: a call such as ``__import__('os').system(...)`` is a ``ValueError``,
not an execution), JSON or regular expressions, then the structure is checked.
Every function returns :class:`Parsed`: ``value`` on success, ``error`` (a
one-line reason) on failure. Failures are counted and reported by the caller,
never raised and never guessed.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_REPLY_CHARS = 20_000
"""Longer replies are refused before parsing, so a runaway judge cannot make the parser slow."""

_STARTS_WITH_DICT = re.compile(r"\[\s*\{")
_DOUBLE_BRACKET_NUMBER = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SINGLE_BRACKET_NUMBER = re.compile(r"(?<!\[)\[\s*(\d+(?:\.\d+)?)\s*\](?!\])")
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


@dataclass(frozen=True)
class Parsed:
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fail(reason: str) -> Parsed:
    return Parsed(error=reason)


def _literal(text: str) -> Any:
    """A Python or JSON literal, or raise ``ValueError``; never evaluates code."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not a Python or JSON literal") from None


def outermost_lists(text: str) -> list[str]:
    """Every outermost ``[...]`` span of ``text`` that starts with a dict, found in one linear pass.

    Brackets inside quoted strings do not count. (A regular expression for nested
    lists backtracks exponentially on adversarial input; this scan cannot.)
    """
    spans, stack, quote, escaped = [], [], None, False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote or char == "\n":
                quote = None
        elif stack and char in "'\"":
            quote = char
        elif char == "[":
            stack.append(index)
        elif char == "]" and stack:
            start = stack.pop()
            if not stack and _STARTS_WITH_DICT.match(text, start):
                spans.append(text[start : index + 1])
    return spans


def parse_alpaca_ranking(reply: str) -> Parsed:
    """The winner of an AlpacaEval ranking reply: ``Parsed("model_1")`` or ``Parsed("model_2")``.

    Accepts the list of ``{'model': ..., 'rank': ...}`` dicts alone or wrapped in
    prose or a code fence; refuses several different lists, missing or repeated
    models, ranks other than 1 and 2, and anything that is not a literal.
    """
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty reply")
    if len(reply) > MAX_REPLY_CHARS:
        return _fail(f"reply longer than {MAX_REPLY_CHARS} characters")
    candidates = outermost_lists(reply)
    if not candidates:
        return _fail("no list of {'model', 'rank'} dicts found")
    rankings = []
    for candidate in candidates:
        try:
            data = _literal(candidate)
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
        if model not in ("model_1", "model_2"):
            return _fail(f"unknown model name {model!r}")
        if isinstance(rank, bool) or not isinstance(rank, (int, str)) or str(rank) not in ("1", "2"):
            return _fail(f"rank must be 1 or 2, got {rank!r}")
        models.append(model)
        ranks.append(int(rank))
    if sorted(models) != ["model_1", "model_2"] or sorted(ranks) != [1, 2]:
        return _fail("each model must appear once, with ranks 1 and 2")
    return Parsed(models[ranks.index(1)])


def parse_rating(reply: str, low: float = 1, high: float = 10) -> Parsed:
    """The ``[[rating]]`` of an MT-Bench single-answer reply (``[rating]`` is accepted when no ``[[ ]]`` is there).

    Several different ratings, or a rating outside ``[low, high]``, is a failure.
    """
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty reply")
    if len(reply) > MAX_REPLY_CHARS:
        return _fail(f"reply longer than {MAX_REPLY_CHARS} characters")
    found = _DOUBLE_BRACKET_NUMBER.findall(reply) or _SINGLE_BRACKET_NUMBER.findall(reply)
    if not found:
        return _fail("no [[rating]] found")
    values = {float(v) for v in found}
    if len(values) > 1:
        return _fail(f"several different ratings: {sorted(values)}")
    rating = values.pop()
    if not low <= rating <= high:
        return _fail(f"rating {rating:g} outside {low:g}-{high:g}")
    return Parsed(rating)


def parse_pairwise_verdict(reply: str) -> Parsed:
    """``"A"``, ``"B"`` or ``"tie"`` from an MT-Bench pairwise reply (``[[A]]``, ``[[B]]``, ``[[C]]``).

    A reply naming more than one different verdict is a failure, not the first one.
    """
    if not isinstance(reply, str) or not reply.strip():
        return _fail("empty reply")
    if len(reply) > MAX_REPLY_CHARS:
        return _fail(f"reply longer than {MAX_REPLY_CHARS} characters")
    verdicts = set(_VERDICT.findall(reply))
    if not verdicts:
        return _fail("no [[A]], [[B]] or [[C]] verdict found")
    if len(verdicts) > 1:
        return _fail(f"several different verdicts: {sorted(verdicts)}")
    return Parsed({"A": "A", "B": "B", "C": "tie"}[verdicts.pop()])
