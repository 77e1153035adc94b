"""Internal consistency of one record: checks that hold, fail or cannot tell, from its own text."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

from medgen.data.phi import dates as D
from medgen.data.record_format import header_value, person_name, sections

CHECKS = ("age_matches_dob", "title_matches_sex", "pronouns_match_sex", "admission_before_discharge",
          "followups_after_discharge", "weekday_matches_date", "stay_length_matches_dates", "one_patient_name",
          "service_fits_diagnosis")
# The patient's age as notes state it: "67 year old", "67-year-old", "67 y/o", "67yo", "67 y.o.", "67F with", "aged 67",
# "Age: 67"; past 89 as "90+" or "> 89".
# A number after a decimal point is a measurement ("fevers above 101.5F"), never an age.
_AGE_RE = re.compile(r"(?<![\d.])\b(?P<n>\d{1,3})(?:\s*-?\s*(?:year|yr)s?[- ]old\b|\s?y/?o\b|\s?y\.o\.|\s?yo\b|\s?[MF](?= with| w/| who|,))"
                     r"|\b(?:aged|Age:)\s*(?P<m>\d{1,3})\b|(?P<over>>\s*89|\b90\s*\+)", re.IGNORECASE)
_STAY_RE = re.compile(r"\b(?:length of stay|LOS)\b\W{0,3}(?:was|of|is)?\s*(\d{1,3})\s*(?:days?|d)\b", re.IGNORECASE)
# Where a note names its patient: "Dear Ms. Surname", "Dear First", "Ms. Surname is a 67 ...", "Patient: SURNAME, FIRST".
_ADDRESSED_RE = re.compile(r"\bDear\s+(?:(?:Mr|Mrs|Ms|Miss)\.?\s+)?(?P<a>[A-Z][\w'-]+)(?:\s+(?P<b>[A-Z][\w'-]+))?,"
                           r"|\b(?:Mr|Mrs|Ms|Miss)\.?\s+(?P<c>[A-Z][\w'-]+)\s+is\s+an?\s+\d"
                           r"|\bPatient:\s+(?P<d>[A-Z][\w'-]+),\s+(?P<e>[A-Z][\w'-]+)")
_NEAR_DATE = re.compile(r"(?:\bon|\bby|When:|Date:|\bafter|\bbefore|\buntil|\bthrough|,)\s*\Z", re.IGNORECASE)
_PRONOUN_RE = re.compile(r"\b(he|him|his|himself|she|her|hers|herself)\b", re.IGNORECASE)
_MALE_PRONOUNS = {"he", "him", "his", "himself"}
_TITLES = {"mr": "Male", "mrs": "Female", "ms": "Female", "miss": "Female"}
_DX_LABEL_RE = re.compile(r"^(?:[-*\u2022]+|\d+[.)])?\s*(?:(?:primary|principal)(?: diagnos[ie]s)?\s*:\s*)?", re.IGNORECASE)
_DX_CODE_RE = re.compile(r"\s*\([A-Z]\d[0-9A-Z.]*\)\s*$")


def parse_date(text: str) -> dt.date | None:
    """The date `text` writes, in any whole form (03/14/2091, March 14, 2091, 2091-03-14, ...); None when it writes
    no whole date."""
    parsed = D.parse(text.strip()) if text else None
    if parsed is None or None in (parsed.year, parsed.month, parsed.day):
        return None
    return D.resolve(parsed, dt.date(2000, 1, 1))


def _dates_in(text: str, anchor: dt.date) -> list[tuple[int, int, D.Parsed, dt.date]]:
    """The dates naming a day in running text, partial ones ("3/10", "March 14") read near `anchor`; a bare
    numeric month/day counts only where a date is expected ("on 3/10", "When: 3/10"), not "1/2 tablet"."""
    out = []
    for start, end, parsed in D.find(text):
        if parsed.year is None and parsed.month is not None and "month" in parsed.template.fields() and \
                parsed.template.fields()["month"].style in ("1", "2") and \
                not _NEAR_DATE.search(text, max(0, start - 8), start) and parsed.weekday is None:
            continue
        out.append((start, end, parsed, D.resolve(parsed, anchor)))
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
    name = header_value(text, "Name")
    out: dict[str, bool | None] = dict.fromkeys(CHECKS)

    age = _AGE_RE.search(text)
    if age and admit and dob:
        years = admit.year - dob.year - ((admit.month, admit.day) < (dob.month, dob.day))
        stated = age["n"] or age["m"]
        out["age_matches_dob"] = years >= 90 if age["over"] else abs(int(stated) - years) <= 1

    named = person_name(name)
    if sex and named:
        # Titles before the patient's surname only: a relative may be Mr. or Ms. in anyone's record.
        surname = re.escape(named[1])
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
        followups = [d for *_, d in _dates_in(body.get("Followup Instructions", ""), discharge)]
        if followups:
            out["followups_after_discharge"] = all(d >= discharge for d in followups)
        stays = [int(m.group(1)) for m in _STAY_RE.finditer(text)]
        if stays:
            out["stay_length_matches_dates"] = all(abs(n - (discharge - admit).days) <= 1 for n in stays)

    weekdays = [(p.weekday, d) for *_, p, d in _dates_in(text, admit or dt.date(2000, 1, 1))
                if p.weekday is not None and p.year is not None]
    if weekdays:
        out["weekday_matches_date"] = all(wd == d.weekday() for wd, d in weekdays)

    if named:
        first, last = named[0].lower(), named[1].lower()
        named = []
        for m in _ADDRESSED_RE.finditer(text):
            if m["a"]:
                named.append({m["a"].lower(), (m["b"] or "").lower()} & {first, last} != set())
            elif m["c"]:
                named.append(m["c"].lower() == last)
            else:
                named.append((m["d"].lower(), m["e"].lower()) == (last, first))
        if named:
            out["one_patient_name"] = all(named)

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
