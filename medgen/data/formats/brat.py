"""BRAT standoff: a note's `NAME.txt` and its `NAME.ann`, whose `T` lines name an entity, its type and its character
offsets into the text (`T1<TAB>PATIENT 10 18<TAB>Ana Ruiz`). Types are the category table's: the i2b2 TYPE
(PATIENT, HOSPITAL, MEDICALRECORD, ...), the full name (NAME:PATIENT, written NAME-PATIENT or NAME_PATIENT as BRAT
allows) or the markup code. Other lines (attributes, relations, notes) carry nothing medgen reads. A
discontinuous entity (`0 5;10 15`) is refused: a PHI span is one run of text."""

from __future__ import annotations

import re
from pathlib import Path

from medgen.core.errors import DataError
from medgen.core.io import atomic_write_text
from medgen.data.formats.document import Document, checked, mismatch, read_text
from medgen.data.phi.categories import BY_CODE, BY_NAME, I2B2, category

_T_LINE = re.compile(r"^(T\d+)\t(\S+) ([\d ;]+)\t(.*)$")
_BY_TYPE = {c.type: c for c in I2B2}


def label_category(label: str) -> str | None:
    """The category a BRAT entity type names, or None."""
    key = label.strip().upper()
    for sep in ("-", "_"):
        if sep in key and key.replace(sep, ":", 1) in BY_NAME:
            return key.replace(sep, ":", 1)
    if key in BY_NAME:
        return key
    if key in _BY_TYPE:
        return _BY_TYPE[key].name
    return BY_CODE[label.lower()].name if label.lower() in BY_CODE else None


def read_pair(txt: Path, ann: Path) -> Document:
    text = read_text(txt)
    spans, problems = [], []
    for n, line in enumerate(read_text(ann).splitlines(), 1):
        if not line.startswith("T"):
            continue
        where = f"{ann}:{n}"
        m = _T_LINE.match(line)
        if m is None:
            problems.append(f"{where}: expected 'T<n><TAB><type> <start> <end><TAB><text>', got a line that is not")
            continue
        tag, label, offsets, value = m.groups()
        if ";" in offsets:
            problems.append(f"{where}: {tag} is a discontinuous span ({offsets}); medgen reads one run of text per "
                            "PHI value: split it into one entity per run")
            continue
        cat = label_category(label)
        if cat is None:
            problems.append(f"{where}: {tag}: unknown type {label!r}; expected an i2b2 2014 TYPE such as PATIENT, "
                            "DOCTOR, HOSPITAL, DATE, PHONE, MEDICALRECORD (or ELEMENT-TYPE)")
            continue
        start, end = (int(x) for x in offsets.split())
        if text[start:end] != value:
            problems.append(mismatch(where, tag, start, end, value, text))
            continue
        spans.append({"start": start, "end": end, "category": cat, "text": value, "id": tag})
    if problems:
        raise DataError(problems)
    return checked(Document(txt.stem, text, spans), str(ann))


def read(folder: Path) -> list[Document]:
    anns = sorted(folder.glob("*.ann"))
    if not anns:
        raise DataError([f"{folder}: no .ann files; expected BRAT standoff pairs NAME.txt and NAME.ann"])
    missing = [f"{a}: no {a.with_suffix('.txt').name} beside it; every .ann needs the .txt it annotates"
               for a in anns if not a.with_suffix(".txt").is_file()]
    if missing:
        raise DataError(missing)
    return [read_pair(a.with_suffix(".txt"), a) for a in anns]


def write(docs: list[Document], folder: Path) -> dict:
    types = set()
    for doc in docs:
        lines = []
        for s in sorted(doc.spans, key=lambda s: s["start"]):
            cat = category(s["category"])
            types.add(cat.type)
            lines.append(f"T{len(lines) + 1}\t{cat.type} {s['start']} {s['end']}\t{s['text']}\n")
        atomic_write_text(folder / f"{doc.id}.txt", doc.text)
        atomic_write_text(folder / f"{doc.id}.ann", "".join(lines))
    # BRAT's own configuration, so the folder opens in its annotation tool as it is.
    atomic_write_text(folder / "annotation.conf", "[entities]\n" + "".join(f"{t}\n" for t in sorted(types))
                      + "[relations]\n[events]\n[attributes]\n")
    return {"documents": len(docs), "entity_types": len(types)}
