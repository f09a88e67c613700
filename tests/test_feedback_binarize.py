"""Chosen/rejected selection, the preference schema, splits, loaders and the shipped preference data."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from zephyr_tutorial.data import DataError, read_jsonl
from zephyr_tutorial.feedback.binarize import (
    binarize,
    load_ultrafeedback_binarized,
    read_preferences,
    select_pair,
    split_train_test,
)
from zephyr_tutorial.runtime import data_dir


def group(prompt_id, *means, policies=None):
    policies = policies or [f"policy{i}" for i in range(len(means))]
    return [
        {"id": f"{prompt_id}::{p}", "prompt_id": prompt_id, "prompt": f"Question {prompt_id}?", "policy": p,
         "text": f"answer of {p}", "mean": m}
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
    assert report == Counter({"kept": 1, "dropped: all completions tie": 1,
                              "dropped: fewer than two rated completions": 1})
    [pair] = pairs
    assert pair["prompt_id"] == "ok" and pair["score_chosen"] == 4.0 and pair["score_rejected"] == 2.0
    assert pair["chosen"] == [{"role": "user", "content": "Question ok?"},
                              {"role": "assistant", "content": "answer of policy0"}]
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_pair(rows, "best-of-n")


def test_split_is_deterministic_and_stable_when_rows_are_added():
    rows = [{"prompt_id": f"p{i}"} for i in range(200)]
    train, test = split_train_test(rows, 0.1)
    assert len(train) + len(test) == 200 and 8 <= len(test) <= 35
    more_train, more_test = split_train_test(rows + [{"prompt_id": f"q{i}"} for i in range(50)], 0.1)
    assert {r["prompt_id"] for r in test} <= {r["prompt_id"] for r in more_test}
    assert not {r["prompt_id"] for r in more_train} & {r["prompt_id"] for r in more_test}


def preference_row(**overrides):
    row = {"prompt": "Hi?", "prompt_id": "x", "chosen": [{"role": "user", "content": "Hi?"},
           {"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "user", "content": "Hi?"},
           {"role": "assistant", "content": "Go away."}], "score_chosen": 8.0, "score_rejected": 2.5}
    row.update(overrides)
    return row


def test_read_preferences_names_the_bad_field(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(preference_row()) + "\n" + json.dumps(preference_row(rejected=[{"role": "user"}])) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'rejected\[0\]\.content'"):
        read_preferences(path)
    path.write_text(json.dumps(preference_row(chosen=[{"role": "user", "content": "Hi?"}])) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'chosen\[-1\]\.role'"):
        read_preferences(path)


def test_ultrafeedback_loader_reads_a_local_file_of_the_hub_schema(tmp_path):
    path = tmp_path / "train_prefs.jsonl"
    rows = [preference_row(prompt_id=f"id{i}", messages=preference_row()["chosen"]) for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = load_ultrafeedback_binarized(str(path), split="train_prefs", limit=3)
    assert len(dataset) == 3 and dataset[2]["prompt_id"] == "id2"
    assert dataset[0]["chosen"][-1] == {"role": "assistant", "content": "Hello!"}
    path.write_text(json.dumps(preference_row(score_chosen="high")) + "\n")
    with pytest.raises(DataError, match="field 'score_chosen'"):
        load_ultrafeedback_binarized(str(path), split="train_prefs")


def test_shipped_preference_prompts_are_ours_and_distinct_from_the_sft_seeds():
    prompts = read_jsonl(data_dir() / "preference_prompts.jsonl", {"id": str, "prompt": str, "category": str})
    assert len(prompts) >= 80
    assert len({p["id"] for p in prompts}) == len(prompts)
    normalize = lambda text: " ".join(text.lower().split())  # noqa: E731
    seeds_path = data_dir() / "seed_prompts.jsonl"
    if seeds_path.exists():
        seeds = {normalize(row["prompt"]) for row in read_jsonl(seeds_path)}
        assert not [p["prompt"] for p in prompts if normalize(p["prompt"]) in seeds]


def test_shipped_preference_data_matches_schema_and_ratings():
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
