"""Token/BIO sequences: word tokens (a word or one punctuation mark) with B-/I-/O labels of the category table's
categories, written as CoNLL text (`bio`) or a Hugging Face `datasets` DatasetDict saved with `save_to_disk`
(`hf`: columns `id`, `tokens` and `ner_tags`, a ClassLabel over every category's B- and I- tags, ready for a
token-classification Trainer)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from medgen.core.io import atomic_write_text
from medgen.data.formats.document import Document
from medgen.data.phi.categories import CATEGORIES

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# Every tag, in a fixed order: the ClassLabel ids do not depend on what one corpus happens to hold.
LABELS = ("O", *(f"{p}-{c.name}" for c in CATEGORIES for p in ("B", "I")))
CONLL_FILE = "corpus.bio"


def tokens(text: str, bounds: Sequence[int] = ()) -> list[tuple[int, int]]:
    """(start, end) of each word token; with `bounds` (span edges), no token crosses one."""
    edges = sorted({0, len(text), *bounds})
    return [(m.start(), m.end()) for a, b in zip(edges, edges[1:]) for m in TOKEN_RE.finditer(text, a, b)]


def bio(text: str, spans: Sequence[Mapping], align: bool = False) -> tuple[list[str], list[str]]:
    """Word tokens of `text` and their BIO labels: a token is in a span when it starts inside it. With `align`
    (a training corpus: the spans are known), tokens are also cut at span edges, so every span is whole tokens;
    without it (a tagger's test input), tokens come from the text alone."""
    ordered = sorted((s["start"], s["end"], s["category"]) for s in spans)
    bounds = [x for s, e, _ in ordered for x in (s, e)] if align else ()
    words: list[str] = []
    labels: list[str] = []
    k, inside = 0, -1
    for start, end in tokens(text, bounds):
        while k < len(ordered) and ordered[k][1] <= start:
            k += 1
        if k < len(ordered) and ordered[k][0] <= start:
            labels.append(("I-" if inside == k else "B-") + ordered[k][2])
            inside = k
        else:
            labels.append("O")
            inside = -1
        words.append(text[start:end])
    return words, labels


def write_conll(docs: list[Document], folder: Path) -> dict:
    """One token and its tag per line, a `# id = ...` line before each document and a blank line after it."""
    parts = []
    n = 0
    for d in docs:
        words, labels = bio(d.text, d.spans, align=True)
        n += len(words)
        parts.append(f"# id = {d.id}\n" + "".join(f"{w}\t{tag}\n" for w, tag in zip(words, labels)) + "\n")
    atomic_write_text(folder / CONLL_FILE, "".join(parts))
    return {"documents": len(docs), "tokens": n}


def write_hf(docs: list[Document], folder: Path) -> dict:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    features = Features({"id": Value("string"), "tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=list(LABELS)))})
    rows = {"id": [], "tokens": [], "ner_tags": []}
    index = {label: i for i, label in enumerate(LABELS)}
    for d in docs:
        words, labels = bio(d.text, d.spans, align=True)
        rows["id"].append(d.id)
        rows["tokens"].append(words)
        rows["ner_tags"].append([index[label] for label in labels])
    DatasetDict({"train": Dataset.from_dict(rows, features=features)}).save_to_disk(str(folder))
    return {"documents": len(docs), "tokens": sum(len(t) for t in rows["tokens"]), "labels": len(LABELS)}
