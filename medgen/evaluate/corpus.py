"""What evaluate reads: the generated corpus and the prepared splits as plain text with gold spans, and the
indexes (hashed n-grams, MinHash signatures) that several figure families share, built once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medgen.core.config import EvaluateConfig
from medgen.core.constants import CORPUS_PHI_FILE, RECORDS_FILE, REJECTED_FILE, SPLIT_FILE, SPLIT_PHI_FILE
from medgen.core.errors import DataError
from medgen.core.results import GenerateResult, PrepareResult
from medgen.data import markup
from medgen.data.prompts import parse_input
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


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """The rows of a JSONL file; every unreadable line or missing key is reported with its file:line."""
    if not path.is_file():
        raise DataError([f"{path}: missing; expected the output of a finished prepare or generate run"])
    rows, problems = [], []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                problems.append(f"{path}:{n}: expected a JSON object per line, got unreadable JSON")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
                continue
            if missing := [k for k in required if k not in row]:
                problems.append(f"{path}:{n}: missing key(s) {', '.join(missing)}")
                continue
            rows.append(row)
    if problems:
        raise DataError(problems)
    return rows


def load_generated(gen_dir: Path, labelled: bool) -> tuple[Corpus, Generation, GenerateResult]:
    """The generated corpus; `labelled` says whether the model was trained to mark up its PHI, without which
    its records carry no spans at all (not merely none)."""
    result = GenerateResult.from_manifest(gen_dir)
    rows = _read_jsonl(gen_dir / RECORDS_FILE, ("id", "sex", "service", "text"))
    spans = {p["id"]: p["spans"] for p in _read_jsonl(gen_dir / CORPUS_PHI_FILE, ("id", "spans"))}
    missing = [f"{gen_dir / RECORDS_FILE}:{i + 1}: no spans in {CORPUS_PHI_FILE} for this record's id"
               for i, r in enumerate(rows) if labelled and r["id"] not in spans]
    if missing:
        raise DataError(missing)
    corpus = Corpus([r["text"] for r in rows], [spans[r["id"]] for r in rows] if labelled else None,
                    [r["sex"] for r in rows], [r["service"] for r in rows])
    rejected = _read_jsonl(gen_dir / REJECTED_FILE, ("service", "reasons"))
    return corpus, Generation(result.counts, result.rejections_by_reason, rejected), result


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
    folder = prepared.out_dir
    path = folder / SPLIT_FILE.format(split=split)
    rows = _read_jsonl(path, ("input", "output"))
    texts: list[str] = []
    spans: list[list[dict]] | None = []
    problems: list[str] = []
    if prepared.phi_markup == "inline":
        for n, row in enumerate(rows, 1):
            try:
                plain, found = markup.strip(row["output"])
            except markup.MarkupError as e:
                problems.append(f"{path}:{n}: output: {e}")
                continue
            texts.append(plain)
            spans.append(found)
    else:
        texts = [row["output"] for row in rows]
        phi_path = folder / SPLIT_PHI_FILE.format(split=split)
        spans = [p["spans"] for p in _read_jsonl(phi_path, ("spans",))] if phi_path.is_file() else None
        if spans is not None and len(spans) != len(texts):
            problems.append(f"{phi_path}: expected {len(texts)} lines, one per record of {path.name}, "
                            f"got {len(spans)}")
    if problems:
        raise DataError(problems)
    pairs = [parse_input(row["input"]) or (None, None) for row in rows]
    return Corpus(texts, spans, [p[0] for p in pairs], [p[1] for p in pairs])


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
