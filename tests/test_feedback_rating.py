"""Rating prompt, robust parsing of judge replies, shuffling and retries of the text judge."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.backends import CachedBackend, Completion
from zephyr_tutorial.feedback.rating import (
    ASPECTS,
    RatingParseError,
    TextJudge,
    build_rating_prompt,
    parse_ratings,
    shuffled_order,
)


def ratings_json(*score_lists):
    return json.dumps({"ratings": [
        dict({"text": i}, **dict(zip(ASPECTS, scores)), rationale=f"text {i}")
        for i, scores in enumerate(score_lists, start=1)
    ]})


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
    reply = "{'ratings': [{'text': 1, 'instruction_following': '4', 'honesty': 5.0, 'truthfulness': 4, 'helpfulness': 3}]}"
    assert parse_ratings(reply, 1)[0].scores == {"instruction_following": 4, "honesty": 5, "truthfulness": 4, "helpfulness": 3}


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
        ('{"ratings": [{"text": 1, "instruction_following": 7, "honesty": 5, "truthfulness": 4, "helpfulness": 3}]}',
         "expected an integer 1-5, got 7"),
        ('{"ratings": [{"text": 1, "instruction_following": true, "honesty": 5, "truthfulness": 4, "helpfulness": 3}]}',
         "got True"),
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


class ScriptedJudgeBackend:
    """Rates each shown text by its content (so the right rating must travel back to the right completion)."""

    name = "scripted"

    def __init__(self, broken_first: int = 0, always_broken: bool = False):
        self.calls = []
        self.broken_first = broken_first
        self.always_broken = always_broken

    def chat(self, conversations, config=None):
        replies = []
        for conversation in conversations:
            self.calls.append(conversation)
            prompt = conversation[1]["content"]
            if self.always_broken or len(self.calls) <= self.broken_first:
                replies.append(Completion("I think they are all quite nice."))
                continue
            texts = [prompt.split(f"<text {i}>\n")[1].split("\n</text")[0] for i in range(1, prompt.count("</text ") + 1)]
            replies.append(Completion(ratings_json(*[[int(t[-1])] * 4 for t in texts])))
        return replies


def test_text_judge_shuffles_and_maps_back():
    backend = ScriptedJudgeBackend()
    judge = TextJudge(backend)
    items = [(f"p{i}", "Say something.", ["answer 5", "answer 1", "answer 3", "answer 2"]) for i in range(6)]
    results = judge.rate(items)
    for ratings in results:
        assert [r.mean for r in ratings] == [5, 1, 3, 2]
    shown_first = {call[1]["content"].split("<text 1>\n")[1][:8] for call in backend.calls}
    assert len(shown_first) > 1, "the judge always saw the same completion first: no shuffling"


def test_text_judge_retries_once_then_records_missing():
    judge = TextJudge(ScriptedJudgeBackend(broken_first=1))
    [ratings] = judge.rate([("p", "Q?", ["a 4", "b 2"])])
    assert [r.mean for r in ratings] == [4, 2] and judge.retries == 1

    backend = ScriptedJudgeBackend(always_broken=True)
    judge = TextJudge(backend)
    [ratings] = judge.rate([("p", "Q?", ["a 4", "b 2"])])
    assert len(backend.calls) == 2, "exactly one retry"
    assert all(r.mean is None and "after one retry" in r.missing_reason for r in ratings)
    assert backend.calls[1][-1]["content"].startswith("Your reply could not be read (no ratings found")


def test_cached_judgments_are_not_requested_twice(tmp_path):
    backend = ScriptedJudgeBackend()
    judge = TextJudge(CachedBackend(backend, tmp_path / "cache.sqlite"))
    items = [("p1", "Q?", ["x 3", "y 5"])]
    first = judge.rate(items)
    second = TextJudge(CachedBackend(backend, tmp_path / "cache.sqlite")).rate(items)
    assert len(backend.calls) == 1
    assert [r.scores for r in first[0]] == [r.scores for r in second[0]]
