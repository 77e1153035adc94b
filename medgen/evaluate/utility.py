"""De-identification utility on notes the engine never wrote: CRF taggers trained on the released corpus, on the
training split, and on both, each tested on every external gold set (`evaluate.utility_test_sets`: folders of i2b2
XML, BRAT or medgen JSONL; `handwritten` is the set shipped in the package).

Scores are entity-level, strict (exact span and category) and partial (overlapping span, half credit), from
nervaluate's definitions; F2 weighs recall four times precision, since a de-identification tool is judged on what
it misses; per category, micro and macro; token-level PHI recall (the fraction of gold PHI tokens tagged as any
PHI: what a tool would not leak). Every figure carries a 95% bootstrap interval over notes. Figures only: no note
text leaves this module.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from medgen.core.config import EvaluateConfig
from medgen.core.errors import ConfigError
from medgen.data.formats import Document, read
from medgen.data.formats.bio import bio
from medgen.data.phi.categories import CATEGORIES
from medgen.evaluate.corpus import Corpus, sample
from medgen.evaluate.metrics.tagger import trained_tagger

BUILTIN = "handwritten"
TAGGERS = ("synthetic", "train", "both")
_COUNTS = ("correct", "incorrect", "partial", "missed", "spurious")
_TAGS = [c.name for c in CATEGORIES]


def test_set_folder(name: str) -> Path:
    if name == BUILTIN:
        return Path(str(resources.files("medgen.evaluate").joinpath("testsets", BUILTIN)))
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ConfigError([f"evaluate.utility_test_sets: {name!r}: no such folder; expected '{BUILTIN}' or a folder "
                           "of annotated notes (i2b2 XML, BRAT, medgen JSONL)"], "evaluate.utility_test_sets")
    return folder


def _counts(gold: list[str], predicted: list[str]) -> np.ndarray:
    """[strategy (strict, partial), category, count] of one note, nervaluate's counts."""
    from nervaluate import Evaluator

    out = np.zeros((2, len(_TAGS), len(_COUNTS)), dtype=np.int64)
    if not any(label != "O" for label in gold + predicted):
        return out
    results = Evaluator([gold], [predicted], tags=_TAGS, loader="list").evaluate()["entities"]
    for tag, by in results.items():
        for i, strategy in enumerate(("strict", "partial")):
            r = by[strategy]
            out[i, _TAGS.index(tag)] = [getattr(r, k) for k in _COUNTS]
    return out


def _prf(c: np.ndarray, partial: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1, F2 from counts summed over notes (last axis: _COUNTS)."""
    correct, incorrect, part, missed, spurious = (c[..., i].astype(float) for i in range(5))
    hit = correct + (0.5 * part if partial else 0.0)
    actual, possible = correct + incorrect + part + spurious, correct + incorrect + part + missed
    p = np.divide(hit, actual, out=np.zeros_like(hit), where=actual > 0)
    r = np.divide(hit, possible, out=np.zeros_like(hit), where=possible > 0)
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    f2 = np.divide(5 * p * r, 4 * p + r, out=np.zeros_like(p), where=(4 * p + r) > 0)
    return p, r, f1, f2


def _interval(values: np.ndarray) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def score(per_note: np.ndarray, tokens: np.ndarray, resamples: int, seed: int) -> dict:
    """Every figure of one tagger on one test set, with bootstrap intervals over notes.

    `per_note`: [note, strategy, category, count]; `tokens`: [note, (gold PHI tokens, of them tagged as PHI)]."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_note), size=(resamples, len(per_note)))
    total, boot = per_note.sum(axis=0), per_note[draws].sum(axis=1)  # [strategy, cat, k], [B, strategy, cat, k]
    present = total[0][:, [0, 1, 3]].sum(axis=1) > 0  # categories with gold entities (correct+incorrect+missed)
    out: dict = {}
    for i, strategy in enumerate(("strict", "partial")):
        micro = _prf(total[i].sum(axis=0), strategy == "partial")
        micro_b = _prf(boot[:, i].sum(axis=1), strategy == "partial")
        per = _prf(total[i], strategy == "partial")
        per_b = _prf(boot[:, i], strategy == "partial")
        macro_b = per_b[2][:, present].mean(axis=1) if present.any() else np.zeros(resamples)
        out[strategy] = {
            "micro": {name: round(float(v), 4) for name, v in zip(("precision", "recall", "f1", "f2"), micro)}
            | {f"{name}_ci": _interval(v) for name, v in zip(("precision", "recall", "f1", "f2"), micro_b)},
            "macro_f1": round(float(per[2][present].mean()), 4) if present.any() else None,
            "macro_f1_ci": _interval(macro_b),
            "per_category": {_TAGS[j]: {"precision": round(float(per[0][j]), 4), "recall": round(float(per[1][j]), 4),
                                        "f1": round(float(per[2][j]), 4), "f2": round(float(per[3][j]), 4),
                                        "f1_ci": _interval(per_b[2][:, j]),
                                        "support": int(total[i, j, [0, 1, 2, 3]].sum())}
                             for j in np.flatnonzero(present | (total[i, :, 4] > 0))},
        }
    caught = tokens[draws].sum(axis=1)
    out["token_recall"] = round(float(tokens[:, 1].sum() / tokens[:, 0].sum()), 4) if tokens[:, 0].sum() else None
    out["token_recall_ci"] = _interval(np.divide(caught[:, 1], caught[:, 0], out=np.zeros(resamples),
                                                 where=caught[:, 0] > 0))
    return out


def _tested(predict, docs: list[Document]) -> tuple[np.ndarray, np.ndarray]:
    per_note, tokens = [], []
    for d in docs:
        words, gold = bio(d.text, d.spans)
        pred = predict(words)
        per_note.append(_counts(gold, pred))
        phi = [g != "O" for g in gold]
        tokens.append((sum(phi), sum(p != "O" for p, g in zip(pred, phi) if g)))
    return np.stack(per_note), np.array(tokens, dtype=np.int64)


def documents(records: list[tuple[str, list[dict]]], prefix: str = "r") -> list[Document]:
    return [Document(f"{prefix}{i}", text, list(spans)) for i, (text, spans) in enumerate(records)]


def handwritten() -> list[Document]:
    """The hand-written notes shipped with medgen (the real-notes reference)."""
    return read(test_set_folder(BUILTIN))


def tested(train: list[tuple[str, list[dict]]], test: list[Document], ev: EvaluateConfig
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """A CRF trained on `train` (text, spans) records, run on `test`: its per-note counts, its per-note PHI token
    counts, and its training tokens."""
    with trained_tagger(train, ev.crf_max_iterations) as (predict, tokens):
        per_note, tok = _tested(predict, test)
    return per_note, tok, tokens


def scored(train: list[tuple[str, list[dict]]], test: list[Document], ev: EvaluateConfig) -> dict:
    """A CRF trained on `train` (text, spans) records, scored on `test` with every figure and its interval."""
    per_note, tok, tokens = tested(train, test, ev)
    return {"train_tokens": tokens, "notes": len(test), **score(per_note, tok, ev.utility_bootstrap, ev.seed)}


def difference(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> dict:
    """Strict micro F1 of tagger b minus tagger a on the same notes (per-note counts of each), with a paired
    bootstrap interval: both scored on the same resampled notes, so the notes' own spread cancels."""
    draws = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    f1 = [_prf(c[draws].sum(axis=1)[:, 0].sum(axis=1), partial=False)[2] for c in (a, b)]
    whole = [_prf(c[:, 0].sum(axis=(0, 1)), partial=False)[2] for c in (a, b)]
    return {"f1_difference": round(float(whole[1] - whole[0]), 4), "f1_difference_ci": _interval(f1[1] - f1[0])}


def patients_out(docs: list[Document], ev: EvaluateConfig, folds: int = 5) -> dict:
    """The real-notes reference: a CRF trained on the other patients' notes, tested on each held-out patient's
    (`folds` folds of whole patients), every note scored once; figures pooled over the folds."""
    patients = sorted({d.patient or d.id for d in docs})
    order = [patients[i] for i in np.random.default_rng(ev.seed).permutation(len(patients))]
    fold_of = {p: i % folds for i, p in enumerate(order)}
    per_note, tokens, trained = [], [], 0
    for k in range(folds):
        held = [d for d in docs if fold_of[d.patient or d.id] == k]
        if not held:
            continue
        with trained_tagger([(d.text, d.spans) for d in docs if fold_of[d.patient or d.id] != k],
                            ev.crf_max_iterations) as (predict, n):
            notes, tok = _tested(predict, held)
        per_note.append(notes)
        tokens.append(tok)
        trained = max(trained, n)
    return {"train_tokens": trained, "notes": len(docs), "folds": folds,
            **score(np.concatenate(per_note), np.concatenate(tokens), ev.utility_bootstrap, ev.seed)}


def _cached(notes: list[Document], ev: EvaluateConfig) -> dict:
    """`patients_out` of the shipped notes: the same for the same notes, settings and scoring code, so it is kept
    (figures only) in medgen's cache and computed once per machine."""
    import hashlib
    import json

    import sys

    from medgen.core.io import atomic_write_text
    from medgen.model.loading import cache_root

    code = b"".join(Path(sys.modules[f.__module__].__file__).read_bytes() for f in (trained_tagger, bio, _cached))
    key = hashlib.sha256(json.dumps([[d.id, d.text, d.spans] for d in notes], sort_keys=True).encode() + code
                         + f"{ev.crf_max_iterations}/{ev.utility_bootstrap}/{ev.seed}".encode()).hexdigest()[:16]
    path = cache_root() / "utility" / f"handwritten-patients-out-{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    reference = patients_out(notes, ev)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(reference))
    except OSError:
        pass  # a read-only cache: computed again next time
    return reference


def difficulty(corpus: list[tuple[str, list[dict]]], ev: EvaluateConfig) -> dict | None:
    """How hard the corpus is to de-identify, against real notes: a CRF trained on the shipped hand-written notes,
    scored on the corpus and, leave-patients-out, on hand-written notes it never saw. `gap` (strict micro F1
    points) is how much the corpus flatters a tool tested on it; None without labelled records."""
    if not corpus:
        return None
    notes = handwritten()
    n = min(len(corpus), ev.utility_max_records)
    test = documents([corpus[i] for i in sample(len(corpus), n, ev.seed)])
    on_corpus = scored([(d.text, d.spans) for d in notes], test, ev)
    reference = _cached(notes, ev)
    gap = on_corpus["strict"]["micro"]["f1"] - reference["strict"]["micro"]["f1"]
    return {"test_set": BUILTIN, "records": n, "corpus": on_corpus, "reference": reference, "gap": round(gap, 4)}


def external_utility(generated: Corpus, train: Corpus, ev: EvaluateConfig) -> dict | None:
    """Per test set: the three taggers' scores, and the ratio the gate reads (strict micro F1 of the tagger trained
    on the released corpus over that of the tagger trained on the training split). None without labels."""
    if generated.spans is None or train.spans is None or not ev.utility_test_sets:
        return None
    n = min(len(generated), len(train), ev.utility_max_records)
    if n == 0:
        return None
    gen = [(generated.texts[i], generated.spans[i]) for i in sample(len(generated), n, ev.seed)]
    tr = [(train.texts[i], train.spans[i]) for i in sample(len(train), n, ev.seed)]
    sets = {name: read(test_set_folder(name)) for name in ev.utility_test_sets}
    out: dict = {"records_per_tagger": n, "test_sets": {}}
    results: dict[str, dict[str, dict]] = {name: {} for name in sets}
    for tagger, records in (("synthetic", gen), ("train", tr), ("both", gen + tr)):
        with trained_tagger(records, ev.crf_max_iterations) as (predict, tokens):
            for name, docs in sets.items():
                per_note, tok = _tested(predict, docs)
                results[name][tagger] = {"train_tokens": tokens, **score(per_note, tok, ev.utility_bootstrap,
                                                                         ev.seed)}
    for name, docs in sets.items():
        by = results[name]
        syn, base = by["synthetic"]["strict"]["micro"]["f1"], by["train"]["strict"]["micro"]["f1"]
        out["test_sets"][name] = {"notes": len(docs), "entities": sum(len(d.spans) for d in docs), **by,
                                  "ratio": round(syn / base, 4) if base else None}
    ratios = [s["ratio"] for s in out["test_sets"].values() if s["ratio"] is not None]
    out["ratio"] = round(float(np.mean(ratios)), 4) if ratios else None
    return out
