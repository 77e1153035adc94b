"""MIMIC-IV-Note import: every `___` in a discharge note becomes a typed, realistic surrogate.

A mask's type is read from its context: the text before and after it (across the note's hard line wraps)
and the section it sits in. `RULES` is the table, first match wins; docs/MIMIC_RULES.md documents it.
Masks joined by a space, hyphen or slash ("Dr. ___ ___", "___-___") are one group and get one surrogate.

One identity per note (Faker, seeded by note id and seed). Dates keep clinical order: past history
before admission, results and events within the stay, follow-ups after discharge, and a DOB that gives
the stated age. Surrogates read naturally: an article before a person's name is dropped, "a"/"an" agrees
with the surrogate, and a surrogate that starts a sentence is capitalised.

Masks that hide no PHI in the i2b2 sense (a whole masked section, lab values, an eponym the de-identifier
took for a name, a count) get a non-PHI filler or a typed placeholder (`non_phi`), and no span.
Every PHI surrogate is a span. The report counts masks per rule and the fraction resolved by a specific
rule rather than the fallback.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from faker import Faker

from medgen.core.errors import DataError, is_transient
from medgen.data.mimic.fixups import fill
from medgen.data.mimic.report import ImportReport
from medgen.data.mimic.rules import MASK_RE
from medgen.data.mimic.surrogates import Identity
from medgen.data.record_format import header_value

NOTE_COLUMNS = ("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text")
# csv's default field limit (131,072 characters) is below the longest discharge notes; 16 MiB is far above
# them, so only a quote that never closes (swallowing the rest of the file) reaches it.
CSV_FIELD_LIMIT = 1 << 24
_GZIP_MAGIC, _ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it

# ---------------------------------------------------------------------------------------------- reading

@dataclass
class Note:
    note_id: str
    subject_id: str
    sex: str
    service: str
    text: str
    spans: list[dict] = field(default_factory=list)
    non_phi: list[dict] = field(default_factory=list)


def _header(text: str, name: str) -> str | None:
    """A header field's value; a masked one counts as absent, so the tables decide or the note is skipped."""
    value = header_value(text, name)
    return value if value and not MASK_RE.search(value) else None


def _open_text(path: Path, what: str) -> io.TextIOWrapper:
    """`path` as UTF-8 text (a BOM is dropped), gunzipped when its first bytes say gzip, whatever its name."""
    if path.is_dir():
        raise DataError([f"{path}: is a directory; expected {what}"])
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        raw = gzip.open(path, "rb") if magic[:2] == _GZIP_MAGIC else open(path, "rb")
    except FileNotFoundError:
        raise DataError([f"{path}: no such file; expected {what}"]) from None
    except PermissionError:
        raise DataError([f"{path}: not readable (permission denied); give your user read access "
                         f"(chmod u+r) or point to a copy you can read"]) from None
    except OSError as e:
        if is_transient(e):  # a flaky file system: the task layer retries these
            raise
        raise DataError([f"{path}: cannot be read ({e.strerror or e}); expected {what}"]) from None
    if magic == _ZIP_MAGIC:
        raw.close()
        raise DataError([f"{path}: is a ZIP archive (or a spreadsheet); expected {what}: unzip it, or export "
                         "the sheet as CSV"])
    # Bad bytes are kept as lone surrogates and reported by the row that holds them: decoding fails a
    # whole read-ahead buffer at once, so a strict decoder would name a line thousands of rows early.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


class _Rows:
    """csv rows; `line` is where the current row starts. A malformed file raises DataError naming
    path:line, what is wrong and the fix."""

    def __init__(self, path: Path, f: io.TextIOWrapper):
        self.path = path
        self.reader = csv.reader(f, strict=True)
        self.line = 1

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        self.line = self.reader.line_num + 1
        where = f"{self.path}:{self.line}"
        try:
            row = next(self.reader)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise DataError([f"{where}: the gzip data is truncated or corrupt ({e}); download or compress the "
                             "file again (gzip -t checks it)"]) from None
        except csv.Error as e:
            if "field limit" in str(e):
                raise DataError([f"{where}: a field longer than {CSV_FIELD_LIMIT:,} characters, so a quote opened "
                                 "in the row starting here probably never closes; check its quoting"]) from None
            if "end of data" in str(e):
                raise DataError([f"{where}: a quoted field opened in the row starting here runs to the end of the "
                                 "file; close its quote (a quote inside a field is written twice: \"\")"]) from None
            raise DataError([f"{where}: malformed CSV ({e}); check the quoting of the row starting here (a quote "
                             "inside a field is written twice: \"\")"]) from None
        for i, value in enumerate(row):
            if bad := _BAD_BYTE.search(value):
                line = self.line + ",".join(row[:i]).count("\n") + value.count("\n", 0, bad.start())
                raise DataError([f"{self.path}:{line}: not UTF-8 (byte 0x{ord(bad.group()) - 0xdc00:02x}); re-encode "
                                 "the file as UTF-8, e.g. iconv -f latin1 -t utf-8"])
        return row


@contextlib.contextmanager
def _csv_rows(path: Path, what: str, columns: tuple[str, ...]) -> Iterator[tuple[_Rows, dict[str, int], int]]:
    """The rows after the header, the index of each of `columns` and the header's width."""
    f = _open_text(path, what)
    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        rows = _Rows(path, f)
        header = next(rows, None)
        if header is None:
            raise DataError([f"{path}:1: empty file; expected a header row {','.join(columns)}"])
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError([f"{path}:1: missing column(s) {missing}; expected a header row {','.join(columns)}, "
                             f"found {_describe_header(header)}"])
        yield rows, {c: header.index(c) for c in columns}, len(header)
    finally:
        csv.field_size_limit(old_limit)
        f.close()


def _describe_header(header: list[str]) -> str:
    """What the first row holds, naming its columns only when they look like column names: a file without
    a header row would otherwise put a note's text (PHI) in the message."""
    if any("\t" in h for h in header):
        return "one tab-separated column: save the file as comma-separated"
    if all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]{0,40}", h) for h in header):
        return ",".join(header)
    return f"a first row of {len(header)} value(s), not column names: add the header row"


def _table(path: Path | None, key: str, value: str, what: str) -> dict[str, str]:
    if path is None:
        return {}
    out = {}
    with _csv_rows(path, what, (key, value)) as (rows, col, width):
        for row in rows:
            if len(row) != width:
                raise DataError([f"{path}:{rows.line}: {len(row)} field(s), expected {width} as in the header; "
                                 "check the quoting of this row"])
            out[row[col[key]]] = row[col[value]]
    return out


def read_notes(notes: Path, seed: int = 0, patients: Path | None = None, services: Path | None = None,
               limit: int | None = None, non_phi: str = "filler") -> tuple[list[Note], ImportReport]:
    """Read discharge.csv[.gz], fill every mask; malformed files raise DataError, bad notes are counted skips."""
    sexes = _table(patients, "subject_id", "gender", "MIMIC-IV patients.csv[.gz] (subject_id, gender)")
    svc = _table(services, "hadm_id", "curr_service", "MIMIC-IV services.csv[.gz] (hadm_id, curr_service)")
    report = ImportReport(non_phi=non_phi)
    out: list[Note] = []
    fake = Faker("en_US")
    with _csv_rows(notes, "MIMIC-IV-Note discharge.csv or discharge.csv.gz", NOTE_COLUMNS) as (rows, col, width):
        for row in rows:
            if len(row) != width:
                report.skip("wrong number of fields", rows.line)
                continue
            # A file saved on Windows has CRLF inside its notes too; the rules read the notes' line structure.
            text = row[col["text"]].replace("\r\n", "\n")
            if not text.strip():
                report.skip("empty note", rows.line)
                continue
            sex = sexes.get(row[col["subject_id"]]) or _header(text, "Sex")
            service = svc.get(row[col["hadm_id"]]) or _header(text, "Service")
            if not sex or not service or sex.upper()[:1] not in ("M", "F"):
                report.skip("no Sex/Service in the header or tables", rows.line)
                continue
            sex = "Male" if sex.upper()[0] == "M" else "Female"
            key = int(hashlib.sha256(f"{seed}|{row[col['note_id']]}".encode()).hexdigest()[:12], 16)
            fake.seed_instance(key)
            filled = fill(text, Identity.make(fake, random.Random(key), sex, text), non_phi)
            report.rules.update(filled.rules)
            report.categories.update(s["category"] for s in filled.spans)
            report.notes += 1
            out.append(Note(row[col["note_id"]], row[col["subject_id"]], sex, service.strip().upper(), filled.text,
                            filled.spans, filled.non_phi))
            if limit and len(out) >= limit:
                break
    return out, report
