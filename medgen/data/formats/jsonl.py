"""medgen's own JSONL: `records.jsonl` (id, text, and sex and service where known) and `records.phi.jsonl` (id and
spans), as generate writes its corpus."""

from __future__ import annotations

import json
from pathlib import Path

from medgen.core.constants import CORPUS_PHI_FILE, RECORDS_FILE
from medgen.core.errors import DataError
from medgen.core.io import atomic_write_text
from medgen.data.formats.document import Document, checked, mismatch
from medgen.data.phi.categories import category
from medgen.data.splits import read_jsonl


def read(folder: Path) -> list[Document]:
    rows = read_jsonl(folder / RECORDS_FILE, ("id", "text"))
    phi_path = folder / CORPUS_PHI_FILE
    spans = {p["id"]: p["spans"] for p in read_jsonl(phi_path, ("id", "spans"))}
    docs, problems = [], []
    for n, row in enumerate(rows, 1):
        where = f"{phi_path} (id {row['id']})"
        if row["id"] not in spans:
            problems.append(f"{folder / RECORDS_FILE}:{n}: no spans in {CORPUS_PHI_FILE} for id {row['id']!r}")
            continue
        kept = []
        for i, s in enumerate(spans[row["id"]]):
            try:
                cat = category(s["category"]).name
            except KeyError as e:
                problems.append(f"{where}: span {i}: {e.args[0]}")
                continue
            if row["text"][s["start"]:s["end"]] != s["text"]:
                problems.append(mismatch(where, f"span {i}", s["start"], s["end"], s["text"], row["text"]))
                continue
            kept.append({**s, "category": cat})
        docs.append(Document(str(row["id"]), row["text"], kept, row.get("patient"),
                             {k: row[k] for k in ("sex", "service") if k in row}))
    if problems:
        raise DataError(problems)
    return [checked(d, str(folder)) for d in docs]


def write(docs: list[Document], folder: Path) -> dict:
    atomic_write_text(folder / RECORDS_FILE, "".join(
        json.dumps({"id": d.id, **d.meta, "text": d.text}, ensure_ascii=False) + "\n" for d in docs))
    atomic_write_text(folder / CORPUS_PHI_FILE, "".join(
        json.dumps({"index": i, "id": d.id, "spans": [{k: s[k] for k in ("start", "end", "category", "text")}
                                                      for s in d.spans]}, ensure_ascii=False) + "\n"
        for i, d in enumerate(docs)))
    return {"documents": len(docs)}
