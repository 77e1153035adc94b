"""Synthetic PHI-bearing discharge records in the MIMIC-IV discharge-summary layout.

`records(n, seed, profile)` yields `Record`s: sex, service, text, and every PHI value inserted as a
character span with an i2b2-2014-style category. One consistent identity per record; the same seed
gives the same records.

A record is drawn in two steps: `_draw_case` picks the patient, condition and history, then one function
per section writes that section, drawing only incidental details (vitals, times, relatives). Every draw
from `rng` and `fake` happens in a fixed order, which is what makes a seed reproduce its records.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

from faker import Faker

from medgen.clinical import (ALLERGIES, BASIC, DISPOSITIONS, EXAM_SYSTEMS, FAMILY, HISTORY, IMAGING, LABS, ROS,
                             SOCIAL, WARNINGS, Condition, conditions_for, services_for)
from medgen.constants import SEXES
from medgen.identity import Person, doctor_name, draw_person, phone_number

ADMITTED = (dt.date(2015, 1, 1), dt.date(2025, 12, 31))
HOSPITAL_KINDS = ("Memorial Hospital", "Medical Center", "General Hospital")
LAB_TIMES = ("06:10AM", "07:45AM", "11:20PM", "04:30PM")
RELATIVES = ("spouse", "daughter", "son")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    category: str
    text: str


@dataclass
class Record:
    sex: str
    service: str
    text: str
    patient_id: str
    spans: list[Span] = field(default_factory=list)


class _Doc:
    """Text built left to right, recording the span of every PHI value as it is inserted."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def phi(self, value: str, category: str) -> None:
        self.spans.append(Span(self.length, self.length + len(value), category, value))
        self.add(value)

    def line(self, *pieces: tuple[str, str | None] | str) -> None:
        for p in pieces:
            if isinstance(p, tuple):
                self.phi(p[0], p[1]) if p[1] else self.add(p[0])
            else:
                self.add(p)
        self.add("\n")

    def heading(self, name: str) -> None:
        self.add(f" \n{name}:\n")

    def text(self) -> str:
        return "".join(self.parts)


class _Words(NamedTuple):
    """How the text refers to the patient."""

    title: str
    pr: str
    obj: str
    pos: str
    noun: str


_WORDS = {"Male": _Words("Mr.", "he", "him", "his", "man"), "Female": _Words("Ms.", "she", "her", "her", "woman")}


@dataclass(frozen=True)
class _Case:
    """One record's patient, condition and history, and the sources the sections draw their details from."""

    service: str
    cond: Condition
    full: bool
    person: Person
    pmh: list[str]
    labs: dict[str, str]  # admission values, quoted by the HPI and the course as well as the results
    fake: Faker
    rng: random.Random

    @property
    def words(self) -> _Words:
        return _WORDS[self.person.sex]

    @property
    def lab_names(self) -> tuple[str, ...]:
        """The admission labs shown: all of them, or in `compact` two basic ones and the specific ones."""
        labs = self.cond.labs
        return labs if self.full else labs[:2] + labs[len(BASIC):]

    @property
    def home_meds(self) -> list[str]:
        return [HISTORY[h] for h in (self.pmh if self.full else self.pmh[:1])]

    @property
    def course(self) -> str:
        return self.cond.course.format(Pr=self.words.pr.capitalize(), pr=self.words.pr, **self.labs)


def _fmt_date(d: dt.date) -> str:
    return d.strftime("%m/%d/%Y")


def _lab_value(rng: random.Random, name: str) -> str:
    _, lo, hi = LABS[name]
    v = rng.uniform(lo, hi)
    return f"{v:.0f}" if hi >= 100 else f"{v:.1f}" if hi >= 10 else f"{v:.2f}"


def _draw_case(fake: Faker, rng: random.Random, profile: str, sex: str | None, service: str | None) -> _Case:
    sex = sex or rng.choice(SEXES)
    service = service or rng.choice(services_for(sex))
    cond = rng.choice(conditions_for(service, sex))
    full = profile == "full"
    person = draw_person(fake, rng, sex, (cond.min_age, cond.max_age), ADMITTED, (1, 9 if full else 6),
                         HOSPITAL_KINDS)
    pmh = rng.sample(sorted(HISTORY), k=rng.randint(1, 4 if full else 2))
    labs = {n: _lab_value(rng, n) for n in cond.labs}
    return _Case(service, cond, full, person, pmh, labs, fake, rng)


def _header(d: _Doc, c: _Case) -> None:
    p = c.person
    d.line("Name: ", (p.name, "NAME:PATIENT"), "    Unit No: ", (p.mrn, "ID:MRN"))
    d.add(" \n")
    d.line("Admission Date: ", (_fmt_date(p.admit), "DATE"), "    Discharge Date: ", (_fmt_date(p.discharge), "DATE"))
    d.add(" \n")
    d.line("Date of Birth: ", (_fmt_date(p.dob), "DATE"), "    Sex: ", p.sex[0])
    d.add(" \n")
    d.line(f"Service: {c.service}")


def _allergies(d: _Doc, c: _Case) -> None:
    d.line(c.rng.choice(ALLERGIES))


def _attending(d: _Doc, c: _Case) -> None:
    d.line("" if c.full else "Dr. ", (c.person.attending, "NAME:DOCTOR"), ", MD" if c.full else "")


def _chief_complaint(d: _Doc, c: _Case) -> None:
    d.line(c.cond.complaint)


def _procedure(d: _Doc, c: _Case) -> None:
    d.line(c.cond.procedure)


def _hpi(d: _Doc, c: _Case) -> None:
    p, w, cond, rng = c.person, c.words, c.cond, c.rng
    d.line(f"{w.title} ", (p.last, "NAME:PATIENT"), " is a ", (str(p.age), "AGE"),
           f" year old {w.noun} with {', '.join(c.pmh)} who presented to ", (p.hospital, "LOCATION:HOSPITAL"),
           f" with {cond.complaint.lower()}.")
    if not c.full:
        return
    pr = w.pr.capitalize()
    pcp = doctor_name(c.fake)
    d.line(f"{pr} reports symptoms began {rng.randint(1, 5)} days prior to admission and "
           f"progressively worsened. {pr} was seen by {w.pos} primary care physician, Dr. ",
           (pcp, "NAME:DOCTOR"), f", who referred {w.obj} to the emergency department. In the ED, initial "
           f"vitals were T 98.6 HR {rng.randint(60, 115)} BP {rng.randint(100, 165)}/{rng.randint(55, 95)} "
           f"RR {rng.randint(12, 24)} O2 sat {rng.randint(90, 100)}% on room air. Labs were notable for "
           + ", ".join(f"{n} {c.labs[n]}" for n in cond.labs[len(BASIC):] or cond.labs[:2])
           + f". {pr} was admitted to the {c.service.lower()} service for further management.")
    d.line(f"On arrival to the floor, {w.pr} reported {cond.complaint.lower()} that was improved from "
           f"presentation. Review of systems: {ROS}")


def _pmh(d: _Doc, c: _Case) -> None:
    for h in c.pmh:
        d.line(f"- {h}")


def _social(d: _Doc, c: _Case) -> None:
    # The city is a PHI span, so the template is cut where it goes.
    before, after = c.rng.choice(SOCIAL).format(rel=c.rng.choice(RELATIVES), city="\0",
                                                job=c.fake.job().lower()).split("\0")
    d.line(before, (c.person.city, "LOCATION:CITY"), after if c.full else ".")


def _family(d: _Doc, c: _Case) -> None:
    d.line(c.rng.choice(FAMILY))


def _exam(d: _Doc, c: _Case) -> None:
    rng = c.rng
    if c.full:
        d.line(f"Vitals: T 98.{rng.randint(0, 9)} HR {rng.randint(58, 110)} BP {rng.randint(100, 160)}/"
               f"{rng.randint(55, 95)} O2 {rng.randint(92, 100)}% RA")
        d.line("ADMISSION EXAM:")
        for line in EXAM_SYSTEMS:
            d.line(line)
    d.line(c.cond.exam)
    if c.full:
        d.line("DISCHARGE EXAM:")
        d.line(f"Vitals: T 98.{rng.randint(0, 9)} HR {rng.randint(58, 95)} BP {rng.randint(100, 140)}/"
               f"{rng.randint(55, 85)} O2 {rng.randint(94, 100)}% RA")
        for line in EXAM_SYSTEMS[:7]:
            d.line(line)


def _results(d: _Doc, c: _Case) -> None:
    p, rng = c.person, c.rng
    d.line((_fmt_date(p.admit), "DATE"),
           f" {rng.choice(LAB_TIMES)} " + " ".join(f"{n}-{c.labs[n]}" for n in c.lab_names))
    if not c.full:
        return
    lab_day = p.admit + dt.timedelta(days=rng.randint(1, p.los))
    d.line((_fmt_date(lab_day), "DATE"), f" {rng.choice(LAB_TIMES)} BLOOD "
           + " ".join(f"{n}-{_lab_value(rng, n)}" for n in c.cond.labs))
    d.line("DISCHARGE LABS:")
    d.line((_fmt_date(p.discharge), "DATE"), f" {rng.choice(LAB_TIMES)} BLOOD "
           + " ".join(f"{n}-{_lab_value(rng, n)}" for n in BASIC))
    d.line("IMAGING:")
    d.line((_fmt_date(p.admit), "DATE"), " " + IMAGING.get(c.service, "CXR: No acute cardiopulmonary process."))


def _course(d: _Doc, c: _Case) -> None:
    p, w, cond = c.person, c.words, c.cond
    if not c.full:
        d.line(c.course.split(". ")[0].rstrip(".") + ".")
        return
    d.line(f"{w.title} ", (p.last, "NAME:PATIENT"), " is a ", (str(p.age), "AGE"),
           f" year old {w.noun} admitted with {cond.diagnosis.lower()}.")
    d.line(c.course)
    d.line(f"# {cond.diagnosis}: {w.pr.capitalize()} improved steadily and was discharged in stable condition "
           f"on hospital day {p.los + 1} with the medications listed below.")
    for h in c.pmh:
        d.line(f"# {h.capitalize()}: stable, home regimen ({HISTORY[h]}) continued without changes.")
    d.line("TRANSITIONAL ISSUES:")
    d.line("- Follow up with Dr. ", (p.attending, "NAME:DOCTOR"), " to review symptoms and repeat labs.")
    d.line("- Medication reconciliation performed; new medications are listed below.")
    d.line(f"- Code status: Full code. Contact: {c.rng.choice(RELATIVES)}, ", (p.phone, "CONTACT:PHONE"))


def _admission_meds(d: _Doc, c: _Case) -> None:
    for i, m in enumerate(c.home_meds, 1):
        d.line(f"{i}. {m}")


def _discharge_meds(d: _Doc, c: _Case) -> None:
    for i, m in enumerate(list(c.cond.meds if c.full else c.cond.meds[:2]) + c.home_meds, 1):
        d.line(f"{i}. {m}")


def _disposition(d: _Doc, c: _Case) -> None:
    d.line(c.rng.choice(DISPOSITIONS))


def _diagnosis(d: _Doc, c: _Case) -> None:
    d.line(f"{c.cond.diagnosis} ({c.cond.icd10})")


def _condition(d: _Doc, c: _Case) -> None:
    d.line("Mental Status: Clear and coherent. Level of Consciousness: Alert and interactive. "
           "Activity Status: Ambulatory - Independent." if c.full else "Stable, ambulatory.")


def _instructions(d: _Doc, c: _Case) -> None:
    p, title = c.person, c.words.title
    if not c.full:
        d.line(f"Dear {title} ", (p.last, "NAME:PATIENT"), ", call ", (p.phone, "CONTACT:PHONE"), " with concerns.")
        return
    d.line(f"Dear {title} ", (p.last, "NAME:PATIENT"), ",")
    d.line("You were admitted to ", (p.hospital, "LOCATION:HOSPITAL"),
           f" for {c.cond.diagnosis.lower()}. While you were here, {c.course.split('. ')[0].lower()}"
           ". Please take your medications as prescribed and call ", (p.phone, "CONTACT:PHONE"),
           " with any concerns.")
    d.line(WARNINGS)
    d.line("It was a pleasure taking care of you.")
    d.line("Your ", c.rng.choice(("Cardiology", "Medicine", "Surgery")), " Care Team")


def _followup(d: _Doc, c: _Case) -> None:
    p, rng, fake = c.person, c.rng, c.fake
    fu = p.discharge + dt.timedelta(days=rng.randint(5, 21))
    d.line("Dr. ", (p.attending, "NAME:DOCTOR"), " on ", (_fmt_date(fu), "DATE"),
           f" at {rng.randint(8, 16)}:{rng.choice(('00', '15', '30', '45'))}")
    if not c.full:
        return
    d.line("Location: ", (fake.street_address(), "LOCATION:STREET"), ", ", (p.city, "LOCATION:CITY"), ", ",
           (fake.state_abbr(include_territories=False), "LOCATION:STATE"), " ", (fake.zipcode(), "LOCATION:ZIP"),
           "  Phone: ", (p.phone, "CONTACT:PHONE"))
    pcp = doctor_name(fake)
    d.line("Primary care: Dr. ", (pcp, "NAME:DOCTOR"), " on ",
           (_fmt_date(fu + dt.timedelta(days=rng.randint(1, 14))), "DATE"),
           f" at {rng.randint(8, 16)}:{rng.choice(('00', '30'))}  Phone: ", (phone_number(fake), "CONTACT:PHONE"))


# The sections in record order (constants.SECTION_HEADINGS), each under its heading.
_SECTIONS: tuple[tuple[str, Callable[[_Doc, _Case], None]], ...] = (
    ("Allergies", _allergies),
    ("Attending", _attending),
    ("Chief Complaint", _chief_complaint),
    ("Major Surgical or Invasive Procedure", _procedure),
    ("History of Present Illness", _hpi),
    ("Past Medical History", _pmh),
    ("Social History", _social),
    ("Family History", _family),
    ("Physical Exam", _exam),
    ("Pertinent Results", _results),
    ("Brief Hospital Course", _course),
    ("Medications on Admission", _admission_meds),
    ("Discharge Medications", _discharge_meds),
    ("Discharge Disposition", _disposition),
    ("Discharge Diagnosis", _diagnosis),
    ("Discharge Condition", _condition),
    ("Discharge Instructions", _instructions),
    ("Followup Instructions", _followup),
)


def build_record(fake: Faker, rng: random.Random, profile: str, sex: str | None = None,
                 service: str | None = None) -> Record:
    """One record with one identity; `compact` keeps every heading but one short line under each."""
    c = _draw_case(fake, rng, profile, sex, service)
    d = _Doc()
    _header(d, c)
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
