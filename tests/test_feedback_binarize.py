"""Chosen/rejected selection by strategy, and the shipped preference data."""

from __future__ import annotations

from collections import Counter

import pytest

from zephyr_tutorial.data import read_jsonl
from zephyr_tutorial.feedback.binarize import binarize, select_pair
from zephyr_tutorial.runtime import data_dir
from zephyr_tutorial.schemas import read_preferences


def group(prompt_id, *means, policies=None):
    policies = policies or [f"policy{i}" for i in range(len(means))]
    return [
        {
            "id": f"{prompt_id}::{p}",
            "prompt_id": prompt_id,
            "prompt": f"Question {prompt_id}?",
            "policy": p,
            "text": f"answer of {p}",
            "mean": m,
        }
        for p, m in zip(policies, means)
    ]


def test_chosen_is_highest_and_random_rejected_is_strictly_lower():
    rejected_policies = Counter()
    for i in range(60):
        chosen, rejected = select_pair(group(f"p{i}", 2.0, 4.5, 3.0, 4.5, 1.0), "random")
        assert chosen["policy"] == "policy1", "ties at the top go to the first in pool order"
        assert rejected["mean"] < chosen["mean"]
        rejected_policies[rejected["policy"]] += 1
    assert set(rejected_policies) == {"policy0", "policy2", "policy4"}, "random rejection should use every lower one"


def test_only_a_finished_completion_can_be_chosen():
    group = [
        {"prompt_id": "p", "policy": "cut", "mean": 4.5, "finish_reason": "length", "text": "a long answer that"},
        {"prompt_id": "p", "policy": "half", "mean": 4.2, "finish_reason": "truncated", "text": "a long"},
        {"prompt_id": "p", "policy": "done", "mean": 3.0, "finish_reason": "stop", "text": "Done."},
        {"prompt_id": "p", "policy": "other", "mean": 2.0, "finish_reason": "stop", "text": "No."},
    ]
    chosen, rejected = select_pair(group, "random", seed=0)
    assert chosen["policy"] == "done" and rejected["policy"] == "other"  # cut ones are higher, yet not lower
    chosen, _ = select_pair([{**row, "finish_reason": None} for row in group], "random")  # no record: allowed
    assert chosen["policy"] == "cut"
    assert select_pair(group[:2], "random") == (None, "no finished completion to choose")


def test_flip_pairs_swaps_an_exact_share_reproducibly():
    from zephyr_tutorial.feedback.binarize import flip_pairs

    rows = [
        {"prompt_id": str(i), "chosen": [i, "w"], "rejected": [i, "l"], "score_chosen": 5, "score_rejected": 1}
        for i in range(50)
    ]
    flipped = flip_pairs(rows, 0.2, seed=3)
    assert sum(row.get("flipped", False) for row in flipped) == 10
    assert flipped == flip_pairs(rows, 0.2, seed=3) and flipped != flip_pairs(rows, 0.2, seed=4)
    for before, after in zip(rows, flipped):
        if after.get("flipped"):
            assert after["chosen"] == before["rejected"] and after["score_chosen"] == 1
        else:
            assert after == before
    assert flip_pairs(rows, 0.0) == rows
    with pytest.raises(ValueError):
        flip_pairs(rows, 1.5)


def test_worst_and_margin_strategies():
    rows = group("p", 4.0, 3.5, 1.5, 2.0)
    assert select_pair(rows, "worst")[1]["policy"] == "policy2"
    for seed in range(10):
        _, rejected = select_pair(rows, "margin", margin=1.75, seed=seed)
        assert rejected["policy"] in {"policy2", "policy3"}
    assert select_pair(rows, "margin", margin=3.0) == (None, "no completion rated 3.0 or more below the chosen one")


def test_ties_and_missing_are_dropped_and_counted():
    rows = group("tie", 3.0, 3.0, 3.0) + group("one", 4.0, None, None) + group("ok", 4.0, 2.0)
    pairs, report = binarize(rows)
    assert report == Counter(
        {"kept": 1, "dropped: all completions tie": 1, "dropped: fewer than two rated completions": 1}
    )
    [pair] = pairs
    assert pair["prompt_id"] == "ok" and pair["score_chosen"] == 4.0 and pair["score_rejected"] == 2.0
    assert pair["chosen"] == [
        {"role": "user", "content": "Question ok?"},
        {"role": "assistant", "content": "answer of policy0"},
    ]
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_pair(rows, "best-of-n")


def test_shipped_preference_data_matches_schema_and_ratings(tmp_path):
    folder = data_dir() / "preferences"
    train, test = read_preferences(folder / "train_prefs.jsonl"), read_preferences(folder / "test_prefs.jsonl")
    assert len(train) >= 300 and len(test) >= 60  # issue 12's sizes
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    ratings = {row["id"]: row for row in read_jsonl(folder / "ratings.jsonl")}
    split = {row["prompt_id"]: row["split"] for row in read_jsonl(data_dir() / "verifiable_prompts.jsonl")}
    for side, rows in (("train", train), ("test", test)):
        for row in rows:
            assert split[row["prompt_id"]] == side  # the held-out prompts are the verifiable prompts' test split
            assert row["score_chosen"] > row["score_rejected"]
            chosen = ratings[f"{row['prompt_id']}::{row['policy_chosen']}"]
            assert chosen["text"] == row["chosen"][-1]["content"] and round(chosen["mean"], 3) == row["score_chosen"]
            assert chosen["finish_reason"] == "stop"  # never a reply cut at the budget or by the weak policy
    # the ratings are what the rule-based judge gives the shipped completions today
    from zephyr_tutorial.evaluation import make_judge

    rules, completions = make_judge("rules"), read_jsonl(folder / "completions.jsonl")
    for row in completions[:: max(1, len(completions) // 200)]:
        [[rating]] = rules.rate([(row["prompt_id"], row["prompt"], [row["text"]])])
        assert round(rating.mean, 3) == ratings[row["id"]]["mean"], row["id"]
    assert (folder / "README.md").read_text().count("train_prefs") >= 1
    # the shipped pairs are exactly what the pipeline makes of the shipped ratings (the README's command, seed 42)
    from zephyr_tutorial.feedback.pipeline import write_preferences

    report = write_preferences(
        folder / "ratings.jsonl",
        tmp_path,
        strategy="random",
        seed=42,
        test_fraction=0.2,
        pool_order=list(dict.fromkeys(row["policy"] for row in completions)),  # the pool's order, as generated
    )
    assert (read_preferences(tmp_path / "train_prefs.jsonl"), read_preferences(tmp_path / "test_prefs.jsonl")) == (
        train,
        test,
    )
    assert (report["train_pairs"], report["test_pairs"]) == (len(train), len(test))
