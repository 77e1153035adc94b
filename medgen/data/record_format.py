"""The discharge-record layouts: header fields and section headings, parsed in one place.

Discharge summaries differ by institution: MIMIC-IV's "Name: ... Unit No: ..." header and Title Case headings, a
dictated narrative with ALL CAPS headings and prose after them, a VA-style summary, a short community-hospital
summary, a letter to the primary care physician, a summary with tables. `STYLES` holds one row per layout: how it
labels the seven header fields and how it spells each section it writes, in its order. Everything that reads a
record (the smoke test and generate's validity, the consistency checks, the surrogate pass, the fidelity figures)
reads it through this module by canonical name (`constants.HEADER_FIELDS`, `constants.SECTION_HEADINGS`), so a
record in any of the layouts reads the same.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Mapping

from medgen.core.constants import HEADER_FIELDS, SECTION_HEADINGS


@dataclass(frozen=True)
class Style:
    """One layout: its label for each header field, and its heading for each section it writes, in its order."""

    name: str
    fields: Mapping[str, str]
    headings: Mapping[str, str]


def _mimic() -> Style:
    return Style("mimic", {f: f for f in HEADER_FIELDS}, {h: h for h in SECTION_HEADINGS})


STYLES: tuple[Style, ...] = (
    _mimic(),
    Style("narrative",
          {"Name": "PATIENT NAME", "Unit No": "MEDICAL RECORD NUMBER", "Admission Date": "DATE OF ADMISSION",
           "Discharge Date": "DATE OF DISCHARGE", "Date of Birth": "DATE OF BIRTH", "Sex": "SEX", "Service": "SERVICE"},
          {"Discharge Diagnosis": "PRINCIPAL DIAGNOSIS", "Chief Complaint": "REASON FOR ADMISSION",
           "History of Present Illness": "HISTORY OF PRESENT ILLNESS", "Past Medical History": "PAST MEDICAL HISTORY",
           "Medications on Admission": "MEDICATIONS ON ADMISSION", "Allergies": "ALLERGIES",
           "Social History": "SOCIAL HISTORY", "Family History": "FAMILY HISTORY",
           "Physical Exam": "PHYSICAL EXAMINATION", "Pertinent Results": "LABORATORY DATA",
           "Major Surgical or Invasive Procedure": "PROCEDURES", "Brief Hospital Course": "HOSPITAL COURSE",
           "Discharge Medications": "DISCHARGE MEDICATIONS", "Discharge Condition": "CONDITION ON DISCHARGE",
           "Discharge Disposition": "DISPOSITION", "Discharge Instructions": "INSTRUCTIONS",
           "Followup Instructions": "FOLLOW-UP"}),
    Style("va",
          {"Name": "PATIENT", "Unit No": "MRN", "Admission Date": "ADMISSION DATE", "Discharge Date": "DISCHARGE DATE",
           "Date of Birth": "DOB", "Sex": "SEX", "Service": "TREATING SPECIALTY"},
          {"Attending": "ATTENDING", "Chief Complaint": "REASON FOR ADMISSION", "Allergies": "ALLERGIES",
           "History of Present Illness": "HPI", "Past Medical History": "PMH",
           "Major Surgical or Invasive Procedure": "PROCEDURES", "Brief Hospital Course": "HOSPITAL COURSE",
           "Discharge Diagnosis": "DISCHARGE DIAGNOSES", "Discharge Medications": "DISCHARGE MEDICATIONS",
           "Discharge Condition": "CONDITION AT DISCHARGE", "Discharge Disposition": "DISPOSITION",
           "Discharge Instructions": "PATIENT INSTRUCTIONS", "Followup Instructions": "FOLLOW-UP APPOINTMENTS"}),
    Style("community",
          {"Name": "Patient", "Unit No": "MRN", "Admission Date": "Admitted", "Discharge Date": "Discharged",
           "Date of Birth": "DOB", "Sex": "Sex", "Service": "Service"},
          {"Chief Complaint": "Reason for admission", "History of Present Illness": "HPI",
           "Brief Hospital Course": "Hospital course", "Discharge Diagnosis": "Discharge diagnoses",
           "Discharge Medications": "Discharge meds", "Discharge Condition": "Condition",
           "Followup Instructions": "Follow-up", "Discharge Instructions": "Instructions"}),
    Style("letter",
          {"Name": "RE", "Unit No": "MRN", "Admission Date": "Date of admission",
           "Discharge Date": "Date of discharge", "Date of Birth": "DOB", "Sex": "Sex", "Service": "Service"},
          {"Chief Complaint": "Reason for admission", "Brief Hospital Course": "Hospital course",
           "Discharge Diagnosis": "Diagnoses", "Discharge Medications": "Medications at discharge",
           "Discharge Condition": "Condition at discharge", "Followup Instructions": "Follow-up",
           "Discharge Instructions": "Instructions to the patient"}),
    Style("tabular",
          {"Name": "Patient Name", "Unit No": "MRN", "Admission Date": "Admit Date",
           "Discharge Date": "Discharge Date", "Date of Birth": "DOB", "Sex": "Sex", "Service": "Service"},
          {"Attending": "Attending", "Chief Complaint": "Chief Complaint", "Allergies": "Allergies",
           "History of Present Illness": "History of Present Illness", "Past Medical History": "Past Medical History",
           "Pertinent Results": "Laboratory Results", "Brief Hospital Course": "Hospital Course",
           "Discharge Medications": "Discharge Medications", "Discharge Diagnosis": "Discharge Diagnosis",
           "Discharge Condition": "Discharge Condition", "Discharge Instructions": "Discharge Instructions",
           "Followup Instructions": "Follow-up Appointments"}),
)
BY_NAME: dict[str, Style] = {s.name: s for s in STYLES}


def _labels(attribute: str, canonical: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every spelling of each canonical name across the styles, longest first (a regex tries them in order)."""
    out: dict[str, set[str]] = {name: {name} for name in canonical}
    for style in STYLES:
        for name, label in getattr(style, attribute).items():
            out[name].add(label)
    return {name: tuple(sorted(labels, key=lambda x: (-len(x), x))) for name, labels in out.items()}


FIELD_LABELS = _labels("fields", HEADER_FIELDS)
HEADING_LABELS = _labels("headings", SECTION_HEADINGS)


@functools.lru_cache(maxsize=None)
def _field_re(name: str) -> re.Pattern:
    labels = FIELD_LABELS.get(name, (name,))
    return re.compile(r"(?m)(?<![\w/])(?:" + "|".join(map(re.escape, labels)) + r"):[ \t]*(\S.*?)(?:[ \t]{2,}|[ \t]*$)")


def header_value(text: str, name: str) -> str | None:
    """The value after the field's label (any layout's) on its line, the first in the text. Header fields share
    lines ("Date of Birth: 01/02/1950    Sex: F"), so a value ends at two or more spaces or at the end of the line.
    None when absent or empty."""
    m = _field_re(name).search(text)
    return m.group(1).strip() if m else None


_HEADING_RE = re.compile(r"(?m)^[ \t]*(" + "|".join(map(re.escape, sorted(
    {label for labels in HEADING_LABELS.values() for label in labels}, key=lambda x: (-len(x), x)))) + r"):")
_CANONICAL = {label: name for name, labels in HEADING_LABELS.items() for label in labels}


def sections(text: str) -> dict[str, str]:
    """Each section's body by canonical heading (the text from its heading to the next); the first of each."""
    found = list(_HEADING_RE.finditer(text))
    out: dict[str, str] = {}
    for m, nxt in zip(found, found[1:] + [None]):
        out.setdefault(_CANONICAL[m[1]], text[m.end():nxt.start() if nxt else len(text)])
    return out


def person_name(value: str | None) -> tuple[str, str] | None:
    """(first, last) of a name as a header writes it: "First Last", "First M. Last", "LAST, FIRST M" or
    "Last,First"; None for fewer than two words."""
    if not value:
        return None
    if "," in value:
        last, _, rest = value.partition(",")
        words = rest.split()
        return (words[0], last.strip()) if words and last.strip() else None
    words = value.split()
    return (words[0], words[-1]) if len(words) >= 2 else None


@dataclass(frozen=True)
class Layout:
    fields: dict[str, str | None]  # every header field, None where missing
    sections: tuple[str, ...]  # the canonical sections present, in table order
    section_fraction: float  # of the sections of the style the record follows most closely

    @property
    def missing_fields(self) -> list[str]:
        return [k for k, v in self.fields.items() if v is None]


def parse(text: str) -> Layout:
    fields = {f: header_value(text, f) for f in HEADER_FIELDS}
    found = set(sections(text))
    fraction = max(len(found & set(s.headings)) / len(s.headings) for s in STYLES)
    return Layout(fields, tuple(h for h in SECTION_HEADINGS if h in found), fraction)
