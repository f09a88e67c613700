"""Judge prompts, parsing of untrusted replies, position swap, metrics and caching (no real model needed)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from zephyr_tutorial.backends import CachedBackend, Completion, SamplingConfig
from zephyr_tutorial.data import DataError
from zephyr_tutorial.evaluation import (
    PairwiseItem,
    SingleItem,
    agreement,
    alpaca_eval_ranking_prompt,
    judge_pairwise,
    judge_single,
    length_controlled_win_rate,
    load_human_labels,
    load_pairwise_items,
    mean_score,
    mt_bench_single_prompt,
    parse_alpaca_ranking,
    parse_pairwise_verdict,
    parse_rating,
    win_rate,
)
from zephyr_tutorial.runtime import data_dir

GOOD_RANKING = "[{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}]"


# --- parsing -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, winner", [
    (GOOD_RANKING, "model_2"),
    ('[{"model": "model_1", "rank": 1}, {"model": "model_2", "rank": 2}]', "model_1"),  # JSON quoting
    ("Sure! Here is my ranking:\n```python\n" + GOOD_RANKING + "\n```\nHope this helps.", "model_2"),  # prose + fence
    ("[{'model': 'model_1', 'rank': '2'}, {'model': 'model_2', 'rank': '1'}]", "model_2"),  # ranks as strings
    (GOOD_RANKING + "\nTo repeat: " + GOOD_RANKING, "model_2"),  # the same answer twice is still one answer
])
def test_alpaca_ranking_accepts_valid_replies(reply, winner):
    parsed = parse_alpaca_ranking(reply)
    assert parsed.ok, parsed.error
    assert parsed.value == winner


@pytest.mark.parametrize("reply, reason", [
    ("", "empty"),
    ("model_1 is better", "no list"),
    ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'ra", "no list"),  # truncated
    (GOOD_RANKING + " or maybe [{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]", "different"),
    ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_1', 'rank': 2}]", "once"),
    ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 1}]", "once"),
    ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_3', 'rank': 2}]", "unknown model"),
    ("[{'model': 'model_1', 'rank': 1}]", "exactly two"),
    ("[{'model': 'model_1', 'rank': True}, {'model': 'model_2', 'rank': 2}]", "rank must be"),
    ("x" * 30_000, "longer than"),
])
def test_alpaca_ranking_rejects_malformed_replies(reply, reason):
    parsed = parse_alpaca_ranking(reply)
    assert not parsed.ok
    assert reason in parsed.error


def test_malicious_reply_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"[{{'model': __import__('os').system('touch {marker}'), 'rank': 1}}, {{'model': 'model_2', 'rank': 2}}]",
        f"__import__('os').system('touch {marker}')",
        f"[{{'model': 'model_1', 'rank': (lambda: open('{marker}', 'w'))()}}, {{'model': 'model_2', 'rank': 2}}]",
    ]
    for payload in payloads:
        for parse in (parse_alpaca_ranking, parse_rating, parse_pairwise_verdict):
            assert not parse(payload).ok
    assert not marker.exists()


def test_ranking_parser_is_fast_on_adversarial_text():
    nasty = "[{" * 3000 + "}" * 3000 + "[{'model': 1" * 500
    start = time.perf_counter()
    assert not parse_alpaca_ranking(nasty).ok
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("reply, rating", [
    ("The answer is correct and concise. Rating: [[8]]", 8.0),
    ("Good. [[7.5]]", 7.5),
    ("Rating: [9]", 9.0),  # MT-Bench's fallback for a single bracket
    ("[[10]] ... as I said, [[10]]", 10.0),
])
def test_rating_parser(reply, rating):
    assert parse_rating(reply).value == rating


@pytest.mark.parametrize("reply, reason", [
    ("It is fine.", "no [[rating]]"),
    ("Rating: [[3]] or maybe [[9]]", "several"),
    ("Rating: [[11]]", "outside"),
    ("Rating: [[0]]", "outside"),
])
def test_rating_parser_failures(reply, reason):
    parsed = parse_rating(reply)
    assert not parsed.ok and reason in parsed.error


@pytest.mark.parametrize("reply, verdict", [
    ("A is more accurate. [[A]]", "A"), ("[[B]]", "B"), ("Both equal: [[C]]", "tie"), ("[[ A ]] final: [[A]]", "A"),
])
def test_pairwise_verdict_parser(reply, verdict):
    assert parse_pairwise_verdict(reply).value == verdict


@pytest.mark.parametrize("reply", ["[[A]] no wait [[B]]", "A is better", "[[D]]", "[A]"])
def test_pairwise_verdict_parser_failures(reply):
    assert not parse_pairwise_verdict(reply).ok


# --- prompts -------------------------------------------------------------------------------------------------------

def test_prompts_contain_the_outputs_in_order_and_the_expected_format():
    conversation = alpaca_eval_ranking_prompt("Say hi", "FIRST OUTPUT", "SECOND OUTPUT")
    user = conversation[-1]["content"]
    assert user.index("FIRST OUTPUT") < user.index("SECOND OUTPUT")
    assert "'rank': <model-rank>" in user and '"model": "model_1"' in user
    reference = mt_bench_single_prompt("2+2?", "5", reference="4")[-1]["content"]
    assert "[[rating]]" in reference and "Reference Answer" in reference and "4" in reference
    assert "Reference Answer" not in mt_bench_single_prompt("2+2?", "5")[-1]["content"]


# --- judging with a scripted backend ---------------------------------------------------------------------------------

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
    report = judge_pairwise(_items(), judge, prompt="mt_bench", swap=True)
    assert judge.calls == 1 and judge.seen == 8
    assert [j.verdict for j in report.judgments] == ["a"] * 4
    assert report.flip_rate == 0.0
    assert report.first_position_rate() == 0.5
    assert report.win_rate("a").value == 1.0


def test_position_biased_judge_flips_and_counts_as_ties():
    judge = ScriptedJudge(lambda text: "[[A]]")  # always prefers whatever is shown first
    report = judge_pairwise(_items(), judge, prompt="mt_bench", swap=True)
    assert report.flip_rate == 1.0
    assert report.first_position_rate() == 1.0
    assert [j.verdict for j in report.judgments] == ["tie"] * 4
    assert report.win_rate("a").value == 0.5
    no_swap = judge_pairwise(_items(), judge, prompt="mt_bench", swap=False)
    assert no_swap.win_rate("a").value == 1.0 and math.isnan(no_swap.flip_rate)


def test_alpaca_prompt_maps_model_names_back_to_items():
    def reply(text):
        winner = "model_1" if _first_shown(text) == "good" else "model_2"
        loser = "model_2" if winner == "model_1" else "model_1"
        return f"[{{'model': '{winner}', 'rank': 1}}, {{'model': '{loser}', 'rank': 2}}]"

    report = judge_pairwise(_items(), ScriptedJudge(reply), prompt="alpaca_eval", swap=True)
    assert report.verdicts == {f"p{i}": "a" for i in range(4)}


def test_unparseable_replies_are_counted_not_raised():
    replies = iter(["[[A]]", "I refuse", "[[B]]", "[[A]] [[B]]"] + ["[[B]]"] * 4)
    report = judge_pairwise(_items(), ScriptedJudge(lambda _: next(replies)), prompt="mt_bench", swap=True)
    assert report.parse_failures == 2
    assert report.to_dict()["parse_failures"] == 2
    failed = [j for j in report.judgments if j.verdict is None]
    assert any("no [[A]]" in e for j in failed for e in j.errors)


def test_single_grading_parses_ratings_and_reports_failures():
    judge = ScriptedJudge(lambda text: "Rating: [[9]]" if "Paris" in text else "no idea")
    items = [SingleItem("1", "Capital of France?", "Paris"), SingleItem("2", "Capital of France?", "Lyon")]
    results = judge_single(items, judge)
    assert [r.rating for r in results] == [9.0, None]
    assert results[1].error == "no [[rating]] found"


def test_cached_judge_answers_repeated_requests_from_disk(tmp_path):
    judge = ScriptedJudge(lambda text: "[[A]]")
    cached = CachedBackend(judge, tmp_path / "judge.sqlite")
    first = judge_pairwise(_items(), cached, swap=True)
    second = judge_pairwise(_items(), CachedBackend(judge, tmp_path / "judge.sqlite"), swap=True)
    assert judge.calls == 1
    assert [j.verdict for j in first.judgments] == [j.verdict for j in second.judgments]


# --- metrics -------------------------------------------------------------------------------------------------------

def test_win_rate_counts_ties_as_half_and_reports_standard_error():
    rate = win_rate(["a", "a", "b", "tie"])
    assert rate.value == pytest.approx(2.5 / 4)
    assert rate.stderr == pytest.approx(np.std([1, 1, 0, 0.5], ddof=1) / 2)
    assert (rate.wins, rate.ties, rate.losses) == (2, 1, 1)
    assert win_rate(["a", "a", "b", "tie"], side="b").value == pytest.approx(1.5 / 4)
    with pytest.raises(ValueError):
        win_rate(["a", "left"])


def test_length_controlled_win_rate_removes_a_pure_length_preference():
    rng = np.random.default_rng(0)
    difference = rng.normal(0, 100, 400)
    # the judge only rewards length: P(a wins) = sigmoid(3 * tanh(diff / std)), 0.5 at equal lengths
    p = 1 / (1 + np.exp(-3 * np.tanh(difference / difference.std())))
    verdicts = np.where(rng.random(400) < p, "a", "b").tolist()
    length_b = np.full(400, 500)
    length_a = length_b + difference.round().astype(int)
    # skew the sample so that A is usually longer: the raw win rate rises, the length-controlled one does not
    keep = [i for i in range(400) if difference[i] > 0 or i % 5 == 0]
    pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
    raw = win_rate(pick(verdicts)).value
    controlled = length_controlled_win_rate(pick(verdicts), pick(length_a), pick(length_b), bootstrap=50)
    assert raw > 0.65
    assert abs(controlled.value - 0.5) < 0.08
    assert 0 < controlled.stderr < 0.1


def test_length_controlled_equals_raw_when_lengths_are_equal():
    verdicts = ["a"] * 7 + ["b"] * 3
    controlled = length_controlled_win_rate(verdicts, [10] * 10, [10] * 10, bootstrap=0)
    assert controlled.value == pytest.approx(0.7, abs=1e-3)


def test_mean_score_and_agreement():
    score = mean_score([8, 6, 7])
    assert score.value == pytest.approx(7) and score.stderr == pytest.approx(1 / math.sqrt(3))
    result = agreement(["a", "b", "tie", "a"], ["a", "a", "tie", "a"])
    assert result.rate == 0.75
    assert result.rate_without_ties == pytest.approx(2 / 3) and result.n_without_ties == 3
    perfect = agreement(["a", "b", "tie"], ["a", "b", "tie"])
    assert perfect.cohen_kappa == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2 judge verdicts but 1"):
        agreement(["a", "b"], ["a"])


# --- shipped data --------------------------------------------------------------------------------------------------

def test_shipped_pairwise_data_and_human_labels_are_consistent():
    items = load_pairwise_items(data_dir() / "pairwise_eval.jsonl")
    labels = load_human_labels(data_dir() / "human_labels.jsonl", known_ids=[it.id for it in items])
    assert len(items) >= 40 and len(labels) >= 30
    assert set(labels.values()) == {"a", "b", "tie"}


def test_bad_rows_name_the_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"id": "x", "instruction": "hi", "output_a": "a", "output_b": "b"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "y", "output_b": 3}) + "\n")
    with pytest.raises(DataError, match="line 2, field 'output_b'"):
        load_pairwise_items(path)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "x", "preferred": "A", "reason": "r"}) + "\n")
    with pytest.raises(DataError, match="line 1, field 'preferred'"):
        load_human_labels(labels)
    labels.write_text(json.dumps({"id": "zzz", "preferred": "a", "reason": "r"}) + "\n")
    with pytest.raises(DataError, match="field 'id'"):
        load_human_labels(labels, known_ids=["x"])


def test_logprob_judge_reads_the_same_numbers_as_continuation_scoring(tiny_model, embedded_tokenizer):
    from zephyr_tutorial.evaluation import judge_pairwise_logprobs, score_continuations
    from zephyr_tutorial.evaluation import VERDICT_PREFIX
    from zephyr_tutorial.evaluation.prompts import pairwise_prompt

    items = _items()[:2]
    report = judge_pairwise_logprobs(items, tiny_model, embedded_tokenizer, swap=True, progress=False)
    assert len(report.judgments) == 2 and report.parse_failures == 0
    context = embedded_tokenizer.apply_chat_template(
        pairwise_prompt("mt_bench", items[1].instruction, items[1].output_b, items[1].output_a),
        tokenize=False, add_generation_prompt=True) + VERDICT_PREFIX
    expected = [ll for ll, _ in score_continuations(tiny_model, embedded_tokenizer, [(context, t) for t in "ABC"],
                                                     progress=False)]
    reported = [float(part.split(":")[1]) for part in report.judgments[1].replies[1].split()]
    assert reported == pytest.approx(expected, abs=1e-3)
    best = "ABC"[expected.index(max(expected))]
    assert report.judgments[1].swapped == {"A": "b", "B": "a", "C": "tie"}[best]


def test_first_order_only_keeps_the_unswapped_verdicts():
    judge = ScriptedJudge(lambda text: "[[A]]")
    report = judge_pairwise(_items(), judge, prompt="mt_bench", swap=True)
    single = report.first_order_only()
    assert [j.verdict for j in single.judgments] == ["a"] * 4 and not single.swap
    assert single.win_rate("a").value == 1.0 and math.isnan(single.flip_rate)


def test_plots_hold_the_data():
    import matplotlib

    matplotlib.use("Agg")
    from zephyr_tutorial.evaluation.multiple_choice import MCItemResult, MCReport
    from zephyr_tutorial.plots import plot_mc_accuracy_by_category, plot_mc_margins, plot_position_bias, plot_win_rates

    figure = plot_win_rates(["x", "y"], [0.25, 0.75], [0.05, 0.1])
    assert [bar.get_width() for bar in figure.axes[0].patches] == [0.25, 0.75]
    figure = plot_position_bias(["judge"], [0.4], [0.9])
    assert [ax.patches[0].get_width() for ax in figure.axes] == [0.4, 0.9]
    report = MCReport([MCItemResult("1", "sci", 0, [-1.0, -3.0], [True, False], 0, 0),
                       MCItemResult("2", "math", 1, [-1.0, -2.0], [True, False], 0, 0)])
    assert [r.margin for r in report.items] == [2.0, -1.0]
    figure = plot_mc_margins(report)
    assert sum(bar.get_height() for bar in figure.axes[0].patches) == 2
    figure = plot_mc_accuracy_by_category({"continuation": report})
    assert sorted(bar.get_height() for bar in figure.axes[0].patches) == [0.0, 1.0]
