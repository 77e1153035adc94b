"""Several institutions' discharge-summary layouts over one drawn case.

A layout is a row of `record_format.STYLES` (its header labels, its section headings in its order) plus how it is
written: the header block, how a heading sits (on its own line, or with its text after it on the same line), which
sections run as prose, and how it ends (a signature, a cc list). The section writers (`sections/`) are shared;
`extras` adds the PHI real notes carry beyond the stock sections, more of it in a dense note; a messy note gets
abbreviations and typos in its plain text, never in its PHI values, headings or header labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from medgen.data.identity import doctor_name
from medgen.data.phi import places
from medgen.data.record_format import BY_NAME, Style
from medgen.data.synthetic import people
from medgen.data.synthetic.case import WHOLE, Case, body_date, phone
from medgen.data.synthetic.sections import extras
from medgen.data.synthetic.sections.course import course
from medgen.data.synthetic.sections.discharge import (
    admission_meds,
    condition,
    diagnosis,
    discharge_meds,
    disposition,
    followup,
    instructions,
    med_table,
)
from medgen.data.synthetic.sections.findings import exam, lab_table, results
from medgen.data.synthetic.sections.header import allergies, attending, chief_complaint, header, procedure
from medgen.data.synthetic.sections.history import family, hpi, pmh, social
from medgen.data.synthetic.text import Doc

Writer = Callable[[Doc, Case], None]
# A date of birth's year needs its century.
FOUR_DIGIT_YEAR = tuple(f for f in WHOLE if "YYYY" in f)

WRITERS: dict[str, Writer] = {
    "Allergies": allergies, "Attending": attending, "Chief Complaint": chief_complaint,
    "Major Surgical or Invasive Procedure": procedure, "History of Present Illness": hpi,
    "Past Medical History": pmh, "Social History": social, "Family History": family, "Physical Exam": exam,
    "Pertinent Results": results, "Brief Hospital Course": course, "Medications on Admission": admission_meds,
    "Discharge Medications": discharge_meds, "Discharge Disposition": disposition,
    "Discharge Diagnosis": diagnosis, "Discharge Condition": condition, "Discharge Instructions": instructions,
    "Followup Instructions": followup,
}
# What follows a section beyond its bank of mentions (extras.MENTIONS), and how likely (scaled by density).
EXTRAS: dict[str, tuple[Writer, float]] = {
    "Followup Instructions": (extras.contacts, 0.4),
}
# Where a messy note's abbreviations and typos go: the narrative, not the lists and diagnoses other checks read.
NOISY = {"History of Present Illness", "Brief Hospital Course", "Social History", "Family History",
         "Discharge Instructions", "Physical Exam", "Discharge Disposition"}
PROSE = {"History of Present Illness", "Brief Hospital Course", "Social History", "Family History",
         "Discharge Instructions", "Chief Complaint", "Discharge Condition", "Discharge Disposition"}


@dataclass(frozen=True)
class Layout:
    style: Style
    weights: tuple[float, float]  # how often, in `full` and in `compact` notes
    header: Writer
    inline: bool  # a heading's text starts on its line ("HOSPITAL COURSE: The patient ...")
    prose: frozenset[str] = frozenset()  # sections written as run-on paragraphs
    sign: Writer | None = None
    writers: dict[str, Writer] | None = None  # the layout's own writers for some sections

    @property
    def name(self) -> str:
        return self.style.name


# --- header blocks -----------------------------------------------------------------------------------------------

def _stamp(c: Case, day, forms: tuple[str, ...] = WHOLE) -> tuple[str, str]:
    """A header date: in the note's own main form where that names the whole date (MIMIC's own header keeps
    MM/DD/YYYY)."""
    return (body_date(c, day, forms), "DATE")


def _label_line(d: Doc, style: Style, *pairs) -> None:
    """A header line of labelled values, two or more spaces apart (how `header_value` reads them)."""
    out: list = []
    for i, (field, value) in enumerate(pairs):
        out += (["    "] if i else []) + [f"{style.fields.get(field, field)}: ", *(value if isinstance(value, list)
                                                                                     else [value])]
    d.line(*out)


def _narrative_header(d: Doc, c: Case) -> None:
    s, p = BY_NAME["narrative"], c.person
    d.line(c.pick(("DISCHARGE SUMMARY", "Discharge Summary", "DISCHARGE SUMMARY - FINAL")))
    d.add("\n")
    name = people.listed(c, p.name) if c.chance(0.7) else (p.name.upper(), "NAME:PATIENT")
    _label_line(d, s, ("Name", name), ("Unit No", (p.mrn, "ID:MEDICALRECORD")))
    _label_line(d, s, ("Admission Date", _stamp(c, p.admit)),
                ("Discharge Date", _stamp(c, p.discharge)))
    _label_line(d, s, ("Date of Birth", _stamp(c, p.dob, FOUR_DIGIT_YEAR)), ("Sex", p.sex.upper() if c.chance(0.5) else p.sex))
    _label_line(d, s, ("Service", c.service))
    d.line("ATTENDING PHYSICIAN: ", *people.doctor(c, c.person.attending, titled=False))
    if c.chance(0.5):
        d.line("PRIMARY CARE PHYSICIAN: ", *people.doctor(c, c.pcp, titled=False))


def _va_header(d: Doc, c: Case) -> None:
    s, p = BY_NAME["va"], c.person
    d.line(c.pick(("DISCHARGE SUMMARY", "                    DISCHARGE SUMMARY", "*** DISCHARGE SUMMARY ***")))
    first, last = people.split(p.name)
    _label_line(d, s, ("Name", (f"{last.upper()},{first.upper()}", "NAME:PATIENT")),
                ("Unit No", (p.mrn, "ID:MEDICALRECORD")))
    _label_line(d, s, ("Admission Date", _stamp(c, p.admit)),
                ("Discharge Date", _stamp(c, p.discharge)))
    _label_line(d, s, ("Date of Birth", _stamp(c, p.dob, FOUR_DIGIT_YEAR)), ("Sex", p.sex.upper()),
                ("AGE", (str(p.age), "AGE")))
    _label_line(d, s, ("Service", c.service))
    d.line("WARD: ", people.department(c), "    ROOM-BED: ", people.room(c))


def _community_header(d: Doc, c: Case) -> None:
    s, p = BY_NAME["community"], c.person
    d.line((p.hospital, "LOCATION:HOSPITAL"), c.pick((" - Discharge Summary", "", " Discharge Summary")))
    _label_line(d, s, ("Name", (p.name, "NAME:PATIENT")), ("Unit No", (p.mrn, "ID:MEDICALRECORD")),
                ("Date of Birth", (body_date(c, p.dob, FOUR_DIGIT_YEAR), "DATE")), ("Sex", p.sex[0]))
    _label_line(d, s, ("Admission Date", (body_date(c, p.admit, WHOLE), "DATE")),
                ("Discharge Date", (body_date(c, p.discharge, WHOLE), "DATE")), ("Service", c.service.title()))
    d.line("Attending: ", *people.doctor(c, p.attending), "    PCP: ", *people.doctor(c, c.pcp))


def _letter_header(d: Doc, c: Case) -> None:
    s, p = BY_NAME["letter"], c.person
    d.line((p.hospital, "LOCATION:HOSPITAL"))
    if c.full or c.chance(0.3):
        d.line(people.department(c), ", ", (places.street(c.rng), "LOCATION:STREET"), ", ",
               (p.city, "LOCATION:CITY"), ", ", *people.state_zip(c))
    d.line("Tel ", (phone(c), "CONTACT:PHONE"), *(["   Fax ", (phone(c), "CONTACT:FAX")] if c.full or c.chance(0.3) else []))
    d.add("\n")
    d.line((body_date(c, p.discharge, ("Month D, YYYY", "MM/DD/YYYY", "D Month YYYY")), "DATE"))
    d.add("\n")
    d.line(*people.doctor(c, c.pcp, titled=False))
    d.line((places.clinic(c.rng), "LOCATION:HOSPITAL"))
    if c.full or c.chance(0.4):
        town = places.city(c.rng)
        d.line((places.street(c.rng), "LOCATION:STREET"))
        d.line((town.name, "LOCATION:CITY"), ", ", (town.state, "LOCATION:STATE"), " ",
               (places.zip_code(c.rng, town.zip), "LOCATION:ZIP"))
    d.add("\n")
    _label_line(d, s, ("Name", (p.name, "NAME:PATIENT")), ("Date of Birth", _stamp(c, p.dob, FOUR_DIGIT_YEAR)),
                ("Unit No", (p.mrn, "ID:MEDICALRECORD")))
    _label_line(d, s, ("Admission Date", _stamp(c, p.admit)),
                ("Discharge Date", _stamp(c, p.discharge)))
    _label_line(d, s, ("Sex", p.sex), ("Service", c.service.title()))
    d.add("\n")
    d.line("Dear Dr. ", (people.split(c.pcp)[1], "NAME:DOCTOR"), ",")
    d.add("\n")
    d.line(*c.fill(c.pick((
        "Thank you for allowing us to participate in the care of {your patient|our mutual patient} {name}, "
        "{art} {age}-year-old {noun} who was admitted to {hospital} on {admit} and discharged on {discharge}.",
        "I am writing to update you on {name}, {art} {age} y/o {noun}, who was hospitalized at {hospital} from "
        "{admit} to {discharge}.",
        "{title} {last} ({age}{letter}) was discharged from our service on {discharge} after an admission that "
        "began on {admit}.")), admit=(body_date(c, p.admit, WHOLE), "DATE"),
        discharge=(body_date(c, p.discharge, WHOLE), "DATE"), letter=c.words.letter))


def _tabular_header(d: Doc, c: Case) -> None:
    s, p = BY_NAME["tabular"], c.person
    _label_line(d, s, ("Name", (p.name, "NAME:PATIENT")), ("Unit No", (p.mrn, "ID:MEDICALRECORD")))
    _label_line(d, s, ("Admission Date", _stamp(c, p.admit)),
                ("Discharge Date", _stamp(c, p.discharge)), ("Date of Birth", _stamp(c, p.dob, FOUR_DIGIT_YEAR)))
    _label_line(d, s, ("Sex", p.sex[0]), ("Service", c.service), ("Unit", people.department(c)),
                ("Room", people.room(c)))


# --- endings --------------------------------------------------------------------------------------------------

def _letter_sign(d: Doc, c: Case) -> None:
    p = c.person
    d.add("\n")
    d.line(*c.pick((["Please do not hesitate to contact me at ", (phone(c), "CONTACT:PHONE"), " with any questions."],
                    ["I can be reached at ", (phone(c), "CONTACT:PHONE"), " or by pager ", extras.pager(c), "."],
                    ["Thank you for this referral."])))
    d.line(c.pick(("Sincerely,", "Best regards,", "Yours sincerely,", "With kind regards,")))
    d.add("\n")
    d.line(*people.doctor(c, p.attending, titled=False))
    d.line(c.pick(("Attending Physician", "Hospitalist", "Staff Physician")), ", ", (p.hospital, "LOCATION:HOSPITAL"))
    if c.chance(0.7):
        d.line("cc: ", *people.doctor(c, doctor_name(c.fake)), "; ", (places.organization(c.rng),
                                                                            "LOCATION:ORGANIZATION"))


LAYOUTS: tuple[Layout, ...] = (
    Layout(BY_NAME["mimic"], (0.34, 0.3), header, inline=False),
    Layout(BY_NAME["narrative"], (0.2, 0.16), _narrative_header, inline=True, prose=frozenset(PROSE),
           sign=extras.signature),
    Layout(BY_NAME["va"], (0.14, 0.14), _va_header, inline=False,
           sign=lambda d, c: extras.signature(d, c, caps=True)),
    Layout(BY_NAME["community"], (0.12, 0.16), _community_header, inline=True, prose=frozenset(PROSE)),
    Layout(BY_NAME["letter"], (0.1, 0.12), _letter_header, inline=True, prose=frozenset(PROSE), sign=_letter_sign),
    Layout(BY_NAME["tabular"], (0.1, 0.12), _tabular_header, inline=False, sign=extras.signature,
           writers={"Pertinent Results": lab_table, "Discharge Medications": med_table}),
)
BY_LAYOUT = {layout.name: layout for layout in LAYOUTS}


def draw(c: Case, among: Sequence[str] | None = None) -> Layout:
    """A layout by the profile's weights, among the named ones where `among` is given."""
    column = 0 if c.full else 1
    pool = [layout for layout in LAYOUTS if among is None or layout.name in among]
    return c.rng.choices(pool, [layout.weights[column] for layout in pool])[0]


def write(c: Case, layout: Layout) -> Doc:
    """The case written in `layout`: header, each section with its mentions and extras (a messy note's noise in its
    narrative), the ending and now and then an addendum."""
    d = Doc()
    layout.header(d, c)
    for canonical, heading in layout.style.headings.items():
        if layout.inline:
            d.fixed(f"\n{heading}: ")
        elif layout.name == "mimic":
            d.fixed(f" \n{heading}:\n")
        else:
            d.fixed(f"\n{heading}:\n")
        start = d.mark()
        (layout.writers or {}).get(canonical, WRITERS[canonical])(d, c)
        extras.mentions(d, c, canonical)
        extra = EXTRAS.get(canonical)
        if extra and c.chance(extra[1] * (0.3 + c.density) * (1.0 if c.full else 0.6)):
            extra[0](d, c)
        if c.messy > 0.25 and canonical in NOISY:
            d.rewrite(start, plain=lambda t: _noise(c, t))
        if canonical in layout.prose:
            d.rewrite(start, plain=_run_on)
            d.add("\n")
    # A compact note must fit one training row: its ending and addendum are rarer.
    if layout.sign is not None and (c.full or c.chance(0.3 + 0.4 * c.density)):
        layout.sign(d, c)
    if c.chance((0.08 + 0.2 * c.density) * (1.0 if c.full else 0.3)):
        extras.addendum(d, c)
    return d


def _run_on(text: str) -> str:
    """Lines run together as dictated prose (same length: each newline becomes a space)."""
    return text.replace("\n", " ")


_ABBREVIATIONS = {"patient": "pt", "Patient": "Pt", "with": "w/", "without": "w/o", "history of": "h/o",
                  "status post": "s/p", "follow up": "f/u", "follow-up": "f/u", "bilateral": "b/l",
                  "secondary to": "2/2", "treatment": "tx", "diagnosis": "dx", "symptoms": "sx", "hours": "hrs",
                  "weeks": "wks", "minutes": "mins", "shortness of breath": "SOB", "chest pain": "CP",
                  "nausea and vomiting": "N/V", "emergency department": "ED", "blood pressure": "BP"}
_ABBREVIATION_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _ABBREVIATIONS), key=len, reverse=True)) + r")\b")
# Words the consistency checks read beside PHI ("length of stay", "admission", "discharge"): never misspelt (only
# lower-case words of six letters or more are).
_KEEP = re.compile(r"^(?:admission|discharge|length)$")


def _noise(c: Case, text: str) -> str:
    """A messy note's plain text: abbreviations, and now and then a typo in a long word."""
    level = c.messy
    text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m[1]] if c.chance(0.6 * level) else m[1], text)

    def typo(m: re.Match) -> str:
        word = m.group()
        if _KEEP.match(word) or not c.chance(0.04 * level):
            return word
        i = c.rng.randint(1, len(word) - 2)
        kind = c.rng.random()
        if kind < 0.4:
            return word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if kind < 0.7:
            return word[:i] + word[i + 1:]
        return word[:i] + word[i] + word[i:]

    return re.sub(r"\b[a-z]{6,}\b", typo, text)
