"""Annotated notes as training data: i2b2 2014 XML or BRAT standoff, every tag a PHI span of the training target.

Real notes with surrogates are the best training data the generator can get. Each note becomes one example: its
prompt's Sex from the note's `Sex:` line or, failing that, its titles and pronouns (a note that says neither gets
one drawn from its name, counted: with no cue in the text, the prompt teaches nothing either way); its Service from a `Service:` line, else `data.default_service`. With `data.surrogates:
fresh` every tagged value is replaced by a fresh surrogate first (medgen.data.phi.surrogates), so a real note's
PHI never reaches the model. Splits are by patient: i2b2's file names say it (NNN-NN: patient NNN), or
`data.patient_pattern`; otherwise each note is its own patient.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from pathlib import Path

from medgen.core.config import DataConfig
from medgen.core.constants import INSTRUCTION, SEXES
from medgen.core.errors import DataError
from medgen.data.dataset import Example
from medgen.data.formats import Document, read
from medgen.data.markup import CLOSE, OPEN
from medgen.data.phi.surrogates import Stats, surrogate
from medgen.data.prompts import make_input
from medgen.data.record_format import header_value

_FEMALE = re.compile(r"\b(?:she|her|hers|herself|Ms|Mrs|Miss|woman|female)\b|\b\d{1,3}\s?F\b", re.IGNORECASE)
_MALE = re.compile(r"\b(?:he|him|his|himself|Mr|man|male)\b|\b\d{1,3}\s?M\b", re.IGNORECASE)


def infer_sex(text: str) -> tuple[str | None, str]:
    """(Sex, how it was found): the note's `Sex:` line, else the clear majority of its titles and pronouns."""
    stated = (header_value(text, "Sex") or "")[:1].upper()
    if stated in ("M", "F"):
        return ("Male" if stated == "M" else "Female"), "header"
    female, male = len(_FEMALE.findall(text)), len(_MALE.findall(text))
    if female + male >= 2 and max(female, male) >= 2 * min(female, male) + 1:
        return ("Female" if female > male else "Male"), "text"
    return None, "not stated"


def _trainable(doc: Document) -> list[dict]:
    """The note's spans as the inline markup can carry them: a span across a line break becomes one span per
    line, a trailing ']' is left outside its span."""
    out = []
    for s in doc.spans:
        pos = s["start"]
        for piece in s["text"].split("\n"):
            start, end = pos, pos + len(piece)
            while end > start and doc.text[end - 1] in "] \t":
                end -= 1
            while start < end and doc.text[start] in " \t":
                start += 1
            if end > start:
                out.append({"start": start, "end": end, "category": s["category"], "text": doc.text[start:end]})
            pos += len(piece) + 1
    return out


def _patient(doc: Document, pattern: str | None) -> str:
    if pattern:
        m = re.search(pattern, doc.id)
        if m and m.group(1):
            return m.group(1)
    return doc.patient or doc.id


def annotated_examples(dc: DataConfig) -> tuple[list[Example], dict]:
    folder = Path(dc.path).expanduser()
    docs = read(folder, dc.source)
    examples: list[Example] = []
    skipped: dict[str, list[str]] = {}
    found: Counter = Counter()
    stats = Stats()
    for doc in docs:
        if OPEN in doc.text or CLOSE in doc.text:
            skipped.setdefault(f"holds {OPEN!r} or {CLOSE!r}, the markup's brackets", []).append(doc.id)
            continue
        sex, how = infer_sex(doc.text)
        if doc.meta.get("sex") in SEXES:
            sex, how = doc.meta["sex"], "the source"
        elif sex is None:
            sex, how = SEXES[zlib.crc32(doc.id.encode()) % 2], "the note's name (not stated)"
        found[f"sex from {how}"] += 1
        service = (doc.meta.get("service") or header_value(doc.text, "Service") or "").strip().upper()
        found["service from the note" if service else "service from data.default_service"] += 1
        text, spans = doc.text, _trainable(doc)
        if dc.surrogates == "fresh":
            text, spans, done = surrogate(text, spans, f"{dc.seed}/{doc.id}", sex=sex)
            stats.add(done)
        examples.append(Example(INSTRUCTION, make_input(sex, service or dc.default_service.upper()), text,
                                _patient(doc, dc.patient_pattern), spans))
    if len(examples) < 3:
        raise DataError([f"{folder}: {len(examples)} usable note(s) of {len(docs)}; expected at least 3 (skipped: "
                         + "; ".join(f"{k}: {len(v)}" for k, v in skipped.items()) + ")"])
    report = {
        "format": dc.source, "notes": len(examples), "documents": len(docs),
        "skipped": {k: {"count": len(v), "lines": v[:50]} for k, v in skipped.items()},
        "categories": dict(Counter(s["category"] for ex in examples for s in ex.spans or []).most_common()),
        "found": dict(found), "surrogates": dc.surrogates,
        **({"surrogate_stats": stats.as_dict()} if dc.surrogates == "fresh" else {}),
    }
    return examples, report
