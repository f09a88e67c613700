"""How alike two texts are, and how diverse a set of texts is.

Self-instruct keeps a new instruction only if it is not too close to any kept
one (ROUGE-L), the filtering stage drops near-duplicate dialogues (MinHash),
and notebook 02 compares the diversity of the two generation strategies
(pairwise ROUGE-L histograms and distinct-n).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (what ROUGE and distinct-n count)."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a)·len(b)) dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str | Sequence[str], reference: str | Sequence[str]) -> float:
    r"""ROUGE-L F-measure between two texts (or token lists).

    .. math:: P = \frac{LCS}{|c|},\quad R = \frac{LCS}{|r|},\quad F = \frac{2PR}{P + R}

    Symmetric, in [0, 1]; 0 when either text has no words.
    """
    c = words(candidate) if isinstance(candidate, str) else list(candidate)
    r = words(reference) if isinstance(reference, str) else list(reference)
    if not c or not r:
        return 0.0
    common = lcs_length(c, r)
    if common == 0:
        return 0.0
    precision, recall = common / len(c), common / len(r)
    return 2 * precision * recall / (precision + recall)


def max_rouge_l(candidate: str, references: Sequence[Sequence[str]]) -> float:
    """Highest ROUGE-L of ``candidate`` against pre-tokenized ``references`` (0 if there are none)."""
    tokens = words(candidate)
    return max((rouge_l(tokens, ref) for ref in references), default=0.0)


def pairwise_rouge_l(texts: Sequence[str], max_pairs: int | None = 5000, seed: int = 0) -> list[float]:
    """ROUGE-L of every pair of texts (or of ``max_pairs`` random pairs when there are more)."""
    import random

    tokens = [words(t) for t in texts]
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    return [rouge_l(tokens[i], tokens[j]) for i, j in pairs]


def distinct_n(texts: Sequence[str], n: int) -> float:
    r"""Distinct-n: unique n-grams over all n-grams of a corpus (Li et al. 2016).

    .. math:: \text{distinct-}n = \frac{|\{\text{unique } n\text{-grams}\}|}{\#\, n\text{-grams}}

    1.0 means no n-gram repeats anywhere; repetitive corpora score low.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    total, unique = 0, set()
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def shingles(text: str, size: int = 5) -> set[str]:
    """The set of ``size``-word windows of a text (the whole text if it is shorter)."""
    tokens = words(text)
    if len(tokens) <= size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def jaccard(a: set, b: set) -> float:
    r""":math:`J(A, B) = |A \cap B| / |A \cup B|` (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_MERSENNE = (1 << 61) - 1


def minhash_signature(items: set[str], num_permutations: int = 64, seed: int = 1):
    r"""MinHash signature: for each random hash :math:`h_k(x) = (a_k x + b_k) \bmod p`, the minimum over the set.

    Two sets agree on a signature position with probability equal to their
    Jaccard similarity, so the fraction of equal positions estimates it.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.integers(1, _MERSENNE, size=num_permutations, dtype=np.uint64)
    b = rng.integers(0, _MERSENNE, size=num_permutations, dtype=np.uint64)
    if not items:
        return np.full(num_permutations, np.iinfo(np.uint64).max, dtype=np.uint64)
    base = np.array([zlib.crc32(item.encode("utf-8")) for item in items], dtype=np.uint64)
    # Python ints avoid uint64 overflow in a*x; sets here are small (hundreds of shingles)
    hashed = (np.outer(base.astype(object), a.astype(object)) + b.astype(object)) % _MERSENNE
    return np.array(hashed.min(axis=0), dtype=np.uint64)


def estimated_jaccard(signature_a, signature_b) -> float:
    """Fraction of MinHash positions on which two signatures agree."""
    return float((signature_a == signature_b).mean())
