"""Length and diversity figures: KS statistic, summaries, distinct-n, compression ratio."""

from __future__ import annotations

import zlib
from typing import Iterable, Sequence

import numpy as np

from medgen.evaluate.metrics.ngrams import NgramHashes, sorted_unique


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if not len(a) or not len(b):
        return None
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    grid = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b))
    return round(float(gap.max()), 4)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    if not len(values):
        return {"mean": None, "p50": None, "p95": None, "max": None}
    v = np.asarray(values, dtype=float)
    return {"mean": round(float(v.mean()), 1), "p50": float(np.percentile(v, 50)),
            "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def distinct_n(words: NgramHashes, n: int, docs: np.ndarray | None = None) -> float | None:
    """Distinct word n-grams over all word n-grams of the sequences `docs` (default: all)."""
    hashes, _ = words.windows(n, docs)
    return round(len(sorted_unique(hashes)) / len(hashes), 4) if len(hashes) else None


def compression_ratio(texts: Iterable[str]) -> float | None:
    """zlib-compressed size over raw size of the texts joined: lower means more repetitive."""
    raw = "\n".join(texts).encode()
    return round(len(zlib.compress(raw, 6)) / len(raw), 4) if raw else None
