"""The digit-probability judge, agreement with human labels, aspect statistics, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zephyr_tutorial.feedback.probability_judge import ProbabilityJudge, digit_continuations
from zephyr_tutorial.feedback.quality import (
    aspect_correlations,
    judge_agreement,
    load_human_pairs,
    missing_reasons,
    preference_from_means,
    scores_by_policy,
)
from zephyr_tutorial.feedback.rating import ASPECT_TITLES, ASPECTS, Rating


def test_digit_tokens_of_the_embedded_tokenizer(embedded_tokenizer):
    suffix, digits = digit_continuations(embedded_tokenizer, "Honesty")
    assert [embedded_tokenizer.decode([d]).strip() for d in digits] == ["1", "2", "3", "4", "5"]
    assert embedded_tokenizer.decode(suffix + [digits[3]]).strip() == "Honesty: 4"


def test_probability_judge_matches_a_plain_forward_pass(tiny_model, embedded_tokenizer):
    """The cached prefix + per-aspect suffix must give the same numbers as scoring each full sequence alone."""
    judge = ProbabilityJudge(tiny_model, embedded_tokenizer, batch_size=3, progress=False)
    items = [("p1", "Name a colour.", ["Blue.", "I do not know, maybe a shade of green or something."]),
             ("p2", "What is 2 + 2?", ["4"])]
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


def test_preference_from_means():
    assert preference_from_means(4.0, 3.0) == "a"
    assert preference_from_means(2.0, 3.0) == "b"
    assert preference_from_means(3.0, 3.05, tie_tolerance=0.1) == "tie"
    assert preference_from_means(None, 3.0) is None


class LengthJudge:
    """Prefers the longer text: a stand-in whose agreement we can compute by hand."""

    name = "length"

    def rate(self, items):
        return [[Rating({a: min(5, len(t)) for a in ASPECTS}) for t in texts] for _, _, texts in items]


def test_judge_agreement_counts(tmp_path):
    pairs = [
        {"id": "1", "instruction": "q", "output_a": "long answer", "output_b": "ok", "preferred": "a"},  # agree
        {"id": "2", "instruction": "q", "output_a": "long answer", "output_b": "ok", "preferred": "b"},  # disagree
        {"id": "3", "instruction": "q", "output_a": "a", "output_b": "bb", "preferred": "b"},  # agree
        {"id": "4", "instruction": "q", "output_a": "a", "output_b": "b", "preferred": "tie"},  # human tie: excluded
        {"id": "5", "instruction": "q", "output_a": "aaaaaa", "output_b": "bbbbbbb", "preferred": "a"},  # judge tie
    ]
    result = judge_agreement(LengthJudge(), pairs, batch=2)
    assert (result["decided"], result["agree"], result["human_ties"], result["judge_ties_on_decided"]) == (4, 2, 1, 1)
    assert result["agreement"] == 0.5


def test_load_human_pairs_joins_and_checks_labels(tmp_path):
    pairs, labels = tmp_path / "pairs.jsonl", tmp_path / "labels.jsonl"
    pairs.write_text(json.dumps({"id": "x", "instruction": "q", "output_a": "a", "output_b": "b"}) + "\n")
    labels.write_text(json.dumps({"id": "x", "preferred": "b", "reason": "r"}) + "\n")
    assert load_human_pairs(pairs, labels)[0]["preferred"] == "b"
    labels.write_text(json.dumps({"id": "x", "preferred": "B"}) + "\n")
    with pytest.raises(ValueError, match="line 1, field 'preferred'"):
        load_human_pairs(pairs, labels)


def test_aspect_statistics():
    rows = [{"policy": "p", "scores": dict(zip(ASPECTS, [s, s, 6 - s, s])), "missing_reason": None} for s in (1, 3, 5)]
    rows.append({"policy": "q", "scores": {}, "missing_reason": "unparseable after one retry: empty reply"})
    corr = aspect_correlations(rows)
    assert corr.shape == (4, 4) and np.allclose(np.diag(corr), 1)
    assert corr[0, 1] == pytest.approx(1) and corr[0, 2] == pytest.approx(-1)
    assert scores_by_policy(rows) == {"p": {a: [1, 3, 5] if a != "truthfulness" else [5, 3, 1] for a in ASPECTS}}
    assert missing_reasons(rows) == {"unparseable after one retry: empty reply": 1}


def test_cli_runs_all_stages_and_resumes(tmp_path, capsys):
    from zephyr_tutorial.cli import main
    from zephyr_tutorial.data import read_jsonl

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Say the number {i}."}) + "\n" for i in range(3)))
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([
        {"name": "random-a", "kind": "tiny_random", "principle": None, "temperature": 1.0, "extra": {"seed": 1}},
        {"name": "random-b", "kind": "tiny_random", "principle": "honesty", "temperature": 1.0, "extra": {"seed": 2}},
        {"name": "cut", "kind": "truncated", "principle": None, "source": "random-a", "truncate_words": 1},
    ]))
    args = ["feedback", "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--pool", str(pool),
            "--max-new-tokens", "5", "--test-fraction", "0.5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "'random-a': 3, 'random-b': 3, 'cut': 3" in printed and "new {'rated': 9}" in printed
    ratings = read_jsonl(tmp_path / "out" / "ratings.jsonl")
    assert len(ratings) == 9 and all(1 <= r["mean"] <= 5 for r in ratings)
    pairs = read_jsonl(tmp_path / "out" / "train_prefs.jsonl") + read_jsonl(tmp_path / "out" / "test_prefs.jsonl")
    assert 1 <= len(pairs) <= 3
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "completions: 9 already there, new per policy {'random-a': 0, 'random-b': 0, 'cut': 0}" in printed
    assert "9 already there, new {}" in printed
    assert len(read_jsonl(tmp_path / "out" / "ratings.jsonl")) == 9
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p0"}\n')
    assert main(["feedback", "--prompts", str(bad), "--out", str(tmp_path / "o2")]) == 1
    assert "line 1, field 'prompt': missing" in capsys.readouterr().err
