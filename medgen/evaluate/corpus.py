"""What evaluate reads: the generated corpus and the prepared splits as plain text with gold spans, and the
indexes (hashed n-grams, MinHash signatures) that several figure families share, built once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgen.core.config import EvaluateConfig
from medgen.core.constants import CORPUS_PHI_FILE, RAW_DIR, RECORDS_FILE, REJECTED_FILE
from medgen.core.errors import DataError
from medgen.core.results import GenerateResult, PrepareResult
from medgen.data.splits import read_jsonl, read_split
from medgen.evaluate import metrics


@dataclass
class Corpus:
    """Records of one source as evaluate reads them: plain text, PHI spans (None when the source carries no
    labels), and the Sex and Service each record was asked for (generated) or prepared with (splits)."""

    texts: list[str]
    spans: list[list[dict]] | None
    sexes: list[str | None]
    services: list[str | None]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Generation:
    """What generate reports beside its records: the plan's outcome and the rejected requests."""

    counts: dict  # planned, valid, rejected, valid_fraction
    rejections_by_reason: dict[str, int]
    rejected: list[dict]  # id, sex, service, attempts, reasons
    consistency: dict  # the model's own attempts, checked at generation time (GenerateResult.consistency)


def _records(folder: Path, labelled: bool) -> Corpus:
    rows = read_jsonl(folder / RECORDS_FILE, ("id", "sex", "service", "text"))
    spans = {p["id"]: p["spans"] for p in read_jsonl(folder / CORPUS_PHI_FILE, ("id", "spans"))}
    missing = [f"{folder / RECORDS_FILE}:{i + 1}: no spans in {CORPUS_PHI_FILE} for this record's id"
               for i, r in enumerate(rows) if labelled and r["id"] not in spans]
    if missing:
        raise DataError(missing)
    return Corpus([r["text"] for r in rows], [spans[r["id"]] for r in rows] if labelled else None,
                  [r["sex"] for r in rows], [r["service"] for r in rows])


def load_generated(gen_dir: Path, labelled: bool) -> tuple[Corpus, Corpus, Generation, GenerateResult]:
    """The released corpus and the model's own records (the same unless generate replaced their PHI with
    surrogates, then generate/raw/); `labelled` says whether the model was trained to mark up its PHI, without
    which its records carry no spans at all (not merely none)."""
    result = GenerateResult.from_manifest(gen_dir)
    released = _records(gen_dir, labelled)
    raw = _records(gen_dir / RAW_DIR, labelled) if result.surrogates == "fresh" else released
    rejected = read_jsonl(gen_dir / REJECTED_FILE, ("service", "reasons"))
    generation = Generation(result.counts, result.rejections_by_reason, rejected, result.consistency)
    return released, raw, generation, result


def distinct(corpus: Corpus) -> Corpus:
    """The corpus with exact repeats of a record's text dropped (the first is kept)."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(corpus.texts):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    if len(keep) == len(corpus):
        return corpus
    return Corpus([corpus.texts[i] for i in keep], None if corpus.spans is None else [corpus.spans[i] for i in keep],
                  [corpus.sexes[i] for i in keep], [corpus.services[i] for i in keep])


def load_split(prepared: PrepareResult, split: str) -> Corpus:
    """A prepared split with markup stripped (inline) or spans from its `.phi.jsonl`; Sex/Service from its input."""
    s = read_split(prepared, split)
    return Corpus(s.texts, s.spans, s.sexes, s.services)


# --- shared indexes --------------------------------------------------------------------------------------

@dataclass
class Indexed:
    """A corpus with what several sections need, built once: token and word n-gram hashes, MinHash signatures."""

    corpus: Corpus
    tokens: metrics.NgramHashes
    words: metrics.NgramHashes
    signatures: metrics.Signatures

    def __len__(self) -> int:
        return len(self.corpus)


def index(corpora: list[Corpus], ev: EvaluateConfig) -> list[Indexed]:
    """Tokenize and hash every corpus once; the sections below share the result."""
    vocab = metrics.Vocabulary()  # one for all, so the same token hashes the same in each corpus
    out = []
    for c in corpora:
        tokens, words = vocab.encode(c.texts)
        word_hashes = metrics.NgramHashes(words)
        out.append(Indexed(c, metrics.NgramHashes(tokens), word_hashes,
                           metrics.Signatures(word_hashes, ev.shingle, ev.num_perm)))
    return out


def sample(n: int, m: int, seed: int) -> np.ndarray:
    """m of n indices, sorted, the same for the same seed."""
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False)) if m < n else np.arange(n)


def frac(k: float, n: float) -> float | None:
    return round(k / n, 4) if n else None


def diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None
