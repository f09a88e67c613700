"""How alike two texts are, and how diverse a set of texts is.

Self-instruct keeps a new instruction only if it is not too close to any kept
one (ROUGE-L), the filtering stage drops near-duplicate dialogues (MinHash),
and notebook 02 compares the diversity of the two generation strategies
(pairwise ROUGE-L histograms and distinct-n).

Each measure is written here from scratch, short enough to read: :func:`lcs_length` (the dynamic programme
behind :func:`rouge_l`) and :func:`minhash_signature`. They are the **reference**. The pipeline runs the same
arithmetic through maintained libraries, tested against the reference on random texts
(``tests/test_generation_similarity.py``):

- :class:`RougeLIndex` and :func:`pairwise_rouge_l` get the LCS from ``rapidfuzz`` (C++, identical integers,
  so identical scores: the F-measure is computed from the LCS by the same :func:`rouge_l_from_lcs`);
- :func:`datasketch_signature` is ``datasketch``'s MinHash over the same shingles: other random hash functions,
  so another estimate of the same Jaccard similarity (both are unbiased; they differ by the estimate's noise).
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


def rouge_l_from_lcs(common: int, candidate_length: int, reference_length: int) -> float:
    r"""The ROUGE-L F-measure from the LCS length and the two lengths (0 when either is empty or nothing is shared).

    .. math:: P = \frac{LCS}{|c|},\quad R = \frac{LCS}{|r|},\quad F = \frac{2PR}{P + R}
    """
    if common == 0 or candidate_length == 0 or reference_length == 0:
        return 0.0
    precision, recall = common / candidate_length, common / reference_length
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: str | Sequence[str], reference: str | Sequence[str]) -> float:
    """ROUGE-L F-measure between two texts (or token lists), with the from-scratch LCS.

    Symmetric, in [0, 1]; 0 when either text has no words.
    """
    c = words(candidate) if isinstance(candidate, str) else list(candidate)
    r = words(reference) if isinstance(reference, str) else list(reference)
    if not c or not r:
        return 0.0
    return rouge_l_from_lcs(lcs_length(c, r), len(c), len(r))


def _f_measures(common, candidate_length: int, reference_lengths):
    """:func:`rouge_l_from_lcs` over arrays, with the same floating-point operations in the same order."""
    import numpy as np

    common = np.asarray(common, dtype=np.float64)
    lengths = np.asarray(reference_lengths, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision, recall = common / candidate_length, common / lengths
        scores = 2 * precision * recall / (precision + recall)
    return np.where((common == 0) | (lengths == 0) | (candidate_length == 0), 0.0, scores)


class RougeLIndex:
    """Kept texts (as word lists) and the highest ROUGE-L of a new text against all of them, LCS by ``rapidfuzz``.

    What self-instruct's novelty filter asks for every candidate. ``rapidfuzz``'s ``LCSseq`` computes the same
    longest common subsequence as :func:`lcs_length` (bit-parallel, in C++), so the scores equal :func:`rouge_l`'s.
    """

    def __init__(self, texts: Sequence[str | Sequence[str]] = ()):
        self.tokens: list[list[str]] = []
        self.lengths: list[int] = []
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, text: str | Sequence[str]) -> None:
        tokens = words(text) if isinstance(text, str) else list(text)
        self.tokens.append(tokens)
        self.lengths.append(len(tokens))

    def scores(self, text: str | Sequence[str]):
        """ROUGE-L of ``text`` against every kept text, in order (a numpy array)."""
        import numpy as np
        from rapidfuzz import process
        from rapidfuzz.distance import LCSseq

        tokens = words(text) if isinstance(text, str) else list(text)
        if not self.tokens:
            return np.zeros(0)
        common = process.cdist([tokens], self.tokens, scorer=LCSseq.similarity, dtype=np.int32, workers=1)[0]
        return _f_measures(common, len(tokens), self.lengths)

    def max_score(self, text: str | Sequence[str]) -> float:
        """Highest ROUGE-L of ``text`` against the kept texts (0 if there are none)."""
        scores = self.scores(text)
        return float(scores.max()) if len(scores) else 0.0


def max_rouge_l(candidate: str, references: Sequence[Sequence[str]]) -> float:
    """Highest ROUGE-L of ``candidate`` against pre-tokenized ``references`` (0 if there are none)."""
    tokens = words(candidate)
    return max((rouge_l(tokens, ref) for ref in references), default=0.0)


def pairwise_rouge_l(
    texts: Sequence[str], max_pairs: int | None = 5000, seed: int = 0, *, fast: bool = True
) -> list[float]:
    """ROUGE-L of every pair of texts (or of ``max_pairs`` random pairs when there are more).

    ``fast=False`` uses the from-scratch :func:`rouge_l`; the default gets the LCS from ``rapidfuzz``
    (the same numbers, about a hundred times sooner).
    """
    import random

    tokens = [words(t) for t in texts]
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    if not fast:
        return [rouge_l(tokens[i], tokens[j]) for i, j in pairs]
    from rapidfuzz.distance import LCSseq

    return [rouge_l_from_lcs(LCSseq.similarity(tokens[i], tokens[j]), len(tokens[i]), len(tokens[j])) for i, j in pairs]


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


_PRIME = (1 << 31) - 1
"""The Mersenne prime :math:`2^{31} - 1`: products :math:`a x` of two numbers below it fit in 64 bits, so numpy's
uint64 arithmetic is exact."""


def minhash_signature(items: set[str], num_permutations: int = 64, seed: int = 1):
    r"""MinHash signature: for each random hash :math:`h_k(x) = (a_k x + b_k) \bmod p`, the minimum over the set.

    :math:`x` is the CRC-32 of an item (reduced modulo :math:`p = 2^{31} - 1`), :math:`a_k, b_k` are random
    (the same for every set, from ``seed``). Two sets agree on a signature position with probability equal
    to their Jaccard similarity, so the fraction of equal positions estimates it.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, size=num_permutations, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=num_permutations, dtype=np.uint64)
    if not items:
        return np.full(num_permutations, _PRIME, dtype=np.uint64)
    x = np.array([zlib.crc32(item.encode("utf-8")) for item in items], dtype=np.uint64) % _PRIME
    hashed = (np.outer(x, a) + b) % _PRIME  # (items × permutations), every value exact below 2^63
    return hashed.min(axis=0)


def estimated_jaccard(signature_a, signature_b) -> float:
    """Fraction of MinHash positions on which two signatures agree."""
    return float((signature_a == signature_b).mean())


_MASK64 = (1 << 64) - 1
_WINDOW_BASE = 0x100000001B3  # the 64-bit FNV prime: any odd multiplier spreads the words' hashes


def shingle_hashes(text: str, size: int = 5):
    """32-bit hashes of the same ``size``-word windows as :func:`shingles`, without building the strings.

    The CRC-32 of each word, combined over each window by a polynomial hash in numpy's wrapping uint64
    arithmetic and folded to 32 bits; unique values, sorted. What the fast path feeds ``datasketch``: building
    hundreds of window strings per dialogue in Python costs more than the MinHash itself.
    """
    import numpy as np

    tokens = words(text)
    if not tokens:
        return np.zeros(0, dtype=np.uint32)
    hashes = np.array([zlib.crc32(t.encode("utf-8")) for t in tokens], dtype=np.uint64)
    width = min(size, len(hashes))
    count = len(hashes) - width + 1
    base = np.uint64(_WINDOW_BASE)
    combined = hashes[:count].copy()
    with np.errstate(over="ignore"):
        for k in range(1, width):
            combined = combined * base + hashes[k : k + count]
    folded = (combined ^ (combined >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return np.unique(folded.astype(np.uint32))


_DATASKETCH_TEMPLATES: dict = {}


def _identity(value: int) -> int:
    return value


def datasketch_signature(hashes, num_permutations: int = 64, seed: int = 1):
    """``datasketch``'s MinHash of a set given by 32-bit hashes (:func:`shingle_hashes`): its hash values (uint32).

    The same estimator as :func:`minhash_signature` with ``datasketch``'s hash functions (each input mixed by
    the MurmurHash3 finalizer, then random affine maps modulo :math:`2^{32}`), vectorised in numpy: an
    independent estimate of the same Jaccard similarity, not the same numbers. A set of strings is hashed with
    CRC-32 first.
    """
    import numpy as np
    from datasketch import MinHash

    template = _DATASKETCH_TEMPLATES.get((num_permutations, seed))
    if template is None:
        template = _DATASKETCH_TEMPLATES[(num_permutations, seed)] = MinHash(
            num_perm=num_permutations, seed=seed, hashfunc=_identity
        )
    if isinstance(hashes, (set, frozenset, list, tuple)):
        hashes = [zlib.crc32(str(item).encode("utf-8")) for item in hashes]
    minhash = template.copy()
    minhash.update_batch(np.asarray(hashes, dtype=np.uint32).tolist())
    return minhash.hashvalues
