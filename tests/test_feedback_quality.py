"""How much to trust ratings: preference from means, agreement with human labels, aspect statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zephyr_tutorial.evaluation.rating import ASPECTS, Rating
from zephyr_tutorial.feedback.quality import (
    aspect_correlations,
    judge_agreement,
    load_human_pairs,
    missing_reasons,
    preference_from_means,
    scores_by_policy,
)


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
