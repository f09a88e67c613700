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


def test_shipped_preference_prompts_are_ours_and_distinct_from_the_sft_seeds():
    prompts = read_jsonl(data_dir() / "preference_prompts.jsonl", {"id": str, "prompt": str, "category": str})
    assert len(prompts) >= 80
    assert len({p["id"] for p in prompts}) == len(prompts)
    normalize = lambda text: " ".join(text.lower().split())  # noqa: E731
    seeds_path = data_dir() / "seed_prompts.jsonl"
    if seeds_path.exists():
        seeds = {normalize(row["prompt"]) for row in read_jsonl(seeds_path)}
        assert not [p["prompt"] for p in prompts if normalize(p["prompt"]) in seeds]


def test_shipped_preference_data_matches_schema_and_ratings(tmp_path):
    folder = data_dir() / "preferences"
    train, test = read_preferences(folder / "train_prefs.jsonl"), read_preferences(folder / "test_prefs.jsonl")
    assert len(train) >= 40 and len(test) >= 5
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    ratings = {row["id"]: row for row in read_jsonl(folder / "ratings.jsonl")}
    prompts = {row["id"] for row in read_jsonl(data_dir() / "preference_prompts.jsonl")}
    for row in train + test:
        assert row["prompt_id"] in prompts
        assert row["score_chosen"] > row["score_rejected"]
        chosen = ratings[f"{row['prompt_id']}::{row['policy_chosen']}"]
        assert chosen["text"] == row["chosen"][-1]["content"] and round(chosen["mean"], 3) == row["score_chosen"]
    assert (folder / "README.md").read_text().count("train_prefs") >= 1
    # the shipped pairs are exactly what the pipeline makes of the shipped ratings (the README's command, seed 42)
    from zephyr_tutorial.feedback.pipeline import write_preferences
    from zephyr_tutorial.feedback.pool import default_pool

    report = write_preferences(
        folder / "ratings.jsonl",
        tmp_path,
        strategy="random",
        seed=42,
        test_fraction=0.15,
        pool_order=[spec.name for spec in default_pool()],
    )
    assert (read_preferences(tmp_path / "train_prefs.jsonl"), read_preferences(tmp_path / "test_prefs.jsonl")) == (
        train,
        test,
    )
    assert (report["train_pairs"], report["test_pairs"]) == (len(train), len(test))
