"""Synthetic PHI-bearing discharge records in the MIMIC-IV discharge-summary layout.

`records(n, seed, profile)` yields `Record`s: sex, service, text, and every PHI value inserted as a
character span with an i2b2-2014-style category. One consistent identity per record; the same seed
gives the same records.

A record is drawn in two steps: `_draw_case` picks the patient, condition, comorbidities, stay and how the
note is written (its detail, abbreviations, list style), then one function per section writes that section,
drawing its incidental details (wording, vitals, times, relatives) as it goes. Every draw from `rng` and
`fake` happens in a fixed order, which is what makes a seed reproduce its records.

Profiles: `full` varies its length the way MIMIC-IV discharge notes do (detail, stay length, comorbidities
and optional sub-sections all scale it); `compact` writes one short line under each heading, for training
runs with a short `max_seq_length`.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

from faker import Faker

from medgen.data.synthetic.case import Case, draw_case
from medgen.data.synthetic.sections.course import course
from medgen.data.synthetic.sections.discharge import (
    admission_meds,
    condition,
    diagnosis,
    discharge_meds,
    disposition,
    followup,
    instructions,
)
from medgen.data.synthetic.sections.findings import exam, results
from medgen.data.synthetic.sections.header import allergies, attending, chief_complaint, header, procedure
from medgen.data.synthetic.sections.history import family, hpi, pmh, social
from medgen.data.synthetic.text import Doc, Record

# The sections in record order (constants.SECTION_HEADINGS), each under its heading.
_SECTIONS: tuple[tuple[str, Callable[[Doc, Case], None]], ...] = (
    ("Allergies", allergies),
    ("Attending", attending),
    ("Chief Complaint", chief_complaint),
    ("Major Surgical or Invasive Procedure", procedure),
    ("History of Present Illness", hpi),
    ("Past Medical History", pmh),
    ("Social History", social),
    ("Family History", family),
    ("Physical Exam", exam),
    ("Pertinent Results", results),
    ("Brief Hospital Course", course),
    ("Medications on Admission", admission_meds),
    ("Discharge Medications", discharge_meds),
    ("Discharge Disposition", disposition),
    ("Discharge Diagnosis", diagnosis),
    ("Discharge Condition", condition),
    ("Discharge Instructions", instructions),
    ("Followup Instructions", followup),
)


def build_record(fake: Faker, rng: random.Random, profile: str, sex: str | None = None,
                 service: str | None = None) -> Record:
    """One record with one identity; `compact` keeps every heading but one short line under each."""
    c = draw_case(fake, rng, profile, sex, service)
    d = Doc()
    header(d, c)
    for heading, section in _SECTIONS:
        d.heading(heading)
        section(d, c)
    return Record(sex=c.person.sex, service=c.service, text=d.text().rstrip("\n"), patient_id=c.person.mrn,
                  spans=d.spans)


def records(n: int, seed: int = 0, profile: str = "compact") -> Iterator[Record]:
    """Yield `n` records; the same (n, seed, profile) always gives the same records."""
    fake = Faker("en_US")
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        fake.seed_instance(seed * 1_000_003 + i)
        yield build_record(fake, rng, profile)
