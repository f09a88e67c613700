"""The log-prob judge: verdicts, grades and aspect ratings equal plain forward passes."""

from __future__ import annotations

import math

import pytest
import torch

from zephyr_tutorial.evaluation import (
    VERDICT_PREFIX,
    PairwiseItem,
    SingleItem,
    mt_bench_single_prompt,
    score_continuations,
)
from zephyr_tutorial.evaluation.logprob_judge import LogprobJudge, digit_continuations
from zephyr_tutorial.evaluation.rating import ASPECT_TITLES, ASPECTS


def _items():
    return [PairwiseItem(f"p{i}", f"question {i}", f"good answer {i}", f"bad answer {i}") for i in range(4)]


def test_logprob_judge_reads_the_same_numbers_as_continuation_scoring(tiny_model, embedded_tokenizer):
    from zephyr_tutorial.evaluation.prompts import pairwise_prompt

    items = _items()[:2]
    report = LogprobJudge(tiny_model, embedded_tokenizer, progress=False).compare(items, swap=True)
    assert len(report.judgments) == 2 and report.parse_failures == 0
    context = (
        embedded_tokenizer.apply_chat_template(
            pairwise_prompt("mt_bench", items[1].instruction, items[1].output_b, items[1].output_a),
            tokenize=False,
            add_generation_prompt=True,
        )
        + VERDICT_PREFIX
    )
    expected = [
        ll
        for ll, _ in score_continuations(tiny_model, embedded_tokenizer, [(context, t) for t in "ABC"], progress=False)
    ]
    reported = [float(part.split(":")[1]) for part in report.judgments[1].replies[1].split()]
    assert reported == pytest.approx(expected, abs=1e-3)
    best = "ABC"[expected.index(max(expected))]
    assert report.judgments[1].swapped == {"A": "b", "B": "a", "C": "tie"}[best]


def _expected_distribution(model, tokenizer, item: SingleItem) -> list[float]:
    """p(1..10) after "[[" from whole-continuation log-likelihoods (the lm-eval-equal scorer), independently of
    the one-pass reading: p(d) = p("d") for d = 2..9, p(10) = p("10"), p(1) = p("1") - p("10") - ... - p("19")."""
    context = (
        tokenizer.apply_chat_template(
            mt_bench_single_prompt(item.question, item.answer, item.reference),
            tokenize=False,
            add_generation_prompt=True,
        )
        + VERDICT_PREFIX
    )
    candidates = [str(number) for number in range(1, 20)]
    p = dict(
        zip(
            candidates,
            (
                math.exp(ll)
                for ll, _ in score_continuations(model, tokenizer, [(context, c) for c in candidates], progress=False)
            ),
        )
    )
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
    judgments = LogprobJudge(model, tokenizer, batch_size=2, progress=False).grade(items)
    assert [j.id for j in judgments] == ["short", "guided"]
    for item, judgment in zip(items, judgments):
        expected = _expected_distribution(model, tokenizer, item)
        reported = [float(part.split(":")[1]) for part in judgment.reply.split()]
        assert reported == pytest.approx(expected, abs=2e-3)
        assert judgment.error is None
        assert judgment.rating == pytest.approx(sum(r * p for r, p in zip(range(1, 11), expected)), abs=1e-3)
        assert 1 <= judgment.rating <= 10
    assert judgments[0].reply != judgments[1].reply, "the reference must reach the judge's prompt"


def test_digit_tokens_of_the_embedded_tokenizer(embedded_tokenizer):
    suffix, digits = digit_continuations(embedded_tokenizer, "Honesty")
    assert [embedded_tokenizer.decode([d]).strip() for d in digits] == ["1", "2", "3", "4", "5"]
    assert embedded_tokenizer.decode(suffix + [digits[3]]).strip() == "Honesty: 4"


def test_probability_judge_matches_a_plain_forward_pass(tiny_model, embedded_tokenizer):
    """The cached prefix + per-aspect suffix must give the same numbers as scoring each full sequence alone."""
    judge = LogprobJudge(tiny_model, embedded_tokenizer, batch_size=3, progress=False)
    items = [
        ("p1", "Name a colour.", ["Blue.", "I do not know, maybe a shade of green or something."]),
        ("p2", "What is 2 + 2?", ["4"]),
    ]
    ratings = judge.rate(items)
    for (_, instruction, texts), item_ratings in zip(items, ratings):
        for text, rating in zip(texts, item_ratings):
            prompt = judge._prompt_text(instruction, text)
            for aspect in ASPECTS:
                suffix, digits = digit_continuations(embedded_tokenizer, ASPECT_TITLES[aspect])
                ids = embedded_tokenizer(prompt, add_special_tokens=False)["input_ids"] + suffix
                with torch.no_grad():
                    probs = tiny_model(torch.tensor([ids])).logits[0, -1].softmax(-1)[digits]
                expected = float((probs / probs.sum() * torch.arange(1, 6)).sum())
                assert rating.scores[aspect] == pytest.approx(expected, abs=2e-3)
            assert 1 <= rating.mean <= 5
