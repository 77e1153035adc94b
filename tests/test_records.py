"""Synthetic records: reproducible, every PHI value a matching span, the MIMIC layout, and one consistent
patient (identity, stay and condition) per record."""

import datetime as dt
import re

import pytest

from medgen.clinical import SERVICES, Condition
from medgen.constants import SECTION_HEADINGS
from medgen.record_format import header_value, parse
from medgen.records import Record, records

# Every record names its patient, doctor, hospital and city, and gives an MRN, dates, an age and a phone.
IDENTITY_CATEGORIES = {"NAME:PATIENT", "NAME:DOCTOR", "ID:MRN", "DATE", "AGE", "LOCATION:HOSPITAL",
                       "LOCATION:CITY", "CONTACT:PHONE"}


@pytest.fixture(scope="module", params=["compact", "full"])
def sample(request):
    return list(records(60, seed=7, profile=request.param))


def test_same_seed_same_records():
    a = [r.text for r in records(5, seed=3)]
    b = [r.text for r in records(5, seed=3)]
    c = [r.text for r in records(5, seed=4)]
    assert a == b and a != c


def test_every_span_matches_the_text(sample):
    for r in sample:
        assert {s.category for s in r.spans} >= IDENTITY_CATEGORIES
        for s in r.spans:
            assert r.text[s.start:s.end] == s.text, (s, r.text[s.start:s.end])


def test_layout_has_every_header_and_heading(sample):
    for r in sample:
        layout = parse(r.text)
        assert layout.missing_fields == [] and layout.sections == SECTION_HEADINGS


def _date(text: str, label: str) -> dt.date:
    m = re.search(label + r": (\d\d/\d\d/\d{4})", text)
    return dt.datetime.strptime(m.group(1), "%m/%d/%Y").date()


def _condition(r: Record) -> Condition:
    """The condition of the record's service whose diagnosis the record states."""
    diagnosis = re.search(r"\nDischarge Diagnosis:\n(.*) \(", r.text).group(1)
    found = [c for c in SERVICES[r.service] if c.diagnosis == diagnosis]
    assert found, f"{diagnosis!r} is not a condition of {r.service}"
    return found[0]


def test_clinical_and_identity_consistency(sample):
    for r in sample:
        assert f"Sex: {r.sex[0]}" in r.text and f"Service: {r.service}" in r.text
        assert header_value(r.text, "Unit No") == r.patient_id
        title, other = ("Mr.", "Ms.") if r.sex == "Male" else ("Ms.", "Mr.")
        assert title in r.text and other not in r.text
        admit, discharge, dob = (_date(r.text, k) for k in ("Admission Date", "Discharge Date", "Date of Birth"))
        assert admit < discharge
        age = int(next(s.text for s in r.spans if s.category == "AGE"))
        assert abs((admit - dob).days / 365.25 - age) < 1.5
        cond = _condition(r)
        assert cond.min_age <= age <= cond.max_age and cond.sex in (None, r.sex)
        full_name, *mentions = [s.text for s in r.spans if s.category == "NAME:PATIENT"]
        last = full_name.split()[-1]
        assert set(mentions) == {last} and f"Dear {title} {last}" in r.text


def test_every_condition_of_every_service_is_generated():
    # The rarest pair (a female-only condition of a two-condition service) comes up about once in 50 records.
    seen = {(r.service, _condition(r).diagnosis) for r in records(3000, seed=11)}
    expected = {(service, c.diagnosis) for service, conditions in SERVICES.items() for c in conditions}
    assert seen == expected, sorted(expected - seen)
