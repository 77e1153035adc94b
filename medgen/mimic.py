"""MIMIC-IV-Note import: every `___` in a discharge note becomes a typed, realistic surrogate.

The category of each `___` is read from its context (the text around it on its line). One identity
per note (Faker, seeded by note id and seed); dates are shifted consistently within a note. Every
surrogate is recorded as a span, and the report says how many were resolved by a specific rule rather
than the fallback.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

from medgen.errors import DataError
from medgen.identity import Person, doctor_name, draw_person
from medgen.record_format import header_value

MASK = "___"
NOTE_COLUMNS = ("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text")
FALLBACK = "OTHER"

# (category, rule name, pattern on the text before the mask, pattern on the text after it).
# First match wins, so specific rules come before general ones.
RULES: list[tuple[str, str, str, str]] = [
    ("NAME:PATIENT", "name-field", r"\bName:\s*$", ""),
    ("ID:MRN", "unit-no", r"\bUnit No:\s*$", ""),
    ("DATE:ADMISSION", "admission-date", r"\bAdmission Date:\s*$", ""),
    ("DATE:DISCHARGE", "discharge-date", r"\bDischarge Date:\s*$", ""),
    ("DATE:BIRTH", "date-of-birth", r"\bDate of Birth:\s*$", ""),
    ("NAME:PATIENT", "dear-title", r"\bDear\s+(?:Mr|Ms|Mrs|Miss)\.?\s*$", ""),
    ("NAME:PATIENT", "title", r"\b(?:Mr|Ms|Mrs|Miss)\.?\s*$", ""),
    ("NAME:DOCTOR", "doctor", r"\b(?:Dr\.?|Attending:|Doctor|PCP:|With:)\s*$", ""),
    ("NAME:DOCTOR", "md-suffix", r"", r"^\s*,?\s*(?:MD|M\.D\.|NP|PA|RN)\b"),
    ("CONTACT:PHONE", "phone", r"(?i)\b(?:phone|telephone|tel|fax|call|pager)[\s#:/]*(?:at\s*)?$", ""),
    ("AGE", "age", r"", r"^\s*(?:-|\s)?(?:year|yr|y)\.?[\s-]*o(?:ld|\.)?\b"),
    ("TIME", "time", r"(?i)\bat\s*$", r"^\s*(?:am|pm|AM|PM)\b"),
    ("DATE:FOLLOWUP", "followup-when", r"\bWhen:\s*$", ""),
    ("DATE", "lab-line", r"^\s*$", r"^\s*\d{1,2}:\d{2}\s*(?:AM|PM)"),
    ("LOCATION:HOSPITAL", "hospital", r"(?i)\b(?:transferred (?:from|to)|admitted to|presented to|at|from)\s*$",
     r"(?i)^\s*(?:hospital|medical center|rehab|clinic|ED|emergency)"),
    ("DATE", "date-words", r"(?i)\b(?:on|since|until|from|dated|of|by|date:?)\s*$", ""),
    ("LOCATION:HOSPITAL", "facility", r"(?i)\b(?:facility|department|campus|building|location):?\s*$", ""),
    ("LOCATION:STREET", "address", r"(?i)\baddress:?\s*$", ""),
]
_COMPILED = [(cat, name, re.compile(before) if before else None, re.compile(after) if after else None)
             for cat, name, before, after in RULES]


def categorize(before: str, after: str) -> tuple[str, str]:
    """(category, rule) for a mask given the text before and after it on its line."""
    for cat, name, b, a in _COMPILED:
        if (b is None or b.search(before)) and (a is None or a.search(after)):
            return cat, name
    return FALLBACK, "fallback"


# MIMIC shifts dates into the 22nd century; surrogate stays fall in the same years.
ADMITTED = (dt.date(2110, 1, 1), dt.date(2180, 12, 31))
HOSPITAL_KINDS = ("Medical Center", "Hospital", "Memorial Hospital")
AGE_RE = re.compile(r"\b(\d{1,3})[\s-]*(?:year|yr|y)[\s.-]*o")


@dataclass
class Identity:
    """One synthetic person and stay per note; every surrogate of the note comes from here."""

    person: Person
    doctors: tuple[str, ...]  # masked doctor names take these in turn
    street: str
    _dates_used: int = 0
    _doctor_i: int = 0

    @classmethod
    def make(cls, fake: Faker, rng: random.Random, sex: str, text: str) -> Identity:
        """`sex` is "Male" or "Female"; an age left unmasked in `text` is kept, so the note stays consistent."""
        m = AGE_RE.search(text)
        stated = int(m.group(1)) if m and 0 < int(m.group(1)) < 120 else None
        person = draw_person(fake, rng, sex, (stated, stated) if stated else (25, 89), ADMITTED, (2, 12),
                             HOSPITAL_KINDS)
        return cls(person, (person.attending, doctor_name(fake), doctor_name(fake)), fake.street_address())

    def surrogate(self, category: str, rule: str, rng: random.Random) -> str:
        f = lambda d: d.strftime("%m/%d/%Y")  # noqa: E731
        p = self.person
        if category == "NAME:PATIENT":
            return p.name if rule == "name-field" else p.last
        if category == "NAME:DOCTOR":
            self._doctor_i += 1
            return self.doctors[(self._doctor_i - 1) % len(self.doctors)]
        if category == "ID:MRN":
            return p.mrn
        if category == "DATE:ADMISSION":
            return f(p.admit)
        if category == "DATE:DISCHARGE":
            return f(p.discharge)
        if category == "DATE:BIRTH":
            return f(p.dob)
        if category == "DATE:FOLLOWUP":
            return f(p.discharge + dt.timedelta(days=rng.randint(5, 30)))
        if category == "DATE":
            # In order of appearance, dates walk through the stay and never leave it.
            self._dates_used += 1
            return f(p.admit + dt.timedelta(days=min(self._dates_used - 1, p.los)))
        if category == "AGE":
            return str(p.age)
        if category == "TIME":
            return f"{rng.randint(1, 12)}:{rng.choice(('00', '15', '30', '45'))}"
        if category == "CONTACT:PHONE":
            return p.phone
        if category == "LOCATION:HOSPITAL":
            return p.hospital
        if category == "LOCATION:STREET":
            return self.street
        return rng.choice(("the clinic", "the unit", "the facility"))


@dataclass
class Note:
    note_id: str
    subject_id: str
    sex: str
    service: str
    text: str
    spans: list[dict] = field(default_factory=list)


def _header(text: str, name: str) -> str | None:
    """A header field's value; a masked one counts as absent, so the tables decide or the note is skipped."""
    value = header_value(text, name)
    return value if value and MASK not in value else None


def fill(text: str, identity: Identity, rng: random.Random) -> tuple[str, list[dict], Counter]:
    """Replace every mask with a surrogate; return the text, its spans, and rule counts."""
    out, spans, rules = [], [], Counter()
    pos = 0
    length = 0
    for m in re.finditer(re.escape(MASK) + "+", text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        before = text[line_start:m.start()]
        after = text[m.end(): line_end if line_end != -1 else len(text)]
        category, rule = categorize(before, after)
        value = identity.surrogate(category, rule, rng)
        chunk = text[pos:m.start()]
        out.append(chunk)
        length += len(chunk)
        # DATE:ADMISSION etc. only steer the surrogate; spans use the i2b2 category DATE.
        spans.append({"start": length, "end": length + len(value),
                      "category": "DATE" if category.startswith("DATE") else category, "rule": rule, "text": value})
        out.append(value)
        length += len(value)
        pos = m.end()
        rules[rule] += 1
    out.append(text[pos:])
    return "".join(out), spans, rules


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _table(path: Path | None, key: str, value: str) -> dict[str, str]:
    if path is None:
        return {}
    with _open_text(path) as f:
        rows = csv.DictReader(f)
        missing = {key, value} - set(rows.fieldnames or ())
        if missing:
            raise DataError([f"{path}:1: missing column(s) {sorted(missing)}; expected {key} and {value}"])
        return {r[key]: r[value] for r in rows}


@dataclass
class ImportReport:
    notes: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> CSV line numbers
    categories: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)

    def as_dict(self) -> dict:
        total = sum(self.rules.values())
        return {
            "notes": self.notes,
            "skipped": {k: {"count": len(v), "lines": v[:50]} for k, v in self.skipped.items()},
            "masks": total,
            "categories": dict(self.categories.most_common()),
            "rules": dict(self.rules.most_common()),
            "resolved_by_specific_rule": round(1 - self.rules.get("fallback", 0) / total, 4) if total else None,
        }


def read_notes(notes: Path, seed: int = 0, patients: Path | None = None, services: Path | None = None,
               limit: int | None = None) -> tuple[list[Note], ImportReport]:
    """Read discharge.csv[.gz], fill every mask; malformed files raise DataError, bad notes are counted skips."""
    if not notes.is_file():
        raise DataError([f"{notes}: no such file; expected MIMIC-IV-Note discharge.csv or discharge.csv.gz"])
    sexes = _table(patients, "subject_id", "gender")
    svc = _table(services, "hadm_id", "curr_service")
    report = ImportReport()
    out: list[Note] = []
    fake = Faker("en_US")
    f = _open_text(notes)
    reader = csv.reader(f)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError([f"{notes}:1: empty file; expected a header row {','.join(NOTE_COLUMNS)}"])
        missing = [c for c in NOTE_COLUMNS if c not in header]
        if missing:
            raise DataError([f"{notes}:1: missing column(s) {missing}; expected {','.join(NOTE_COLUMNS)}"])
        col = {c: header.index(c) for c in NOTE_COLUMNS}
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DataError([f"{notes}:{line}: malformed CSV ({e}); check quoting"]) from None
            if len(row) != len(header):
                report.skip("wrong number of fields", line)
                continue
            text = row[col["text"]]
            if not text.strip():
                report.skip("empty note", line)
                continue
            sex = sexes.get(row[col["subject_id"]]) or _header(text, "Sex")
            service = svc.get(row[col["hadm_id"]]) or _header(text, "Service")
            if not sex or not service or sex.upper()[:1] not in ("M", "F"):
                report.skip("no Sex/Service in the header or tables", line)
                continue
            sex = "Male" if sex.upper()[0] == "M" else "Female"
            key = int(hashlib.sha256(f"{seed}|{row[col['note_id']]}".encode()).hexdigest()[:12], 16)
            rng = random.Random(key)
            fake.seed_instance(key)
            identity = Identity.make(fake, rng, sex, text)
            filled, spans, rules = fill(text, identity, rng)
            report.rules.update(rules)
            report.categories.update(s["category"] for s in spans)
            report.notes += 1
            out.append(Note(row[col["note_id"]], row[col["subject_id"]], sex, service.strip().upper(), filled, spans))
            if limit and len(out) >= limit:
                break
    except UnicodeDecodeError as e:
        raise DataError([f"{notes}:{reader.line_num + 1}: not UTF-8 ({e.reason}); re-encode the file as UTF-8"]) from None
    finally:
        f.close()
    return out, report
