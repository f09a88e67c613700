"""MT-Bench single-answer grading from pairs: references, items, ratings read from probabilities, groups, plot."""

from __future__ import annotations

import math

import pytest

from zephyr_tutorial.evaluation import (
    VERDICT_PREFIX,
    PairwiseItem,
    SingleItem,
    SingleJudgment,
    judge_single_logprobs,
    mt_bench_single_prompt,
    ratings_by_human_label,
    reference_answers,
    score_continuations,
    single_items_from_pairs,
)

PAIRS = [
    PairwiseItem("m1", "What is 7 x 8?", "54", "56", "math"),
    PairwiseItem("r1", "Anna is older than Ben. Who is younger?", "Ben.", "Anna.", "reasoning"),
    PairwiseItem("m2", "What is 2 + 2?", "4", "Four.", "math"),
    PairwiseItem("f1", "Capital of France?", "Paris.", "Lyon.", "factual"),
]
HUMAN = {"m1": "b", "r1": "a", "m2": "tie", "f1": "a"}


def test_references_are_the_human_preferred_answers_of_math_and_reasoning_pairs():
    assert reference_answers(PAIRS, HUMAN) == {"m1": "56", "r1": "Ben."}  # m2 is a tie, f1 is factual
    assert reference_answers(PAIRS, HUMAN, categories=("factual",)) == {"f1": "Paris."}


def test_single_items_grade_both_answers_of_every_pair_with_the_pair_reference():
    items = single_items_from_pairs(PAIRS[:2], {"m1": "56"})
    assert [(it.id, it.answer, it.reference) for it in items] == [
        ("m1:a", "54", "56"), ("m1:b", "56", "56"), ("r1:a", "Ben.", None), ("r1:b", "Anna.", None)]
    assert {it.question for it in items[:2]} == {"What is 7 x 8?"} and items[2].category == "reasoning"


def test_ratings_are_grouped_by_human_label_and_reference_leaving_out_ties_and_failures():
    items = single_items_from_pairs(PAIRS, reference_answers(PAIRS, HUMAN))
    ratings = {"m1:a": 2.0, "m1:b": 9.0, "r1:a": 8.0, "r1:b": None, "m2:a": 5.0, "m2:b": 5.0, "f1:a": 7.0, "f1:b": 3.0}
    judgments = [SingleJudgment(i, r, None if r is not None else "no [[rating]] found", "") for i, r in ratings.items()]
    assert ratings_by_human_label(judgments, items, HUMAN) == {
        "better, no reference": [7.0],
        "better, reference-guided": [9.0, 8.0],
        "worse, no reference": [3.0],
        "worse, reference-guided": [2.0],
    }


def _expected_distribution(model, tokenizer, item: SingleItem) -> list[float]:
    """p(1..10) after "[[" from whole-continuation log-likelihoods (the lm-eval-equal scorer), independently of
    the one-pass reading: p(d) = p("d") for d = 2..9, p(10) = p("10"), p(1) = p("1") - p("10") - ... - p("19")."""
    context = tokenizer.apply_chat_template(mt_bench_single_prompt(item.question, item.answer, item.reference),
                                            tokenize=False, add_generation_prompt=True) + VERDICT_PREFIX
    candidates = [str(number) for number in range(1, 20)]
    p = dict(zip(candidates, (math.exp(ll) for ll, _ in score_continuations(
        model, tokenizer, [(context, c) for c in candidates], progress=False))))
    weights = [p["1"] - sum(p[str(n)] for n in range(10, 20))] + [p[str(d)] for d in range(2, 10)] + [p["10"]]
    return [w / sum(weights) for w in weights]


def test_rating_read_from_probabilities_equals_continuation_scoring(embedded_model_and_tokenizer):
    # The real model, not the tiny random one: its p("0" | "[[1") is far from zero, so splitting "1" into
    # the ratings 1 and 10 is actually tested (a random model spreads mass evenly over 49k tokens).
    model, tokenizer = embedded_model_and_tokenizer
    items = [
        SingleItem("short", "What is 2 + 2?", "4"),
        SingleItem("guided", "What is 2 + 2?", "4", reference="4"),
    ]
    judgments = judge_single_logprobs(items, model, tokenizer, batch_size=2, progress=False)
    assert [j.id for j in judgments] == ["short", "guided"]
    for item, judgment in zip(items, judgments):
        expected = _expected_distribution(model, tokenizer, item)
        reported = [float(part.split(":")[1]) for part in judgment.reply.split()]
        assert reported == pytest.approx(expected, abs=2e-3)
        assert judgment.error is None
        assert judgment.rating == pytest.approx(sum(r * p for r, p in zip(range(1, 11), expected)), abs=1e-3)
        assert 1 <= judgment.rating <= 10
    assert judgments[0].reply != judgments[1].reply, "the reference must reach the judge's prompt"


def test_single_ratings_plot_holds_every_rating_and_the_group_means():
    import matplotlib

    matplotlib.use("Agg")
    from zephyr_tutorial.plots.evaluation import plot_single_ratings

    from matplotlib.collections import PathCollection

    groups = {"better": [8.0, 9.0, 7.0], "worse": [2.0, 4.0]}
    axis = plot_single_ratings(groups).axes[0]
    dots = [c.get_offsets()[:, 1].tolist() for c in axis.collections if isinstance(c, PathCollection)]
    assert dots == [[8.0, 9.0, 7.0], [2.0, 4.0]]
    means = [container.lines[0].get_ydata()[0] for container in axis.containers]
    assert means == pytest.approx([8.0, 3.0])
    lower_caps = [min(cap.get_ydata()[0] for cap in container.lines[1]) for container in axis.containers]
    assert lower_caps == pytest.approx([8.0 - 1 / math.sqrt(3), 3.0 - 1.0])  # mean - standard error
    assert [label.get_text() for label in axis.get_xticklabels()] == ["better", "worse"]
