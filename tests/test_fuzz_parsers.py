"""Property-based fuzzing of everything that reads untrusted text: the judge-reply parsers and the JSONL reader.

Whatever the input, a parser returns a verdict or a failure and the reader a row or a ``DataError``: no other
exception, ever, and quickly. Random text hardly ever contains a verdict, so the strategies below build replies
out of the pieces the parsers look for (brackets, quotes, verdict markers, aspect names, digits) and mutate
valid replies. Kept small (``max_examples``) so that the suite stays fast; the deadline catches a slow path.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zephyr_tutorial.data import DataError, parse_json_line
from zephyr_tutorial.evaluation.parsing import (
    MAX_REPLY_CHARS,
    parse_alpaca_ranking,
    parse_pairwise_verdict,
    parse_rating,
)
from zephyr_tutorial.evaluation.rating import ASPECTS, RatingParseError, parse_ratings

from samples import ratings_json

FUZZ = settings(max_examples=100, deadline=1_000, database=None, suppress_health_check=[HealthCheck.too_slow])

# fmt: off
PIECES = st.sampled_from([
    "[[", "]]", "[", "]", "{", "}", '"', "'", "“", "”", '"""', "\\", "\n", "> ", ":", ",", " ",
    "[[A]]", "[[B]]", "[[C]]", "[[7]]", "[[7.5]]", "Rating: [3]", "[1]", "-", "/10", "/5", "(1-5)",
    "model_1", "model_2", "'model': ", "'rank': ", "1", "2", "4.5", "1e400", "Infinity", "NaN",
    "[The Start of Assistant's Answer]", "[The End of Assistant's Answer]", "<text 1>", "</text 1>",
    "Text 1:", "Text 2:", '"ratings": ', '"text": ', *ASPECTS, "Instruction following", "Honesty",
])
# fmt: on
REPLIES = st.one_of(
    st.text(max_size=300),
    st.lists(PIECES, max_size=60).map("".join),
    st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=80).map("".join),
)
VALID = [
    "[{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}]",
    "The answer is correct. Rating: [[8]]",
    "A is more accurate. [[A]]",
    ratings_json([5, 4, 3, 2], [1, 2, 3, 4]),
    "Text 1:\nInstruction following: 4\nHonesty: 5\nTruthfulness: 3\nHelpfulness: 4",
]


def _mutations():
    """A valid reply with a random slice replaced by random pieces: near misses are where parsers err."""
    return st.tuples(st.sampled_from(VALID), st.integers(0, 200), st.integers(0, 30), REPLIES).map(
        lambda t: t[0][: t[1]] + t[3] + t[0][t[1] + t[2] :]
    )


def _check_parsed(parsed):
    assert parsed.ok != (parsed.error is not None)
    if not parsed.ok:
        assert isinstance(parsed.error, str) and parsed.error and "\n" not in parsed.error


@FUZZ
@given(st.one_of(REPLIES, _mutations()))
def test_pairwise_and_rating_parsers_never_raise(reply):
    _check_parsed(parse_alpaca_ranking(reply))
    rating = parse_rating(reply)
    _check_parsed(rating)
    assert rating.value is None or 1 <= rating.value <= 10
    verdict = parse_pairwise_verdict(reply)
    _check_parsed(verdict)
    assert verdict.value in (None, "A", "B", "tie")


@FUZZ
@given(st.one_of(REPLIES, _mutations()), st.integers(1, 3))
def test_the_ultrafeedback_parser_returns_ratings_or_its_own_error(reply, n_texts):
    try:
        ratings = parse_ratings(reply, n_texts)
    except RatingParseError as error:
        assert str(error)
        return
    assert len(ratings) == n_texts
    for rating in ratings:
        assert set(rating.scores) == set(ASPECTS) and all(
            type(s) is int and 1 <= s <= 5 for s in rating.scores.values()
        )


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.binary(max_size=20), st.lists(st.text(max_size=3), max_size=3)))
def test_replies_that_are_not_text_are_failures(reply):
    for parse in (parse_alpaca_ranking, parse_rating, parse_pairwise_verdict):
        assert not parse(reply).ok
    with pytest.raises(RatingParseError):
        parse_ratings(reply, 1)


@settings(max_examples=20, deadline=2_000, database=None)
@given(st.sampled_from(["{", "[", '"', "[{'", "“", "\n>", "[[A]] "]), st.integers(1, MAX_REPLY_CHARS // 6))
def test_long_runs_of_one_piece_stay_fast(piece, repeat):
    reply = (piece * repeat)[:MAX_REPLY_CHARS]
    for parse in (parse_alpaca_ranking, parse_rating, parse_pairwise_verdict):
        _check_parsed(parse(reply))
    with pytest.raises(RatingParseError):
        parse_ratings(reply, 2)


# fmt: off
JSON_PIECES = st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\\u", b"d800", b"\\ud800", b"\\ud83d\\ude00", b"1e400",
    b"NaN", b"Infinity", b"-", b"0", b"9" * 400, b"true", b"null", b'"id"', b'"a"', b"\xff", b"\xc3\xa9",
    b"\x00", b"\xef\xbb\xbf", b"\x1f\x8b", b"\xff\xfe", b" ",
])
# fmt: on
JSON_LINES = st.one_of(
    st.binary(max_size=200),
    st.lists(JSON_PIECES, max_size=40).map(b"".join),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children)),
        max_leaves=20,
    ).map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(JSON_LINES, st.integers(1, 3))
def test_the_jsonl_reader_returns_a_value_or_a_data_error(raw, line):
    try:
        value = parse_json_line(raw, "fuzz.jsonl", line)
    except DataError as error:
        assert error.path == "fuzz.jsonl" and error.line == line and str(error).startswith(f"fuzz.jsonl, line {line}")
        return
    # what the reader accepts can be written back as UTF-8 JSON: no lone surrogate, no NaN, no huge number
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
