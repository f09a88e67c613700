"""UltraFeedback's rating prompt, robust parsing of rating replies, reproducible shuffling."""

from __future__ import annotations

import time

import pytest

from zephyr_tutorial.evaluation.rating import (
    ASPECTS,
    RatingParseError,
    build_rating_prompt,
    parse_ratings,
    shuffled_order,
)

from samples import ratings_json


def test_parse_plain_json():
    ratings = parse_ratings(ratings_json([5, 4, 3, 2], [1, 1, 2, 2]), 2)
    assert ratings[0].scores == dict(zip(ASPECTS, [5, 4, 3, 2]))
    assert ratings[0].mean == pytest.approx(3.5)
    assert ratings[1].mean == pytest.approx(1.5)
    assert ratings[1].rationale == "text 2"


def test_parse_json_inside_prose_and_code_fence():
    reply = "Sure! Here are my ratings:\n```json\n" + ratings_json([3, 3, 3, 3]) + "\n```\nHope this helps {really}."
    assert parse_ratings(reply, 1)[0].mean == 3


def test_parse_python_literal_and_string_scores():
    reply = (
        "{'ratings': [{'text': 1, 'instruction_following': '4', 'honesty': 5.0, 'truthfulness': 4, 'helpfulness': 3}]}"
    )
    assert parse_ratings(reply, 1)[0].scores == {
        "instruction_following": 4,
        "honesty": 5,
        "truthfulness": 4,
        "helpfulness": 3,
    }


def test_parse_prose_fallback_in_any_text_order():
    reply = (
        "Text 2: Instruction following: 2, Honesty: 3, Truthfulness: 1, Helpfulness: 2.\n"
        "Text 1:\ninstruction-following: 5\nhonesty - 5\ntruthfulness: 4\nhelpfulness: 5"
    )
    first, second = parse_ratings(reply, 2)
    assert first.scores["truthfulness"] == 4 and second.scores["truthfulness"] == 1


@pytest.mark.parametrize(
    "reply, message",
    [
        ("", "empty reply"),
        ("The capital of France is Paris.", "no ratings found"),
        (ratings_json([5, 4, 3, 2]), "no rating for text(s) 2"),
        ('{"ratings": [{"text": 1, "honesty": 5, "truthfulness": 4, "helpfulness": 3}]}', "instruction_following"),
        (
            '{"ratings": [{"text": 1, "instruction_following": 7, "honesty": 5, "truthfulness": 4, "helpfulness": 3}]}',
            "expected an integer 1-5, got 7",
        ),
        (
            '{"ratings": [{"text": 1, "instruction_following": true, "honesty": 5, "truthfulness": 4, "helpfulness": 3}]}',
            "got True",
        ),
    ],
)
def test_parse_errors_say_what_is_wrong(reply, message):
    with pytest.raises(RatingParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_ratings(reply, 2 if "text(s) 2" in message else 1)


def test_model_output_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    reply = "{'ratings': __import__('pathlib').Path(%r).write_text('x')}" % str(marker)
    with pytest.raises(RatingParseError):
        parse_ratings(reply, 1)
    assert not marker.exists()


def test_rating_prompt_lists_every_text_and_aspect():
    prompt = build_rating_prompt("Name a fruit.", ["Apple.", "Carrot."])
    assert "<text 1>\nApple.\n</text 1>" in prompt and "<text 2>\nCarrot.\n</text 2>" in prompt
    assert all(aspect in prompt for aspect in ASPECTS)


def test_shuffled_order_is_a_reproducible_permutation():
    orders = [shuffled_order(4, f"prompt-{i}") for i in range(20)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert orders == [shuffled_order(4, f"prompt-{i}") for i in range(20)]
    assert len({tuple(order) for order in orders}) > 3


# --------------------------------------------------------------------------- hostile replies (issue 15)

PROSE = "Instruction following: 4\nHonesty: 5\nTruthfulness: 3\nHelpfulness: 4"
ONE = ratings_json([4, 5, 3, 4])


def _refused(reply, n_texts=1):
    with pytest.raises(RatingParseError) as error:
        parse_ratings(reply, n_texts)
    return str(error.value)


@pytest.mark.parametrize(
    "reply",
    [
        ONE.replace('"text": 1', '"text": Infinity'),  # OverflowError before
        ONE.replace('"text": 1', '"text": 1e400'),
        ONE.replace('"text": 1', '"text": ' + "1" * 5000),  # ValueError before
        "{'ratings': [" + "[" * 1000 + "]" * 1000 + "]}",  # RecursionError before
        "{'ratings': {[1]: 2}}",  # TypeError (unhashable) before
        "{'ratings': [{'text': b'1', 'honesty': 5}]}",
        ONE.replace('"text": 1', '"text": 1.5'),  # read as text 1 before
        None,  # AttributeError before
        b'{"ratings": []}',
    ],
)
def test_replies_that_crashed_the_parser_are_parse_errors(reply):
    assert _refused(reply)


@pytest.mark.parametrize(
    "reply, why",
    [
        (PROSE.replace("Honesty: 5", "Honesty: 4.5"), "not a whole number"),
        (PROSE.replace("Honesty: 5", "Honesty: -3"), "not a score 1-5"),
        (PROSE.replace("Honesty: 5", "Honesty: 5/10"), "not on the 1-5 scale"),
        (PROSE.replace("Honesty: 5", "Honesty: 1-5"), "not a score 1-5"),
        ("Text 1:\n" + PROSE + "\n\nText 1:\n" + PROSE.replace("4", "2"), "rated twice"),
        (ONE + "\n" + ONE.replace('"honesty": 5', '"honesty": 1'), "2 different sets of ratings"),
        (ratings_json([4, 5, 3, 4], [1, 1, 1, 1]).replace('"text": 2', '"text": 1'), "text 1 is rated twice"),
        (ONE.replace('"text": 1', '"text": 2'), "but texts 1-1 were shown"),
        (ONE.replace('"honesty": 5', '"honesty": 5, "honesty": 1'), "a key appears twice"),
        (ONE.replace('"text": 1,', '"text": 1 "broken",') + "\n" + PROSE, "does not parse"),  # no prose fallback
        (ONE[:-3] + "\n" + PROSE, "not closed properly"),  # a cut JSON reply, with prose after it
        ('The text reads "Honesty: 5" and more.', "only inside quoted text"),
        ("> " + ONE, "only inside quoted text"),
        ("x" * 10_000_000, "longer than"),
    ],
)
def test_ambiguous_or_out_of_range_ratings_are_refused_not_guessed(reply, why):
    assert why in _refused(reply)


def test_a_scale_annotation_is_not_the_score():
    """``Honesty (1-5): 4`` was read as 1 (the first digit after the name)."""
    (rating,) = parse_ratings(PROSE.replace("Honesty: 5", "Honesty (1-5): 4"), 1)
    assert rating.scores["honesty"] == 4
    (rating,) = parse_ratings(PROSE.replace("Honesty: 5", "**Honesty:** 2/5"), 1)
    assert rating.scores["honesty"] == 2
    (rating,) = parse_ratings(ONE + "\nTo repeat:\n" + ONE, 1)  # the same set twice is one set
    assert rating.scores["honesty"] == 5


@pytest.mark.parametrize("reply", ["{" * 19_999, '{"ratings": [' * 1_500, "Honesty: " * 2_200, "[[" * 9_999])
def test_adversarial_replies_are_refused_fast(reply):
    start = time.perf_counter()
    assert _refused(reply, 4)
    assert time.perf_counter() - start < 0.5  # was 14-49 s for 20,000 braces; the benchmark measures < 50 ms
