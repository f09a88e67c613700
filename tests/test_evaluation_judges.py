"""The judge interface, with a generating judge over scripted backends: position swap, prompts, grading, ratings
with shuffling and retries, caching."""

from __future__ import annotations

import math

import pytest

from zephyr_tutorial.backends import CachedBackend, Completion, SamplingConfig
from zephyr_tutorial.evaluation import (
    PairwiseItem,
    SingleItem,
)
from zephyr_tutorial.evaluation.judges import LLMJudge

from samples import ratings_json


class ScriptedJudge:
    """A backend whose reply depends on which answer is shown first: lets tests control position bias."""

    name = "scripted"

    def __init__(self, reply_for):
        self.reply_for = reply_for
        self.calls = 0
        self.seen = 0

    def chat(self, conversations, config=SamplingConfig()):
        self.calls += 1
        self.seen += len(conversations)
        return [Completion(self.reply_for(c[-1]["content"])) for c in conversations]


def _items():
    return [PairwiseItem(f"p{i}", f"question {i}", f"good answer {i}", f"bad answer {i}") for i in range(4)]


def _first_shown(user_text: str) -> str:
    return "good" if user_text.index("good answer") < user_text.index("bad answer") else "bad"


def test_consistent_judge_wins_in_both_orders_with_one_batched_call():
    judge = ScriptedJudge(lambda text: "[[A]]" if _first_shown(text) == "good" else "[[B]]")
    report = LLMJudge(judge, prompt="mt_bench").compare(_items(), swap=True)
    assert judge.calls == 1 and judge.seen == 8
    assert [j.verdict for j in report.judgments] == ["a"] * 4
    assert report.flip_rate == 0.0
    assert report.first_position_rate() == 0.5
    assert report.win_rate("a").value == 1.0


def test_position_biased_judge_flips_and_counts_as_ties():
    judge = ScriptedJudge(lambda text: "[[A]]")  # always prefers whatever is shown first
    report = LLMJudge(judge, prompt="mt_bench").compare(_items(), swap=True)
    assert report.flip_rate == 1.0
    assert report.first_position_rate() == 1.0
    assert [j.verdict for j in report.judgments] == ["tie"] * 4
    assert report.win_rate("a").value == 0.5
    no_swap = LLMJudge(judge, prompt="mt_bench").compare(_items(), swap=False)
    assert no_swap.win_rate("a").value == 1.0 and math.isnan(no_swap.flip_rate)


def test_alpaca_prompt_maps_model_names_back_to_items():
    def reply(text):
        winner = "model_1" if _first_shown(text) == "good" else "model_2"
        loser = "model_2" if winner == "model_1" else "model_1"
        return f"[{{'model': '{winner}', 'rank': 1}}, {{'model': '{loser}', 'rank': 2}}]"

    report = LLMJudge(ScriptedJudge(reply), prompt="alpaca_eval").compare(_items(), swap=True)
    assert report.verdicts == {f"p{i}": "a" for i in range(4)}


def test_unparseable_replies_are_counted_not_raised():
    replies = iter(["[[A]]", "I refuse", "[[B]]", "[[A]] [[B]]"] + ["[[B]]"] * 4)
    report = LLMJudge(ScriptedJudge(lambda _: next(replies))).compare(_items(), swap=True)
    assert report.parse_failures == 2
    assert report.to_dict()["parse_failures"] == 2
    failed = [j for j in report.judgments if j.verdict is None]
    assert any("no [[A]]" in e for j in failed for e in j.errors)


def test_single_grading_parses_ratings_and_reports_failures():
    judge = ScriptedJudge(lambda text: "Rating: [[9]]" if "Paris" in text else "no idea")
    items = [SingleItem("1", "Capital of France?", "Paris"), SingleItem("2", "Capital of France?", "Lyon")]
    results = LLMJudge(judge).grade(items)
    assert [r.rating for r in results] == [9.0, None]
    assert results[1].error == "no [[rating]] found"


def test_cached_judge_answers_repeated_requests_from_disk(tmp_path):
    judge = ScriptedJudge(lambda text: "[[A]]")
    cached = CachedBackend(judge, tmp_path / "judge.sqlite")
    first = LLMJudge(cached).compare(_items(), swap=True)
    second = LLMJudge(CachedBackend(judge, tmp_path / "judge.sqlite")).compare(_items(), swap=True)
    assert judge.calls == 1
    assert [j.verdict for j in first.judgments] == [j.verdict for j in second.judgments]


def test_first_order_only_keeps_the_unswapped_verdicts():
    judge = ScriptedJudge(lambda text: "[[A]]")
    report = LLMJudge(judge, prompt="mt_bench").compare(_items(), swap=True)
    single = report.first_order_only()
    assert [j.verdict for j in single.judgments] == ["a"] * 4 and not single.swap
    assert single.win_rate("a").value == 1.0 and math.isnan(single.flip_rate)


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
            texts = [
                prompt.split(f"<text {i}>\n")[1].split("\n</text")[0] for i in range(1, prompt.count("</text ") + 1)
            ]
            replies.append(Completion(ratings_json(*[[int(t[-1])] * 4 for t in texts])))
        return replies


def test_text_judge_shuffles_and_maps_back():
    backend = ScriptedJudgeBackend()
    judge = LLMJudge(backend)
    items = [(f"p{i}", "Say something.", ["answer 5", "answer 1", "answer 3", "answer 2"]) for i in range(6)]
    results = judge.rate(items)
    for ratings in results:
        assert [r.mean for r in ratings] == [5, 1, 3, 2]
    shown_first = {call[1]["content"].split("<text 1>\n")[1][:8] for call in backend.calls}
    assert len(shown_first) > 1, "the judge always saw the same completion first: no shuffling"


def test_text_judge_retries_once_then_records_missing():
    judge = LLMJudge(ScriptedJudgeBackend(broken_first=1))
    [ratings] = judge.rate([("p", "Q?", ["a 4", "b 2"])])
    assert [r.mean for r in ratings] == [4, 2] and judge.retries == 1

    backend = ScriptedJudgeBackend(always_broken=True)
    judge = LLMJudge(backend)
    [ratings] = judge.rate([("p", "Q?", ["a 4", "b 2"])])
    assert len(backend.calls) == 2, "exactly one retry"
    assert all(r.mean is None and "after one retry" in r.missing_reason for r in ratings)
    assert backend.calls[1][-1]["content"].startswith("Your reply could not be read (no ratings found")


def test_cached_judgments_are_not_requested_twice(tmp_path):
    backend = ScriptedJudgeBackend()
    judge = LLMJudge(CachedBackend(backend, tmp_path / "cache.sqlite"))
    items = [("p1", "Q?", ["x 3", "y 5"])]
    first = judge.rate(items)
    second = LLMJudge(CachedBackend(backend, tmp_path / "cache.sqlite")).rate(items)
    assert len(backend.calls) == 1
    assert [r.scores for r in first[0]] == [r.scores for r in second[0]]


class RuleOfLength:
    """The smallest judge a contributor could add: prefers the longer answer; one class and one registry line."""

    name = "longer"
    retries = 0

    def __init__(self, options):
        self.options = options

    def compare(self, items, *, swap=True):
        from zephyr_tutorial.evaluation import PairwiseJudgment, PairwiseReport

        verdicts = ["a" if len(it.output_a) > len(it.output_b) else "b" for it in items]
        return PairwiseReport(
            [PairwiseJudgment(it.id, v, v if swap else None, v) for it, v in zip(items, verdicts)],
            self.name,
            "length",
            swap,
        )


def test_make_judge_builds_registered_kinds_and_names_the_known_ones(monkeypatch, openai_server):
    from zephyr_tutorial.evaluation import JUDGES, make_judge

    assert {"local", "logprob", "openai"} <= set(JUDGES)
    monkeypatch.setitem(JUDGES, "longer", RuleOfLength)
    judge = make_judge("longer", prompt="alpaca_eval")
    assert judge.options.prompt == "alpaca_eval"
    assert judge.compare(_items()).verdicts == {f"p{i}": "a" for i in range(4)}  # "good answer i" is longer
    remote = make_judge("openai", model_name="grader", base_url=openai_server.base_url, prompt="alpaca_eval")
    assert isinstance(remote, LLMJudge) and remote.prompt == "alpaca_eval" and remote.name.startswith("openai:grader@")
    with pytest.raises(ValueError, match="unknown judge 'gpt5'; choose one of"):
        make_judge("gpt5")
    with pytest.raises(ValueError, match="unknown pairwise prompt 'arena'"):
        LLMJudge(ScriptedJudge(lambda text: "[[A]]"), prompt="arena")
    with pytest.raises(ValueError, match="needs model_name"):
        make_judge("openai")
