"""A document as every format reads and writes it: its text, its PHI spans (medgen categories), its patient."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from medgen.core.errors import DataError


@dataclass
class Document:
    id: str  # the file's stem, or the record's id
    text: str
    spans: list[dict]  # start, end, category (the category table's name), text; in text order
    patient: str | None = None  # who the note is about, where the source says (i2b2 names files NNN-NN)
    meta: dict = field(default_factory=dict)  # sex and service, where the source carries them


def read_text(path: Path) -> str:
    """A text file as UTF-8, or one line naming the file, the line and the byte that is not."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError([f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); re-encode the file as UTF-8"]) \
            from None


def checked(doc: Document, where: str) -> Document:
    """`doc` with its spans sorted; every span inside the text, not empty and not overlapping another."""
    doc.spans.sort(key=lambda s: (s["start"], s["end"]))
    problems = []
    end = 0
    for s in doc.spans:
        tag = s.get("id", "a tag")
        if not 0 <= s["start"] < s["end"] <= len(doc.text):
            problems.append(f"{where}: {tag} at {s['start']}-{s['end']}: expected offsets inside the text "
                            f"(0-{len(doc.text)}), got them outside")
        elif s["start"] < end:
            problems.append(f"{where}: {tag} at {s['start']}-{s['end']} overlaps the tag ending at {end}; medgen reads "
                            "one category per character: remove or shorten one of them")
        end = max(end, s["end"])
    if problems:
        raise DataError(problems)
    return doc


def mismatch(where: str, tag: str, start: int, end: int, expected: str, text: str) -> str:
    return (f"{where}: {tag} at {start}-{end}: expected its text {expected[:40]!r}, got {text[start:end][:40]!r} at "
            "those offsets; fix the offsets or the tag's text")


_PATIENT_RE = re.compile(r"^(\d+)-\d+$")


def i2b2_patient(stem: str) -> str | None:
    """i2b2 names a note NNN-NN: patient NNN, record NN."""
    m = _PATIENT_RE.match(stem)
    return m.group(1) if m else None
