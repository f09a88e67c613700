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


def random_texts(count: int, seed: int, vocabulary: int = 40, lengths=(0, 30)) -> list[str]:
    import random

    rng = random.Random(seed)
    words_ = [f"w{i}" for i in range(vocabulary)]
    return [" ".join(rng.choice(words_) for _ in range(rng.randint(*lengths))) for _ in range(count)]


def test_rapidfuzz_rouge_l_equals_the_from_scratch_one_on_random_texts():
    from zephyr_tutorial.generation.similarity import RougeLIndex, pairwise_rouge_l, words

    texts = random_texts(120, seed=3, vocabulary=12)  # a small vocabulary: long common subsequences, empty texts
    index = RougeLIndex(texts[:60])
    for text in texts[60:]:
        scores = index.scores(text)
        assert list(scores) == [rouge_l(text, kept) for kept in texts[:60]]  # equal floats, not approximately
        assert index.max_score(words(text)) == max(rouge_l(text, kept) for kept in texts[:60])
    assert pairwise_rouge_l(texts, max_pairs=2000) == pairwise_rouge_l(texts, max_pairs=2000, fast=False)
    assert RougeLIndex().max_score("anything at all") == 0.0


def test_reference_minhash_is_the_formula():
    import zlib

    import numpy as np

    from zephyr_tutorial.generation.similarity import _PRIME

    items = {"alpha beta", "beta gamma", "gamma delta"}
    rng = np.random.default_rng(1)
    a = [int(v) for v in rng.integers(1, _PRIME, size=8, dtype=np.uint64)]
    b = [int(v) for v in rng.integers(0, _PRIME, size=8, dtype=np.uint64)]
    x = [zlib.crc32(item.encode()) % _PRIME for item in items]
    expected = [min((a[k] * v + b[k]) % _PRIME for v in x) for k in range(8)]  # Python integers: no overflow
    assert [int(v) for v in minhash_signature(items, 8)] == expected


def test_shingle_hashes_cover_the_same_windows_as_shingles():
    from zephyr_tutorial.generation.similarity import shingle_hashes

    for text in random_texts(50, seed=5, vocabulary=200, lengths=(0, 400)) + ["one", "two words", ""]:
        assert len(shingle_hashes(text, 5)) == len(shingles(text, 5))
    assert (shingle_hashes("A b, c d e f!") == shingle_hashes("a B c D e   f")).all()  # words, not punctuation


def test_datasketch_and_reference_minhash_estimate_the_same_jaccard():
    """Two independent estimators of one quantity: each within 4 standard errors of the exact Jaccard, and on the
    same side of 0.8 whenever the exact value is clearly (0.15) away from it."""
    import random

    import numpy as np

    from zephyr_tutorial.generation.similarity import datasketch_signature, shingle_hashes

    rng = random.Random(11)
    base = random_texts(40, seed=7, vocabulary=2000, lengths=(150, 400))
    errors = {"reference": [], "datasketch": []}
    for text in base:
        tokens = text.split()
        changed = [t if rng.random() > rng.uniform(0, 0.25) else f"z{rng.randint(0, 9999)}" for t in tokens]
        other = " ".join(changed)
        a, b = shingles(text, 5), shingles(other, 5)
        exact = jaccard(a, b)
        ours = estimated_jaccard(minhash_signature(a, 128), minhash_signature(b, 128))
        theirs = estimated_jaccard(
            datasketch_signature(shingle_hashes(text), 128), datasketch_signature(shingle_hashes(other), 128)
        )
        bound = 4 * np.sqrt(max(exact * (1 - exact), 0.01) / 128)
        assert abs(ours - exact) <= bound and abs(theirs - exact) <= bound
        if abs(exact - 0.8) > 0.15:
            assert (ours >= 0.8) == (theirs >= 0.8) == (exact >= 0.8)
        errors["reference"].append(ours - exact)
        errors["datasketch"].append(theirs - exact)
    for name, values in errors.items():
        assert abs(np.mean(values)) < 0.02, name  # no bias
    # a set of strings goes through CRC-32 first, and identical sets give identical signatures
    assert (datasketch_signature({"a b", "c d"}, 16) == datasketch_signature({"c d", "a b"}, 16)).all()
