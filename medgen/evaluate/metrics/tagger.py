"""Utility: a CRF de-identification tagger (python-crfsuite, classic token features), BIO labels and
entity-level scores."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from medgen.data.formats.bio import bio


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
    s = re.sub(r"\d", "d", re.sub(r"[a-z]", "x", re.sub(r"[A-Z]", "X", word)))
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


@contextlib.contextmanager
def trained_tagger(train: Sequence[tuple[str, Sequence[Mapping]]], max_iterations: int
                   ) -> Iterator[tuple[Callable[[list[str]], list[str]], int]]:
    """A CRF tagger trained on (text, spans) records: (its predict function over word tokens, training tokens).

    The model holds the training words as features, which may be PHI: it lives in a private temporary folder
    (mkdtemp is owner-only) and is gone when the block ends."""
    import pycrfsuite

    features = _Features()
    trainer = pycrfsuite.Trainer(verbose=False)
    tokens = 0
    for text, spans in train:
        words, labels = bio(text, spans, align=True)
        trainer.append(features(words), labels)
        tokens += len(words)
    trainer.set_params({"c1": 0.1, "c2": 0.01, "max_iterations": max_iterations,
                        "feature.possible_transitions": True})
    with tempfile.TemporaryDirectory(prefix="medgen-crf-") as tmp:
        path = str(Path(tmp) / "tagger.crfsuite")
        trainer.train(path)
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
        try:
            yield (lambda words: tagger.tag(features(words)) if words else []), tokens
        finally:
            tagger.close()


def tagger_scores(train: Sequence[tuple[str, Sequence[Mapping]]], test: Sequence[tuple[str, Sequence[Mapping]]],
                  max_iterations: int) -> dict:
    """Train a CRF tagger on (text, spans) records, tag the test records, and score it against their spans."""
    gold, predicted = [], []
    with trained_tagger(train, max_iterations) as (predict, tokens):
        for text, spans in test:
            words, labels = bio(text, spans)
            gold.append(labels)
            predicted.append(predict(words))
    return {"train_records": len(train), "train_tokens": tokens, "test_records": len(test),
            **entity_scores(gold, predicted)}
