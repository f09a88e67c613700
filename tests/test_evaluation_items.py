"""Judge items: the shipped pairs and labels, loaders that name bad rows, references and single items."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.data import DataError
from zephyr_tutorial.evaluation import (
    PairwiseItem,
    SingleJudgment,
    load_human_labels,
    load_pairwise_items,
    ratings_by_human_label,
    reference_answers,
    single_items_from_pairs,
)
from zephyr_tutorial.runtime import data_dir


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
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "instruction": "again"}) + "\n")
    with pytest.raises(DataError, match=r"line 3, field 'id': duplicate id 'x' \(first on line 1\)"):
        load_pairwise_items(path)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "x", "preferred": "A", "reason": "r"}) + "\n")
    with pytest.raises(DataError, match="line 1, field 'preferred'"):
        load_human_labels(labels)
    labels.write_text(json.dumps({"id": "zzz", "preferred": "a", "reason": "r"}) + "\n")
    with pytest.raises(DataError, match="field 'id'"):
        load_human_labels(labels, known_ids=["x"])


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
        ("m1:a", "54", "56"),
        ("m1:b", "56", "56"),
        ("r1:a", "Ben.", None),
        ("r1:b", "Anna.", None),
    ]
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
