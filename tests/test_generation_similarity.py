"""ROUGE-L, distinct-n and MinHash."""

from __future__ import annotations

import pytest

from zephyr_tutorial.generation.similarity import (
    distinct_n,
    estimated_jaccard,
    jaccard,
    lcs_length,
    minhash_signature,
    rouge_l,
    shingles,
)


def test_rouge_l_values():
    assert lcs_length("a b c d".split(), "a c d b".split()) == 3
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("red green", "blue yellow") == 0.0
    assert rouge_l("", "anything") == 0.0
    # LCS("the cat sat", "the cat ate the fish") = 2: P = 2/3, R = 2/5, F = 2PR/(P+R) = 0.5
    assert rouge_l("the cat sat", "the cat ate the fish") == pytest.approx(0.5)
    assert rouge_l("a b c", "c b a x") == rouge_l("c b a x", "a b c")


def test_distinct_n():
    assert distinct_n(["a b c d"], 1) == 1.0
    assert distinct_n(["a a a a"], 1) == 0.25
    assert distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)
    assert distinct_n([""], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["x"], 0)


def test_minhash_estimates_jaccard():
    base = [f"w{i}" for i in range(200)]
    a = shingles(" ".join(base), 3)
    b = shingles(" ".join(base[:150] + [f"z{i}" for i in range(50)]), 3)
    exact = jaccard(a, b)
    estimate = estimated_jaccard(minhash_signature(a, 256), minhash_signature(b, 256))
    assert 0.3 < exact < 0.8
    assert abs(estimate - exact) < 0.1
    assert estimated_jaccard(minhash_signature(a), minhash_signature(set(a))) == 1.0
