import datetime as dt
import re

import pytest

from medgen.constants import HEADER_FIELDS, SECTION_HEADINGS
from medgen.records import SERVICES, records


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
        assert r.spans
        for s in r.spans:
            assert r.text[s.start:s.end] == s.text, (s, r.text[s.start:s.end])


def test_layout_has_every_header_and_heading(sample):
    for r in sample:
        for field in HEADER_FIELDS:
            assert f"{field}:" in r.text
        for heading in SECTION_HEADINGS:
            assert f"\n{heading}:" in r.text


def _date(text, label):
    m = re.search(label + r": (\d\d/\d\d/\d{4})", text)
    return dt.datetime.strptime(m.group(1), "%m/%d/%Y").date()


def test_clinical_and_identity_consistency(sample):
    for r in sample:
        assert f"Sex: {r.sex[0]}" in r.text and f"Service: {r.service}" in r.text
        title, other = ("Mr.", "Ms.") if r.sex == "Male" else ("Ms.", "Mr.")
        assert title in r.text and other not in r.text
        if r.service == "OBSTETRICS/GYNECOLOGY":
            assert r.sex == "Female"
        admit, discharge, dob = (_date(r.text, k) for k in ("Admission Date", "Discharge Date", "Date of Birth"))
        assert admit < discharge
        age = int(next(s.text for s in r.spans if s.category == "AGE"))
        assert abs((admit - dob).days / 365.25 - age) < 1.5
        last = next(s.text for s in r.spans if s.category == "NAME:PATIENT").split()[-1]
        assert f"Dear {title} {last}" in r.text


def test_at_least_twelve_services():
    assert len(SERVICES) >= 12
