"""Word tokens and hashed n-grams of whole corpora, and verbatim overlap between two corpora.

Nothing compares records pairwise: token n-grams are hashed with a polynomial rolling hash over random 64-bit
token values, vectorized with numpy (`NgramHashes`), so the hashes of every window of any length cost O(tokens)
array work, and membership in the training set is a search in a sorted array.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

# Words and single punctuation marks: whitespace differences never break a verbatim match.
from medgen.data.formats.bio import TOKEN_RE

_WORD_RE = re.compile(r"\w+")

# --- tokens and n-gram hashes ----------------------------------------------------------------------------

# An odd base is invertible modulo 2**64, which lets a window's hash be taken out of a prefix sum.
_BASE = 0x9E3779B97F4A7C15
_BASE_INV = pow(_BASE, -1, 2**64)


def _value(text: str, person: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, person=person).digest(), "little")


class _Ids(dict):
    """Token -> id, a new id for each token not seen before."""

    def __missing__(self, token: str) -> int:
        i = self[token] = len(self)
        return i


@dataclass(frozen=True)
class Sequences:
    """Many token sequences in one array: sequence i is values[offsets[i]:offsets[i + 1]]."""

    values: np.ndarray  # uint64: one random value per distinct token, so equal tokens hash equal
    offsets: np.ndarray  # int64, len(sequences) + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


class Vocabulary:
    """Tokens of every corpus of one evaluation, so that the same token gets the same value in each.

    Token values come from a keyed hash of the token, so they do not depend on the order corpora are read."""

    def __init__(self) -> None:
        self._ids = _Ids()
        self._token_values: list[int] = []
        self._word_values: list[int] = []  # of the lowercased token; 0 marks punctuation

    def encode(self, texts: Iterable[str]) -> tuple[Sequences, Sequences]:
        """Every token of each text, and its words alone, lowercased (for shingles and distinct-n)."""
        ids: list[np.ndarray] = []
        for text in texts:
            tokens = TOKEN_RE.findall(text)
            ids.append(np.fromiter(map(self._ids.__getitem__, tokens), dtype=np.int64, count=len(tokens)))
        for token in list(self._ids)[len(self._token_values):]:
            self._token_values.append(_value(token, b"token"))
            # Forced odd, hence never 0, the mark of punctuation.
            self._word_values.append(_value(token.lower(), b"word") | 1 if _WORD_RE.fullmatch(token) else 0)
        token_values = np.array(self._token_values, dtype=np.uint64)
        word_values = np.array(self._word_values, dtype=np.uint64)
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in ids], out=offsets[1:])
        words = word_values[flat]
        is_word = words != 0
        words_before = np.zeros(len(flat) + 1, dtype=np.int64)
        np.cumsum(is_word, out=words_before[1:])
        return Sequences(token_values[flat], offsets), Sequences(words[is_word], words_before[offsets])


class NgramHashes:
    """The hash of every window of n consecutive tokens inside one sequence, for any n.

    With S[k] = sum_{m<k} v[m] B^m (mod 2^64) over the concatenated values, the window at i of length n hashes to
    (S[i+n] - S[i]) * B^-i: the same for equal windows wherever they are, in O(tokens) vectorized work per n."""

    def __init__(self, seqs: Sequences):
        self.seqs = seqs
        n = len(seqs.values)
        powers = np.full(n + 1, _BASE, dtype=np.uint64)
        powers[0] = 1
        np.cumprod(powers, out=powers)  # wraps modulo 2**64, as intended
        self._prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(seqs.values * powers[:n], out=self._prefix[1:])
        inverse = np.full(n + 1, _BASE_INV, dtype=np.uint64)
        inverse[0] = 1
        self._inverse = np.cumprod(inverse)

    def __len__(self) -> int:
        return len(self.seqs)

    def windows(self, n: int, docs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(hashes, sequence index) of every n-token window of the sequences `docs` (default: all)."""
        docs = np.arange(len(self.seqs)) if docs is None else np.asarray(docs, dtype=np.int64)
        starts = self.seqs.offsets[docs]
        counts = np.maximum(self.seqs.offsets[docs + 1] - starts - n + 1, 0)
        total = int(counts.sum())
        first = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        pos = first + np.arange(total, dtype=np.int64)
        hashes = (self._prefix[pos + n] - self._prefix[pos]) * self._inverse[pos]
        return hashes, np.repeat(docs, counts)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    s = np.sort(values)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def _member(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which queries occur in `reference` (sorted, unique)."""
    if not len(reference) or not len(queries):
        return np.zeros(len(queries), dtype=bool)
    # Searching in query order jumps around a reference larger than the caches (~1 us a query at 10M);
    # in sorted order the searches walk it once, which pays for the sort many times over.
    order = np.argsort(queries)
    ordered = queries[order]
    idx = np.minimum(np.searchsorted(reference, ordered), len(reference) - 1)
    found = np.empty(len(queries), dtype=bool)
    found[order] = reference[idx] == ordered
    return found


# --- verbatim overlap ------------------------------------------------------------------------------------

class _RunProbe:
    """Which query sequences share a run of n tokens with the reference, probing only the undecided ones.

    Every probe narrows each sequence's bounds: `lo` (a shared run that long exists) and `hi` (none that long),
    so the searches for the maximum and the median reuse each other's answers."""

    def __init__(self, query: NgramHashes, reference: NgramHashes):
        self.query, self.reference = query, reference
        self.lo = np.zeros(len(query), dtype=np.int64)
        self.hi = query.seqs.lengths + 1

    def shared(self, n: int, docs: np.ndarray) -> np.ndarray:
        """For each of `docs`, whether it shares an n-token run with the reference."""
        undecided = docs[(self.lo[docs] < n) & (self.hi[docs] > n)]
        if len(undecided):
            hashes, doc = self.query.windows(n, undecided)
            hit = _member(hashes, sorted_unique(self.reference.windows(n)[0]))
            yes = np.zeros(len(self.query), dtype=bool)
            yes[doc[hit]] = True
            self.lo[undecided[yes[undecided]]] = n
            self.hi[undecided[~yes[undecided]]] = n
        return self.lo[docs] >= n

    def longest_max(self) -> int:
        """The longest run any sequence shares; a probe only queries sequences its bounds leave undecided."""
        docs = np.arange(len(self.query))
        lo, hi = int(self.lo.max(initial=0)), int(self.hi.max(initial=1))
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.shared(mid, docs).any() else (lo, mid)
        return lo

    def longest_median(self) -> int:
        """The median over sequences of the longest shared run: the largest n shared by at least half of them."""
        docs = np.arange(len(self.query))
        need = math.ceil(len(docs) / 2)
        lo, hi = 0, int(self.hi.max(initial=1))
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.shared(mid, docs).sum() >= need else (lo, mid)
        return lo


def verbatim_overlap(query: NgramHashes, reference: NgramHashes, window: int) -> dict:
    """How much of the query corpus occurs verbatim in the reference: the fraction of its `window`-token
    windows found there, the fraction of sequences with at least one, and the longest shared token run
    (the largest over sequences, and the median of each sequence's longest)."""
    hashes, doc = query.windows(window)
    hit = _member(hashes, sorted_unique(reference.windows(window)[0]))
    probe = _RunProbe(query, reference)
    with_window = np.zeros(len(query), dtype=bool)
    with_window[doc[hit]] = True
    has_window = np.bincount(doc, minlength=len(query)) > 0
    probe.lo[with_window] = window
    probe.hi[has_window & ~with_window] = window
    return {"window": window, "windows": int(len(hashes)),
            "window_fraction": round(float(hit.mean()), 4) if len(hit) else None,
            "records_with_window_fraction": round(float(with_window.mean()), 4) if len(query) else None,
            "longest_run_max": probe.longest_max() if len(query) else None,
            "longest_run_median": probe.longest_median() if len(query) else None}
