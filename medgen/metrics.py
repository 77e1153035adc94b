"""Metrics of a synthetic corpus against its training data: pure functions over texts, PHI spans and arrays.

Every figure here is a count, a fraction or a length: none returns record text, since records may hold real
PHI. `medgen.evaluate` calls these on the generated corpus and on the control (held-out test records), each
against the training split.

Scaling: nothing compares records pairwise. Token n-grams are hashed with a polynomial rolling hash over
random 64-bit token values, vectorized with numpy (`NgramHashes`): the hashes of every window of any length
cost O(tokens) array work, and membership in the training set is a search in a sorted array. Near-duplicates
go through MinHash LSH (datasketch), which only ever compares records that share a band.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from medgen.clinical import SERVICES
from medgen.constants import SECTION_HEADINGS
from medgen.record_format import header_value

if TYPE_CHECKING:
    from datasketch import LeanMinHash, MinHashLSH

# Words and single punctuation marks: whitespace differences never break a verbatim match.
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
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


def _sorted_unique(values: np.ndarray) -> np.ndarray:
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


# --- fidelity and diversity ------------------------------------------------------------------------------

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
    return round(len(_sorted_unique(hashes)) / len(hashes), 4) if len(hashes) else None


def compression_ratio(texts: Iterable[str]) -> float | None:
    """zlib-compressed size over raw size of the texts joined: lower means more repetitive."""
    raw = "\n".join(texts).encode()
    return round(len(zlib.compress(raw, 6)) / len(raw), 4) if raw else None


# --- near-duplicates (MinHash LSH) -----------------------------------------------------------------------

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
            hit = _member(hashes, _sorted_unique(self.reference.windows(n)[0]))
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
    hit = _member(hashes, _sorted_unique(reference.windows(window)[0]))
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


# --- PHI reuse -------------------------------------------------------------------------------------------

REUSE_KINDS = ("patient_name", "mrn", "phone", "street", "name_dob")
_SPAN_KINDS = {"NAME:PATIENT": "patient_name", "ID:MRN": "mrn", "CONTACT:PHONE": "phone",
               "LOCATION:STREET": "street"}


def _norm(value: str) -> str:
    return " ".join(value.casefold().split())


def phi_values(text: str, spans: Sequence[Mapping] | None) -> dict[str, set[str]]:
    """The identifying PHI values of one record, normalized, by kind: full patient names (two words or more:
    a surname alone is common by chance), MRNs, phones (digits only), street addresses, and the patient's
    name with the date of birth. The header's Name and Unit No count too, so records without spans still
    yield names and MRNs."""
    out: dict[str, set[str]] = {k: set() for k in REUSE_KINDS}
    for s in spans or ():
        kind = _SPAN_KINDS.get(s["category"])
        if kind == "phone":
            out[kind].add("".join(ch for ch in s["text"] if ch.isdigit()))
        elif kind == "patient_name":
            if len(s["text"].split()) >= 2:
                out[kind].add(_norm(s["text"]))
        elif kind:
            out[kind].add(_norm(s["text"]))
    name, mrn, dob = (header_value(text, f) for f in ("Name", "Unit No", "Date of Birth"))
    if name and len(name.split()) >= 2:
        out["patient_name"].add(_norm(name))
    if mrn:
        out["mrn"].add(_norm(mrn))
    born = parse_date(dob or "")
    if name and born:
        out["name_dob"].add(f"{_norm(name)}|{born.isoformat()}")
    out["phone"].discard("")
    return out


def phi_reuse(query: Sequence[dict[str, set[str]]], reference: Sequence[dict[str, set[str]]]) -> dict:
    """Per kind: how many of the query records' values (distinct within a record) occur among the reference's."""
    seen = {k: set().union(*(r[k] for r in reference)) for k in REUSE_KINDS}
    out = {}
    for k in REUSE_KINDS:
        values = sum(len(r[k]) for r in query)
        reused = sum(len(r[k] & seen[k]) for r in query)
        out[k] = {"values": values, "reused": reused, "fraction": round(reused / values, 4) if values else None}
    return out


# --- internal consistency --------------------------------------------------------------------------------

CHECKS = ("age_matches_dob", "title_matches_sex", "pronouns_match_sex", "admission_before_discharge",
          "followups_after_discharge", "service_fits_diagnosis")
_DATE_RE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b|\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_AGE_RE = re.compile(r"\b(\d{1,3})(?:[- ](?:year|yr)s?[- ]old|\s?y/?o)\b", re.IGNORECASE)
_PRONOUN_RE = re.compile(r"\b(he|him|his|himself|she|her|hers|herself)\b", re.IGNORECASE)
_MALE_PRONOUNS = {"he", "him", "his", "himself"}
_TITLES = {"mr": "Male", "mrs": "Female", "ms": "Female", "miss": "Female"}
_HEADING_RE = re.compile(r"(?m)^(" + "|".join(map(re.escape, SECTION_HEADINGS)) + r"):")
# Diagnosis text -> the services it belongs to (a diagnosis could in principle sit under several).
_DIAGNOSES: dict[str, set[str]] = {}
for _service, _conditions in SERVICES.items():
    for _c in _conditions:
        _DIAGNOSES.setdefault(_c.diagnosis.lower(), set()).add(_service)


def parse_date(text: str) -> dt.date | None:
    """The first MM/DD/YYYY or YYYY-MM-DD date in `text`; None when there is none or it is impossible."""
    m = _DATE_RE.search(text)
    if not m:
        return None
    month, day, year = (m[1], m[2], m[3]) if m[1] else (m[5], m[6], m[4])
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def sections(text: str) -> dict[str, str]:
    """Each expected heading's body (the text up to the next expected heading); the first one of each."""
    found = list(_HEADING_RE.finditer(text))
    out: dict[str, str] = {}
    for m, nxt in zip(found, found[1:] + [None]):
        out.setdefault(m[1], text[m.end():nxt.start() if nxt else len(text)])
    return out


def _sex(text: str) -> str | None:
    got = (header_value(text, "Sex") or "")[:1].upper()
    return {"M": "Male", "F": "Female"}.get(got)


def consistency(text: str) -> dict[str, bool | None]:
    """Internal consistency of one record, each check True (holds), False (violated) or None (cannot tell:
    the fields it needs are missing or unreadable). Sex is the record's own header field."""
    sex = _sex(text)
    admit, discharge, dob = (parse_date(header_value(text, f) or "") for f in
                             ("Admission Date", "Discharge Date", "Date of Birth"))
    body = sections(text)
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)

    age = _AGE_RE.search(text)
    if age and admit and dob:
        years = admit.year - dob.year - ((admit.month, admit.day) < (dob.month, dob.day))
        out["age_matches_dob"] = abs(int(age[1]) - years) <= 1

    name = header_value(text, "Name")
    if sex and name:
        # Titles before the patient's surname only: a relative may be Mr. or Ms. in anyone's record.
        surname = re.escape(name.split()[-1])
        titles = {_TITLES[t.lower()] for t in re.findall(rf"\b(Mr|Mrs|Ms|Miss)\.?\s+{surname}\b", text, re.IGNORECASE)}
        if titles:
            out["title_matches_sex"] = titles == {sex}

    if sex:
        pronouns = Counter("Male" if p.lower() in _MALE_PRONOUNS else "Female" for p in _PRONOUN_RE.findall(text))
        if pronouns:
            # The majority, since a note may speak of a relative of the other sex.
            other = "Female" if sex == "Male" else "Male"
            out["pronouns_match_sex"] = pronouns[sex] >= pronouns[other]

    if admit and discharge:
        out["admission_before_discharge"] = admit <= discharge
        followups = [d for m in _DATE_RE.finditer(body.get("Followup Instructions", ""))
                     if (d := parse_date(m[0]))]
        if followups:
            out["followups_after_discharge"] = all(d >= discharge for d in followups)

    service = (header_value(text, "Service") or "").upper()
    if service in SERVICES:
        where = body.get("Discharge Diagnosis", text).lower()
        found = set().union(*(svc for diag, svc in _DIAGNOSES.items() if diag in where))
        if found:
            out["service_fits_diagnosis"] = service in found
    return out


def consistency_summary(results: Sequence[Mapping[str, bool | None]]) -> dict:
    """Per check: records checked, failed, unknown, and the failed fraction of those checked."""
    out: dict = {}
    for check in CHECKS:
        values = [r[check] for r in results]
        checked = sum(v is not None for v in values)
        failed = sum(v is False for v in values)
        out[check] = {"checked": checked, "failed": failed, "unknown": len(values) - checked,
                      "failed_fraction": round(failed / checked, 4) if checked else None}
    any_failed = sum(any(v is False for v in r.values()) for r in results)
    out["records_with_any_failure"] = round(any_failed / len(results), 4) if results else None
    return out


# --- utility: a CRF de-identification tagger -------------------------------------------------------------

def bio(text: str, spans: Sequence[Mapping]) -> tuple[list[str], list[str]]:
    """Word tokens of `text` and their BIO labels: a token is in a span when it starts inside it."""
    ordered = sorted((s["start"], s["end"], s["category"]) for s in spans)
    words: list[str] = []
    labels: list[str] = []
    k, inside = 0, -1
    for m in TOKEN_RE.finditer(text):
        start = m.start()
        while k < len(ordered) and ordered[k][1] <= start:
            k += 1
        if k < len(ordered) and ordered[k][0] <= start:
            labels.append(("I-" if inside == k else "B-") + ordered[k][2])
            inside = k
        else:
            labels.append("O")
            inside = -1
        words.append(m.group())
    return words, labels


def entities(labels: Sequence[str]) -> set[tuple[int, int, str]]:
    """(first token, end token, category) of each entity in a BIO sequence; a stray I- starts one (conlleval)."""
    out: set[tuple[int, int, str]] = set()
    start, kind = None, None
    for i, label in enumerate([*labels, "O"]):
        tag, _, cat = label.partition("-")
        if start is not None and (tag != "I" or cat != kind):
            out.add((start, i, kind))
            start, kind = None, None
        if tag == "B" or (tag == "I" and start is None):
            start, kind = i, cat
    return out


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 (exact span and category) per category and micro-averaged."""
    tp: Counter = Counter()
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    for g, p in zip(gold, predicted, strict=True):
        eg, ep = entities(g), entities(p)
        n_gold.update(e[2] for e in eg)
        n_pred.update(e[2] for e in ep)
        tp.update(e[2] for e in eg & ep)

    def prf(t: int, ng: int, np_: int) -> dict:
        p = t / np_ if np_ else 0.0
        r = t / ng if ng else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
                "support": ng}

    out = {"per_category": {c: prf(tp[c], n_gold[c], n_pred[c]) for c in sorted(n_gold | n_pred)}}
    out["micro"] = prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
    return out


def _shape(word: str) -> str:
    """Xxxx-style shape with runs cut at four, so 03 and 2021 differ but long words look alike."""
    s = re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", re.sub(r"\d", "d", word)))
    return re.sub(r"(.)\1{4,}", r"\1\1\1\1", s)


class _Features:
    """Classic token features (lowercase word, suffixes, shape, digit/title/upper flags) and the neighbours'
    word and shape, computed once per distinct word."""

    def __init__(self) -> None:
        self._own: dict[str, list[str]] = {}
        self._near: dict[tuple[str, int], list[str]] = {}

    def own(self, w: str) -> list[str]:
        if (f := self._own.get(w)) is None:
            low = w.lower()
            f = self._own[w] = ["bias", f"w={low}", f"s3={low[-3:]}", f"s2={low[-2:]}", f"sh={_shape(w)}",
                                f"digit={w.isdigit()}", f"title={w.istitle()}", f"upper={w.isupper()}"]
        return f

    def near(self, w: str, offset: int) -> list[str]:
        if (f := self._near.get((w, offset))) is None:
            f = self._near[(w, offset)] = [f"{offset}:w={w.lower()}", f"{offset}:sh={_shape(w)}",
                                           f"{offset}:title={w.istitle()}"]
        return f

    def __call__(self, words: Sequence[str]) -> list[list[str]]:
        out = []
        for i, w in enumerate(words):
            f = list(self.own(w))
            for offset in (-2, -1, 1, 2):
                j = i + offset
                f += self.near(words[j], offset) if 0 <= j < len(words) else [f"{offset}:edge"]
            out.append(f)
        return out


def tagger_scores(train: Sequence[tuple[str, Sequence[Mapping]]], test: Sequence[tuple[str, Sequence[Mapping]]],
                  max_iterations: int) -> dict:
    """Train a CRF tagger on (text, spans) records, tag the test records, and score it against their spans."""
    import pycrfsuite

    features = _Features()
    trainer = pycrfsuite.Trainer(verbose=False)
    tokens = 0
    for text, spans in train:
        words, labels = bio(text, spans)
        trainer.append(features(words), labels)
        tokens += len(words)
    trainer.set_params({"c1": 0.1, "c2": 0.01, "max_iterations": max_iterations,
                        "feature.possible_transitions": True})
    gold, predicted = [], []
    # The model holds the training words as features, which may be PHI: it lives in a private temporary
    # folder (mkdtemp is owner-only) and is gone when scoring ends.
    with tempfile.TemporaryDirectory(prefix="medgen-crf-") as tmp:
        path = str(Path(tmp) / "tagger.crfsuite")
        trainer.train(path)
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        try:
            for text, spans in test:
                words, labels = bio(text, spans)
                gold.append(labels)
                predicted.append(tagger.tag(features(words)) if words else [])
        finally:
            tagger.close()
    return {"train_records": len(train), "train_tokens": tokens, "test_records": len(test),
            **entity_scores(gold, predicted)}
