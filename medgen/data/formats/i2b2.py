"""i2b2 2014 de-identification XML: `<deIdi2b2><TEXT><![CDATA[...]]></TEXT><TAGS>` with one element per PHI, named
by its category (NAME, DATE, LOCATION, ...) and carrying `id`, `start`, `end` (character offsets into the TEXT),
`text` and `TYPE` (PATIENT, HOSPITAL, MEDICALRECORD, ...). Files are named NNN-NN.xml (patient, record)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path

from medgen.core.errors import DataError
from medgen.core.io import atomic_write_text
from medgen.data.formats.document import Document, checked, i2b2_patient, mismatch, read_text
from medgen.data.phi.categories import category, i2b2_category

SUFFIX = ".xml"


def read_file(path: Path) -> Document:
    text = read_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        line, column = e.position
        raise DataError([f"{path}:{line}: malformed XML at column {column} ({str(e).split(':')[0]}); expected an "
                         "i2b2 2014 file, <deIdi2b2><TEXT><![CDATA[...]]></TEXT><TAGS>...</TAGS></deIdi2b2>"]) from None
    body = root.find("TEXT")
    if root.tag != "deIdi2b2" or body is None:
        raise DataError([f"{path}: expected <deIdi2b2> with a <TEXT> element, got <{root.tag}>"
                         + ("" if root.tag != "deIdi2b2" else " without <TEXT>")])
    note = body.text or ""
    spans, problems = [], []
    for i, tag in enumerate(root.find("TAGS") if root.find("TAGS") is not None else ()):
        tag_id = tag.get("id") or f"tag {i + 1}"
        where = f"{path}"
        try:
            cat = i2b2_category(tag.tag, tag.get("TYPE", ""))
        except KeyError as e:
            problems.append(f"{where}: {tag_id}: unknown TYPE {e.args[0]}")
            continue
        try:
            start, end = int(tag.get("start", "")), int(tag.get("end", ""))
        except ValueError:
            problems.append(f"{where}: {tag_id}: expected whole-number start and end, got {tag.get('start')!r} and "
                            f"{tag.get('end')!r}")
            continue
        value = tag.get("text")
        if value is None or note[start:end] != value:
            problems.append(mismatch(where, tag_id, start, end, value or "", note))
            continue
        spans.append({"start": start, "end": end, "category": cat.name, "text": value, "id": tag_id})
    if problems:
        raise DataError(problems)
    return checked(Document(path.stem, note, spans, i2b2_patient(path.stem)), str(path))


def read(folder: Path) -> list[Document]:
    files = sorted(folder.glob(f"*{SUFFIX}"))
    if not files:
        raise DataError([f"{folder}: no {SUFFIX} files; expected i2b2 2014 XML notes (NNN-NN.xml)"])
    return [read_file(f) for f in files]


def render(doc: Document) -> tuple[str, int]:
    """The document as i2b2 XML, and how many spans it left out (medgen's own TIME and OTHER are no i2b2 tags)."""
    if "]]>" in doc.text:  # would end the CDATA section: split it there
        note = doc.text.replace("]]>", "]]]]><![CDATA[>")
    else:
        note = doc.text
    tags, skipped = [], 0
    for s in sorted(doc.spans, key=lambda s: s["start"]):
        cat = category(s["category"])
        if not cat.i2b2:
            skipped += 1
            continue
        tags.append(f'<{cat.element} id="P{len(tags)}" start="{s["start"]}" end="{s["end"]}" '
                    f'text="{html.escape(s["text"], quote=True)}" TYPE="{cat.type}" comment="" />')
    return ('<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n<TEXT><![CDATA[' + note + "]]></TEXT>\n<TAGS>\n"
            + "".join(t + "\n" for t in tags) + "</TAGS>\n</deIdi2b2>\n"), skipped


def write(docs: list[Document], folder: Path) -> dict:
    skipped = 0
    for doc in docs:
        xml, n = render(doc)
        skipped += n
        atomic_write_text(folder / f"{doc.id}{SUFFIX}", xml)
    return {"documents": len(docs), "spans_not_in_i2b2": skipped}
