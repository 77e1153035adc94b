"""Reading a record in any layout: header fields by canonical name, sections, the patient's name parts."""

import pytest

from medgen.core.constants import HEADER_FIELDS
from medgen.data.record_format import BY_NAME, FIELD_LABELS, STYLES, header_value, parse, person_name, sections


@pytest.mark.parametrize("text, field, value", [
    ("Name: Ana Ruiz    Unit No: 1234567", "Unit No", "1234567"),
    ("PATIENT NAME: RUIZ, ANA    MEDICAL RECORD NUMBER: 12-345-67", "Name", "RUIZ, ANA"),
    ("PATIENT: RUIZ,ANA    MRN: MR1234567", "Unit No", "MR1234567"),
    ("Admitted: 3/2/19    Discharged: 3/9/19    Service: Cardiology", "Discharge Date", "3/9/19"),
    ("RE: Ana Ruiz    DOB: 01/02/1950    MRN: 1234567", "Date of Birth", "01/02/1950"),
    ("TREATING SPECIALTY: MEDICINE", "Service", "MEDICINE"),
    ("Age/Sex: 52/F\nSex: F", "Sex", "F"),  # "Age/Sex:" is not the Sex field
    ("Name: Ana Ruiz\nPatient: RUIZ, ANA", "Name", "Ana Ruiz"),  # the first in the text
    ("MORE: text", "Name", None),  # "RE:" inside a word is no label
])
def test_header_fields_read_under_every_layouts_label(text, field, value):
    assert header_value(text, field) == value


def test_every_style_labels_every_field_and_headings_are_unambiguous():
    for style in STYLES:
        assert set(style.fields) == set(HEADER_FIELDS), style.name
    labels = [label for labels in FIELD_LABELS.values() for label in labels]
    assert len(labels) == len(set(labels)), "a label names two fields"
    headings = [h for s in STYLES for h in s.headings.values()]
    owners = {}
    for s in STYLES:
        for canonical, h in s.headings.items():
            assert owners.setdefault(h, canonical) == canonical, f"{h!r} names two sections"
    assert headings


def test_sections_map_each_layouts_headings_to_canonical_names():
    text = "HPI: 52F with fever.\nHOSPITAL COURSE: Treated.\n\nFollow-up:\nDr. Lee on 3/14/2021\nAllergies:\nNone\n"
    got = sections(text)
    assert list(got) == ["History of Present Illness", "Brief Hospital Course", "Followup Instructions", "Allergies"]
    assert got["History of Present Illness"].strip() == "52F with fever." and "3/14/2021" in got["Followup Instructions"]
    assert parse(text).section_fraction == max(len(set(got) & set(s.headings)) / len(s.headings) for s in STYLES)
    assert parse("".join(f"{h}:\nx\n" for h in BY_NAME["community"].headings.values())).section_fraction == 1.0


@pytest.mark.parametrize("value, parts", [
    ("Ana Ruiz", ("Ana", "Ruiz")), ("Ana M. Ruiz", ("Ana", "Ruiz")), ("RUIZ, ANA", ("ANA", "RUIZ")),
    ("Ruiz,Ana M", ("Ana", "Ruiz")), ("Ruiz-Diaz, Ana", ("Ana", "Ruiz-Diaz")), ("Ana", None), (None, None),
])
def test_person_name_reads_every_header_form(value, parts):
    assert person_name(value) == parts
