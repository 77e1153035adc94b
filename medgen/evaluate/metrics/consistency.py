"""Internal consistency of one record: checks that hold, fail or cannot tell, from its own text."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

from medgen.core.constants import SECTION_HEADINGS
from medgen.data.record_format import header_value

CHECKS = ("age_matches_dob", "title_matches_sex", "pronouns_match_sex", "admission_before_discharge",
          "followups_after_discharge", "service_fits_diagnosis")
_DATE_RE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b|\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_AGE_RE = re.compile(r"\b(\d{1,3})(?:[- ](?:year|yr)s?[- ]old|\s?y/?o)\b", re.IGNORECASE)
_PRONOUN_RE = re.compile(r"\b(he|him|his|himself|she|her|hers|herself)\b", re.IGNORECASE)
_MALE_PRONOUNS = {"he", "him", "his", "himself"}
_TITLES = {"mr": "Male", "mrs": "Female", "ms": "Female", "miss": "Female"}
_HEADING_RE = re.compile(r"(?m)^(" + "|".join(map(re.escape, SECTION_HEADINGS)) + r"):")
_DX_LABEL_RE = re.compile(r"^(?:[-*\u2022]+|\d+[.)])?\s*(?:(?:primary|principal)(?: diagnos[ie]s)?\s*:\s*)?", re.IGNORECASE)
_DX_CODE_RE = re.compile(r"\s*\([A-Z]\d[0-9A-Z.]*\)\s*$")


def parse_date(text: str) -> dt.date | None:
    """The first MM/DD/YYYY or YYYY-MM-DD date in `text`; None when there is none or it is impossible."""
    m = _DATE_RE.search(text)
    if not m:
        return None
    month, day, year = (m[1], m[2], m[3]) if m[1] else (m[5], m[6], m[4])
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def sections(text: str) -> dict[str, str]:
    """Each expected heading's body (the text up to the next expected heading); the first one of each."""
    found = list(_HEADING_RE.finditer(text))
    out: dict[str, str] = {}
    for m, nxt in zip(found, found[1:] + [None]):
        out.setdefault(m[1], text[m.end():nxt.start() if nxt else len(text)])
    return out


def primary_diagnosis(text: str) -> str | None:
    """The first diagnosis line of the Discharge Diagnosis section, lowercased, without bullet, label or ICD code;
    None when the record has no such line."""
    for line in sections(text).get("Discharge Diagnosis", "").splitlines():
        line = line.strip()
        if not line or line.endswith(":"):
            continue
        dx = _DX_CODE_RE.sub("", _DX_LABEL_RE.sub("", line)).strip(" .").lower()
        if len(dx) >= 4:
            return dx
    return None


def diagnosis_services(records: Iterable[str]) -> dict[str, frozenset[str]]:
    """Primary diagnosis -> the services it was seen under, learnt from reference records (the training split):
    the service check then knows every source's diagnoses, the synthetic engine's or imported notes' alike."""
    seen: dict[str, set[str]] = {}
    for text in records:
        service, dx = (header_value(text, "Service") or "").upper(), primary_diagnosis(text)
        if service and dx:
            seen.setdefault(dx, set()).add(service)
    return {dx: frozenset(services) for dx, services in seen.items()}


def _sex(text: str) -> str | None:
    got = (header_value(text, "Sex") or "")[:1].upper()
    return {"M": "Male", "F": "Female"}.get(got)


def consistency(text: str, diagnoses: Mapping[str, frozenset[str]] | None = None) -> dict[str, bool | None]:
    """Internal consistency of one record, each check True (holds), False (violated) or None (cannot tell:
    the fields it needs are missing or unreadable). Sex is the record's own header field."""
    sex = _sex(text)
    admit, discharge, dob = (parse_date(header_value(text, f) or "") for f in
                             ("Admission Date", "Discharge Date", "Date of Birth"))
    body = sections(text)
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)

    age = _AGE_RE.search(text)
    if age and admit and dob:
        years = admit.year - dob.year - ((admit.month, admit.day) < (dob.month, dob.day))
        out["age_matches_dob"] = abs(int(age[1]) - years) <= 1

    name = header_value(text, "Name")
    if sex and name:
        # Titles before the patient's surname only: a relative may be Mr. or Ms. in anyone's record.
        surname = re.escape(name.split()[-1])
        titles = {_TITLES[t.lower()] for t in re.findall(rf"\b(Mr|Mrs|Ms|Miss)\.?\s+{surname}\b", text, re.IGNORECASE)}
        if titles:
            out["title_matches_sex"] = titles == {sex}

    if sex:
        pronouns = Counter("Male" if p.lower() in _MALE_PRONOUNS else "Female" for p in _PRONOUN_RE.findall(text))
        if pronouns:
            # The majority, since a note may speak of a relative of the other sex.
            other = "Female" if sex == "Male" else "Male"
            out["pronouns_match_sex"] = pronouns[sex] >= pronouns[other]

    if admit and discharge:
        out["admission_before_discharge"] = admit <= discharge
        followups = [d for m in _DATE_RE.finditer(body.get("Followup Instructions", ""))
                     if (d := parse_date(m[0]))]
        if followups:
            out["followups_after_discharge"] = all(d >= discharge for d in followups)

    service = (header_value(text, "Service") or "").upper()
    dx = primary_diagnosis(text)
    if service and dx and diagnoses and dx in diagnoses:
        # Only diagnoses the reference saw: an unknown one says nothing about the service.
        out["service_fits_diagnosis"] = service in diagnoses[dx]
    return out


def consistency_summary(results: Sequence[Mapping[str, bool | None]]) -> dict:
    """Per check: records checked, failed, unknown, and the failed fraction of those checked."""
    out: dict = {}
    for check in CHECKS:
        values = [r[check] for r in results]
        checked = sum(v is not None for v in values)
        failed = sum(v is False for v in values)
        out[check] = {"checked": checked, "failed": failed, "unknown": len(values) - checked,
                      "failed_fraction": round(failed / checked, 4) if checked else None}
    any_failed = sum(any(v is False for v in r.values()) for r in results)
    out["records_with_any_failure"] = round(any_failed / len(results), 4) if results else None
    return out
