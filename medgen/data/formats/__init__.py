"""Annotated notes in the formats de-identification work uses, read and written: i2b2 2014 XML (`i2b2`), BRAT
standoff (`brat`), medgen's own JSONL with its `.phi.jsonl` (`jsonl`), and token/BIO sequences as CoNLL text or a
Hugging Face `datasets` DatasetDict (`bio`, writers only). Every reader verifies each tag against the text at its
offsets and maps categories through the one category table (medgen.data.phi.categories).

`read(path)` reads a folder in whichever format it holds; `WRITERS` maps a format name to its writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from medgen.core.constants import RECORDS_FILE
from medgen.core.errors import DataError
from medgen.data.formats import bio, brat, i2b2, jsonl
from medgen.data.formats.document import Document

READERS: dict[str, Callable[[Path], list[Document]]] = {"i2b2": i2b2.read, "brat": brat.read, "jsonl": jsonl.read}
WRITERS: dict[str, Callable[[list[Document], Path], dict]] = {
    "i2b2": i2b2.write, "brat": brat.write, "jsonl": jsonl.write, "bio": bio.write_conll, "hf": bio.write_hf}


def detect(folder: Path) -> str:
    """The format a folder holds: i2b2 XML, BRAT pairs or medgen JSONL."""
    if not folder.is_dir():
        raise DataError([f"{folder}: no such folder; expected a folder of annotated notes (i2b2 XML, BRAT or "
                         "medgen JSONL)"])
    if (folder / RECORDS_FILE).is_file():
        return "jsonl"
    if any(folder.glob("*.ann")):
        return "brat"
    if any(folder.glob("*.xml")):
        return "i2b2"
    raise DataError([f"{folder}: no annotated notes found; expected *.xml (i2b2 2014), *.txt with *.ann (BRAT) or "
                     f"{RECORDS_FILE} with its .phi.jsonl (medgen)"])


def read(folder: Path, format: str | None = None) -> list[Document]:
    """Every note of `folder`, its tags checked against the text; `format` as detected when None."""
    return READERS[format or detect(folder)](folder)


__all__ = ["READERS", "WRITERS", "Document", "detect", "read"]
