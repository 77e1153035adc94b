"""Near-duplicates through MinHash LSH (datasketch), which only ever compares records that share a band."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from medgen.evaluate.metrics.ngrams import NgramHashes

if TYPE_CHECKING:
    from datasketch import LeanMinHash, MinHashLSH

_SCHEME = "affine32"  # datasketch's default since 2.0, named because reusing permutations requires it


def _sketch(values: np.ndarray) -> LeanMinHash:
    from datasketch import LeanMinHash, MinHash

    return LeanMinHash(MinHash(hashvalues=values, scheme=_SCHEME))


class Signatures:
    """MinHash signatures of word shingles, one per sequence; a sequence shorter than a shingle has none."""

    def __init__(self, words: NgramHashes, shingle: int, num_perm: int):
        from datasketch import MinHash

        self.num_perm = num_perm
        template = MinHash(num_perm=num_perm, scheme=_SCHEME)
        hashes, doc = words.windows(shingle)
        # datasketch's permutations are meant for 32-bit hashes.
        hashes = hashes & np.uint64(0xFFFFFFFF)
        bounds = np.searchsorted(doc, np.arange(len(words) + 1))
        self.values: list[np.ndarray | None] = []
        for i in range(len(words)):
            own = hashes[bounds[i]:bounds[i + 1]]
            if not len(own):
                self.values.append(None)
                continue
            m = MinHash(num_perm=num_perm, hashfunc=int, permutations=template.permutations, scheme=_SCHEME)
            m.update_batch(np.unique(own))
            self.values.append(m.hashvalues)

    def __len__(self) -> int:
        return len(self.values)

    def lsh(self, threshold: float, docs: Iterable[int]) -> MinHashLSH:
        from datasketch import MinHashLSH

        index = MinHashLSH(threshold=threshold, num_perm=self.num_perm)
        for i in docs:
            if (v := self.values[i]) is not None:
                index.insert(int(i), _sketch(v), check_duplication=False)
        return index


def _has_near_duplicate(sig: np.ndarray, candidates: Iterable[int], reference: Signatures, threshold: float,
                        exclude: int | None = None) -> bool:
    # LSH candidates are only likely matches: each is confirmed by its estimated Jaccard similarity.
    return any(c != exclude and float(np.mean(sig == reference.values[c])) >= threshold for c in candidates)


def near_duplicate_rate(queries: Signatures, reference: Signatures, threshold: float) -> float | None:
    """Fraction of the query sequences with at least one near-duplicate among the reference sequences."""
    if not len(queries):
        return None
    index = reference.lsh(threshold, range(len(reference)))
    hits = sum(_has_near_duplicate(sig, index.query(_sketch(sig)), reference, threshold)
               for sig in queries.values if sig is not None)
    return round(hits / len(queries), 4)


def near_duplicate_rate_within(sigs: Signatures, threshold: float, docs: Sequence[int]) -> float | None:
    """Fraction of the sequences `docs` with a near-duplicate among the other sequences of `docs`."""
    if not len(docs):
        return None
    index = sigs.lsh(threshold, docs)
    hits = sum(_has_near_duplicate(sig, index.query(_sketch(sig)), sigs, threshold, exclude=int(i))
               for i in docs if (sig := sigs.values[i]) is not None)
    return round(hits / len(docs), 4)
