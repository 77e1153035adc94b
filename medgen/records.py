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

import datetime as dt
import functools
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple, Sequence

from faker import Faker

from medgen.clinical import (ALLERGIES, BASIC, COMPLICATIONS, DISPOSITIONS, EXCLUSIVE, HISTORY, LABS, NO_ALLERGIES,
                             PANELS, Complication, Condition, History, Med, conditions_for, histories_for,
                             icd10_description, med, services_for)
from medgen.constants import SEXES
from medgen.identity import Person, doctor_name, draw_person, phone_number

ADMITTED = (dt.date(2015, 1, 1), dt.date(2025, 12, 31))
HOSPITAL_KINDS = ("Memorial Hospital", "Medical Center", "General Hospital", "Regional Medical Center",
                  "Community Hospital", "University Hospital", "Hospital")

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

    def pieces(self, pieces: Sequence) -> None:
        for p in pieces:
            if isinstance(p, tuple):
                self.phi(*p)
            else:
                self.add(p)

    def line(self, *pieces) -> None:
        self.pieces(pieces)
        self.add("\n")

    def heading(self, name: str) -> None:
        self.add(f" \n{name}:\n")

    def text(self) -> str:
        return "".join(self.parts)


class _Words(NamedTuple):
    """How the text refers to the patient."""

    title: str
    pr: str
    pos: str
    noun: str
    letter: str
    spouse: str


_WORDS = {"Male": _Words("Mr.", "he", "his", "man", "M", "wife"),
          "Female": _Words("Ms.", "she", "her", "woman", "F", "husband")}

_FIELD_RE = re.compile(r"\{([^{}]+)\}")
_RANGE_RE = re.compile(r"(\d+)(?:\.(\d+))?-(\d+(?:\.\d+)?)")


@dataclass
class _Case:
    """One record's patient, condition, history and stay, how its note is written, and the sources the sections
    draw their details from."""

    service: str
    cond: Condition
    full: bool
    person: Person
    pmh: list[History]
    home: list[str]  # home medications, one regimen per comorbidity
    labs: dict[str, str]  # admission values, quoted by the HPI and the course as well as the results
    fake: Faker
    rng: random.Random
    detail: float = 0.0  # 0..1: how much a `full` note writes (optional sub-sections, exam, labs, course)
    abbrev: bool = False  # PMH and the like as abbreviations
    bullets: str = "- "  # list style: "- ", "* " or "" (numbered)
    complications: list[Complication] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)
    course: list[str] = field(default_factory=list)  # the condition's course, exam and imaging, filled once
    exam: str = ""
    imaging: str = ""
    complaint: str = ""
    followup: dt.date = dt.date.min  # the first follow-up visit
    vocab: dict = field(default_factory=dict)

    @property
    def terse(self) -> bool:
        """The sparsest `full` notes (about one in fifteen): one line where others write a block."""
        return self.full and self.detail < 0.1

    @property
    def words(self) -> _Words:
        return _WORDS[self.person.sex]

    def fill(self, template: str, **fields) -> list:
        """`template` as pieces: {name} from `fields`, the patient's words or lab values, {a-b} a number in
        that range, {x|y|z} one of the words (an alternative may be empty)."""
        parts = _FIELD_RE.split(template)
        out: list = []
        for i, part in enumerate(parts):
            if not i % 2:
                if part:
                    out.append(part)
            elif "|" in part:
                choice = self.pick(part.split("|"))
                if choice:
                    out.append(choice)
            elif part in fields:
                out.append(fields[part])
            elif part in self.vocab:
                out.append(self.vocab[part])
            elif part in self.labs:
                out.append(self.labs[part])
            else:
                out.append(_draw_range(self.rng, part))
        return out

    def text(self, template: str, **fields) -> str:
        """`fill` for templates without PHI."""
        return "".join(self.fill(template, **fields))

    def pick(self, options: Sequence):
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


# Phrases of the clinical tables that notes word several ways: each occurrence is reworded independently.
_PARAPHRASES = {
    "was started on": ("was started on", "was begun on", "was initiated on", "was placed on"),
    "underwent": ("underwent", "had", "was taken for"),
    "was treated with": ("was treated with", "received", "was managed with", "was given"),
    "showed": ("showed", "demonstrated", "revealed"),
    "was transitioned to": ("was transitioned to", "was switched to", "was changed to", "was converted to"),
    "remained": ("remained", "stayed"),
    "resolved": ("resolved", "abated", "cleared"),
    "was removed": ("was removed", "was pulled", "was discontinued"),
    "without complication": ("without complication", "without complications", "uneventfully", "without incident"),
    "consistent with": ("consistent with", "compatible with", "in keeping with"),
    "was continued": ("was continued", "was maintained"),
    "was arranged": ("was arranged", "was set up", "was scheduled"),
    "postoperative day": ("postoperative day", "POD", "post-op day"),
    "hospital day": ("hospital day", "HD"),
    "on presentation": ("on presentation", "on admission", "at presentation"),
    "IV": ("IV", "intravenous"),
    "was negative": ("was negative", "was unrevealing"),
    "was consulted": ("was consulted", "was involved", "followed along"),
    "was given": ("was given", "received"),
    "were drawn": ("were drawn", "were sent", "were obtained"),
    "was checked": ("was checked", "was measured", "was rechecked"),
    "was started": ("was started", "was begun", "was initiated"),
}
_PARAPHRASE_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _PARAPHRASES), key=len, reverse=True)) + r")\b")


def _vary(c: _Case, text: str) -> str:
    """`text` with each stock phrase reworded at random."""
    return _PARAPHRASE_RE.sub(lambda m: c.pick(_PARAPHRASES[m[1]]), text)


def _draw_range(rng: random.Random, spec: str) -> str:
    m = _RANGE_RE.fullmatch(spec)
    if not m:
        raise KeyError(f"template field {{{spec}}}: not a patient word, lab or range")
    if m[2] is None:
        return str(rng.randint(int(m[1]), int(float(m[3]))))
    return f"{rng.uniform(float(m[1] + '.' + m[2]), float(m[3])):.{len(m[2])}f}"


def _fmt_date(d: dt.date) -> str:
    return d.strftime("%m/%d/%Y")


def _body_date(c: _Case, d: dt.date) -> str:
    """A date inside the note, in one of the forms notes use."""
    form = c.rng.random()
    if form < 0.7:
        return _fmt_date(d)
    if form < 0.85:
        return f"{d.month}/{d.day}"
    if form < 0.93:
        return d.isoformat()
    return f"{d:%B} {d.day}, {d.year}"


@functools.lru_cache(maxsize=None)
def _lab_ranges(cond: Condition) -> dict[str, tuple[float, float]]:
    out = {}
    for spec in cond.labs:
        name, _, rng = spec.partition(" ")
        if rng:
            lo, _, hi = rng.partition("-")
            out[name] = (float(lo), float(hi))
    return out


@functools.lru_cache(maxsize=None)
def _lab_names(cond: Condition) -> tuple[str, ...]:
    return tuple(spec.split(" ")[0] for spec in cond.labs)


def _lab_value(rng: random.Random, name: str, lo: float | None = None, hi: float | None = None) -> str:
    lab = LABS[name]
    v = rng.uniform(lab.lo if lo is None else lo, lab.hi if hi is None else hi)
    return f"{v:.{lab.decimals}f}"


@functools.lru_cache(maxsize=None)
def _drugs_named(cond: Condition) -> str:
    """Every word of the condition's medications and course, to keep allergies off what the patient gets."""
    return " ".join([*cond.meds, *cond.course]).lower()


def _article(word: str) -> str:
    """'a' or 'an' before `word` as spoken ("an 88 year old", "an engineer")."""
    return "an" if word[:1].lower() in "aeiou8" or word in ("11", "18") else "a"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


_PROPER = ("Guillain", "Crohn", "Fournier", "Helicobacter", "Escherichia", "Clostridioides", "Streptococcus",
           "Staphylococcus", "Proteus", "Enterococcus", "Kussmaul", "Murphy", "McBurney", "Hoffmann", "Kernig")


def _lower_first(text: str) -> str:
    """'Chest pain' -> 'chest pain', but 'PSA elevated' and 'Crohn's ileitis' stay."""
    if len(text) < 2 or text[1].isupper() or text.startswith(_PROPER):
        return text
    return text[0].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str], conj: str = "and") -> str:
    items = list(items)
    if len(items) <= 2:
        return f" {conj} ".join(items)
    return ", ".join(items[:-1]) + f", {conj} " + items[-1]


# --- drawing the case ------------------------------------------------------------------------------------

def _stay_days(rng: random.Random, cond: Condition, detail: float | None) -> tuple[int, int]:
    """The range draw_person draws the stay from: right-skewed (median near 4 days, as in MIMIC), longer after an
    operation, and longer for a more detailed note, since long stays make long notes."""
    if detail is None:
        return 1, 6
    return 1, 3 + round(16 * detail * rng.random()) + (2 if cond.surgical else 0)


def _draw_history(rng: random.Random, cond: Condition, sex: str, age: int, detail: float | None) -> list[History]:
    """The comorbidities of a `full` note of `detail`, or of a `compact` one (None): at most two."""
    possible = histories_for(sex, age)
    chosen: list[str] = [h for h in cond.needs if h in possible]
    listed = 0.6 if detail is None else 0.3 + 0.5 * detail  # a terse note lists less of the history
    chosen += [h for h in cond.history if h in possible and h not in chosen and rng.random() < listed]
    # Older patients carry more comorbidities, as they do in MIMIC.
    extra = rng.randint(0, round((1 + age // 25) * (0.3 + detail))) if detail is not None else rng.randint(1, 2)
    for name in rng.sample(possible, k=min(extra, len(possible))):
        if name not in chosen and not any(name in ex and set(chosen) & ex for ex in EXCLUSIVE):
            chosen.append(name)
    if detail is None:
        chosen = chosen[:2]
    return [HISTORY[n] for n in chosen]


def _home_meds(rng: random.Random, pmh: list[History]) -> list[str]:
    meds: list[str] = []
    seen: set[str] = set()
    for h in pmh:
        for m in rng.choice(h.regimens):
            if med(m).name not in seen:
                seen.add(med(m).name)
                meds.append(m)
    return meds


def _draw_allergies(c: _Case) -> list[str]:
    used = " ".join([_drugs_named(c.cond), *c.home, *(comp.course for comp in c.complications)]).lower()
    safe = [a for a, drugs in ALLERGIES.items() if not any(d in used for d in drugs)]
    k = c.rng.choice((0, 0, 0, 1, 1, 2, 3)) if c.full else c.rng.choice((0, 1))
    return c.rng.sample(safe, k=min(k, len(safe)))


def _tolerated(c: _Case, pieces: Sequence) -> bool:
    """Whether a sentence names no drug the patient is allergic to (sentences drawn after the allergies are)."""
    text = "".join(p for p in pieces if isinstance(p, str)).lower()
    return not any(drug in text for a in c.allergies for drug in ALLERGIES[a])


def _draw_complications(c: _Case) -> list[Complication]:
    los, out = c.person.los, []
    for comp in COMPLICATIONS:
        if los >= comp.min_stay and comp.surgical in (None, c.cond.surgical) and \
                c.chance(0.012 * los * (0.3 + c.detail)):
            out.append(comp)
    return out[:3]


def _body_size(rng: random.Random, sex: str, obese: bool, cond: Condition) -> dict[str, str]:
    """Height (in), BMI and weights (kg) on admission and at discharge, one body for every mention."""
    height = rng.randint(63, 76) if sex == "Male" else rng.randint(58, 70)
    bmi = rng.uniform(30.5, 44.0) if obese else rng.uniform(18.5, 29.9)
    weight = bmi * (height * 0.0254) ** 2
    # A diuresed patient leaves several kilograms lighter.
    lost = rng.uniform(3.0, 8.0) if "diures" in _drugs_named(cond) else rng.uniform(-0.5, 2.5)
    return {"ht": str(height), "bmi": f"{bmi:.1f}", "wt": f"{weight:.1f}", "dwt": f"{weight - lost:.1f}"}


def _draw_case(fake: Faker, rng: random.Random, profile: str, sex: str | None, service: str | None) -> _Case:
    sex = sex or rng.choice(SEXES)
    service = service or rng.choice(services_for(sex))
    cond = rng.choice(conditions_for(service, sex))
    full = profile == "full"
    # How much the note writes, drawn first: the stay and the history it lists depend on it.
    detail = rng.random() ** 0.85 if full else 0.0
    person = draw_person(fake, rng, sex, (cond.min_age, cond.max_age), ADMITTED,
                         _stay_days(rng, cond, detail if full else None), HOSPITAL_KINDS)
    pmh = _draw_history(rng, cond, sex, person.age, detail if full else None)
    home = _home_meds(rng, pmh)
    ranges = _lab_ranges(cond)
    labs = {n: _lab_value(rng, n, *ranges.get(n, (None, None))) for n in (*BASIC, *_lab_names(cond))}
    c = _Case(service, cond, full, person, pmh, home, labs, fake, rng, detail)
    w = c.words
    c.vocab = {"Pr": w.pr.capitalize(), "pr": w.pr, "pos": w.pos, "title": w.title, "noun": w.noun,
               "last": (person.last, "NAME:PATIENT"), "age": (str(person.age), "AGE"),
               "hospital": (person.hospital, "LOCATION:HOSPITAL"), "art": _article(str(person.age)),
               **_body_size(rng, sex, any(h.name == "obesity" for h in pmh), cond)}
    if full:
        c.abbrev = rng.random() < 0.4
        c.bullets = rng.choice(("- ", "- ", "* ", ""))
        c.complications = _draw_complications(c)
    c.allergies = _draw_allergies(c)
    c.course = [c.text(_vary(c, s)) for s in cond.course]
    c.exam, c.imaging = c.text(cond.exam), c.text(cond.imaging)
    c.complaint = rng.choice(cond.complaints) if full else cond.complaints[0]
    c.followup = person.discharge + dt.timedelta(days=rng.randint(5, 21))
    return c


# --- header and short sections ---------------------------------------------------------------------------

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
    if c.allergies:
        d.line(" / ".join(c.allergies))
    else:
        d.line(c.pick(NO_ALLERGIES) if c.full else NO_ALLERGIES[0])


def _attending(d: _Doc, c: _Case) -> None:
    name = (c.person.attending, "NAME:DOCTOR")
    if not c.full:
        d.line("Dr. ", name)
    else:
        d.line(*c.pick(((name, ", MD"), (name, ", MD"), (name,), ("Dr. ", name), (name, ", M.D."))))


def _chief_complaint(d: _Doc, c: _Case) -> None:
    d.line(_lower_first(c.complaint) if c.full and c.chance(0.2) else c.complaint)


def _procedure_dates(c: _Case) -> list[dt.date]:
    p = c.person
    first = p.admit + dt.timedelta(days=min(p.los, c.rng.randint(0, 2)))
    return [min(first + dt.timedelta(days=i), p.discharge) for i in range(len(c.cond.procedures))]


def _procedure(d: _Doc, c: _Case) -> None:
    procs = c.cond.procedures
    if not procs:
        d.line(c.pick(("None", "None", "None.", "none")) if c.full else "None")
        return
    if not c.full:
        d.line(procs[0])
        return
    dated = c.chance(0.4)
    for when, proc in zip(_procedure_dates(c), procs):
        if dated:
            d.line(f"{c.bullets or '- '}", (_body_date(c, when), "DATE"), f": {proc}")
        else:
            d.line(f"{c.bullets}{proc}" if len(procs) > 1 else proc)
    if c.person.los >= 6 and c.chance(0.3):
        d.line(c.bullets + c.pick(("PICC line placement", "Central venous catheter placement",
                                   "Arterial line placement")))


# --- history -----------------------------------------------------------------------------------------------

def _pmh_words(c: _Case) -> list[str]:
    return [h.short if c.abbrev else h.name for h in c.pmh]


_HPI_OPENERS = (
    "{title} {last} is {art} {age} year old {noun} with {history} who {presents|presented} to {hospital} with "
    "{complaint}.",
    "{title} {last} is {art} {age} year old {noun} with a {past medical history|history|PMH} {of|significant "
    "for|notable for} {history} who presented to {hospital} with {complaint}.",
    "{title} {last} is {art} {age}-year-old {noun} with {history} who was brought to the {hospital} {emergency "
    "department|ED} {with|for} {complaint}.",
    "{age}-year-old {noun} with {history} {presenting|who presents} to {hospital} with {complaint}.",
    "Pt is {art} {age} y/o {letter} w/ {history} who p/w {complaint} to {hospital}.",
    "This is {art} {age} yo {noun} with PMH {notable for|significant for|of} {history} who presented to {hospital} "
    "with {complaint}.",
    "{title} {last} is {art} {age} yo {noun} {with a history of|with|with PMH of} {history}, {referred|sent} to "
    "{hospital} {for|with} {complaint}.",
)
_COMPACT_HPI = ("{title} {last} is {art} {age} year old {noun} with {history} who presented to {hospital} with "
                "{complaint}.")
_ONSET = (
    "{Pr} {reports|states|says} that {symptoms|this} began {n} prior to admission and "
    "{progressively|steadily|gradually} {worsened|got worse}.",
    "Symptoms started {n} ago and have been {getting worse|worsening|progressive}.",
    "{Pr} was in {pos} usual state of health until {n} before admission, when {pr} {noticed|developed|began having} "
    "{complaint}.",
    "Per {pos} {relative}, {pr} had been {more fatigued|less active|more withdrawn|eating less} for about {n} before "
    "presentation.",
    "Onset was {n} ago; {pr} tried {rest|ibuprofen|acetaminophen|over-the-counter medications} {without|with only "
    "minimal} relief.",
    "{Pr} describes {complaint} that started {n} prior, {intermittent at first and then constant|worse with "
    "activity|waxing and waning}.",
    "{Pr} {first|initially} noticed symptoms {n} ago {while at work|at home|after dinner|on waking|while walking}.",
    "{Pr} was {well|feeling well|at baseline} until {onset}, when {pr} {developed|noticed} {complaint}.",
    "Symptoms began on {onset} {in the morning|in the evening|overnight|around midday}.",
)
_ASSOCIATED = (
    "{Pr} also {endorses|reports|notes} {a} and {b}.", "Associated symptoms include {a} and {b}.",
    "{Pr} {notes|endorses|reports} {a}, but denies {c}.", "{Pr} denies {c} {or|and} {d}.", "+{a}, +{b}, no {c}.",
    "{Review of systems|ROS} is {notable|significant} for {a}; {pr} denies {c} and {d}.",
    "{Pr} {has had|reports} {a} {but|and} no {c} or {d}.",
)
_SYMPTOMS = ("fatigue", "poor appetite", "nausea", "chills", "night sweats", "lightheadedness", "poor sleep",
             "decreased oral intake", "generalized weakness", "myalgias", "a mild headache", "constipation",
             "dyspnea on exertion", "a 5 lb weight loss", "low-grade temperatures at home", "palpitations",
             "anorexia", "diaphoresis", "dizziness on standing", "malaise")
_NEGATIVES = ("fevers", "chest pain", "shortness of breath", "abdominal pain", "dysuria", "diarrhea",
              "melena", "hematochezia", "focal weakness", "vision changes", "cough", "leg swelling",
              "recent travel", "sick contacts", "rash", "syncope", "hemoptysis", "headache")
_REFERRAL = (
    "{Pr} was seen by {pos} primary care physician, Dr. {pcp}, who recommended that {pr} go to the {emergency "
    "department|ED}.",
    "{Pr} called {pos} {PCP|primary care doctor}, Dr. {pcp}, who {recommended|advised} evaluation in the {emergency "
    "department|ED}.",
    "{Pr} was initially evaluated at {other}, where {pr} was found to have {finding}, and was transferred for further "
    "{care|management}.",
    "{Pr} presented first to an urgent care clinic and was {referred|sent} to the ED by Dr. {pcp}.",
    "{Pr} {saw|was seen by} Dr. {pcp} in clinic {earlier that day|the day before|that morning} and was "
    "{referred|sent} in.",
)
_HPI_EXTRA = (
    "Of note, {pr} was {last|most recently} admitted to {other} in {year} for {prior}.",
    "{Pr} had a similar {episode|presentation} in {year}, {managed|treated} as an outpatient.",
    "{Pr} had a similar {episode|presentation} in {year} and was {treated|admitted} at {other}.",
    "{Outpatient|Recent} workup {in|during} {year} {included|was notable for} {workup}.",
    "{Pr} {reports|notes} good adherence to {pos} home medications and follows with {pos} PCP {regularly|every few "
    "months}.",
    "{Pr} {missed|ran out of} several doses of {pos} medications {last week|over the past month|recently}.",
)
_PRIOR = ("a COPD exacerbation", "pneumonia", "a urinary tract infection", "cellulitis", "a fall", "chest pain",
          "syncope", "dehydration", "a GI bleed", "kidney stones", "an elective surgery")
_WORKUP = ("a normal stress test", "an unremarkable colonoscopy", "a CT scan without acute findings",
           "mildly elevated liver enzymes", "a normal echocardiogram", "an abnormal chest x-ray",
           "iron deficiency", "a negative Holter monitor")
_ED = (
    "In the ED, initial vitals were {vitals}.",
    "ED vitals: {vitals}.",
    "Initial VS in the ED: {vitals}.",
    "On arrival, vitals were {notable for|} {vitals}.",
    "In the {ED|emergency department}, {pr} was {afebrile|febrile|tachycardic|hypertensive|comfortable} with {vitals}.",
)
_ED_LABS = ("Labs were {notable|significant} for {labs}.", "Initial labs showed {labs}.", "Labs: {labs}.",
            "Laboratory {evaluation|workup} was {significant|notable} for {labs}.", "{Admission|Initial} labs: {labs}.")
_ED_TREAT = ("{Pr} received {given} and was admitted to the {team} service.",
             "{Pr} was given {given} prior to transfer to the {floor|unit|ICU}.",
             "In the ED {pr} received {given}. {Team} was consulted and {pr} was admitted.",
             "{Pr} was treated with {given} and admitted for further {management|workup and management}.",
             "{Given|Treatment} in the ED {included|consisted of} {given}; {pr} was then admitted.")
_ED_GIVEN = ("1L normal saline", "IV morphine 4 mg", "acetaminophen 1 g", "ondansetron 4 mg IV", "aspirin 324 mg",
             "IV fluids", "hydromorphone 0.5 mg IV", "a dose of ketorolac", "lactated Ringer's 1L",
             "IV pantoprazole", "potassium chloride 40 mEq", "IV magnesium", "2L of crystalloid",
             "a dose of IV antibiotics", "fentanyl 50 mcg IV")
_FLOOR = (
    "On arrival to the {floor|unit|ward}, {pr} {reports|endorsed|describes} {state}.",
    "On the floor, {pr} {is|was} {comfortable|resting comfortably} and {state}.",
    "Upon arrival to the {unit|floor}, {pr} {endorsed|noted} {state}.",
    "{Currently|At the time of evaluation|On interview}, {pr} {reports|notes} {state}.",
)
_FLOOR_STATE = ("improved symptoms", "ongoing but milder symptoms", "that {pos} pain is better controlled",
                "feeling tired but otherwise well", "no new complaints", "some nausea but no vomiting",
                "{mild|moderate} residual discomfort", "that {pos} symptoms are {much|somewhat} improved")
_ROS = (
    "ROS: {10-point|12-point|Full} review of systems {negative|otherwise negative} except as {noted above|per HPI}.",
    "Review of systems: Denies fevers, chills, night sweats. Denies headache, vision changes. Denies chest pain or "
    "palpitations unless noted above. Denies cough or shortness of breath unless noted above. Denies nausea, "
    "vomiting, diarrhea, constipation. Denies dysuria or hematuria. Denies rashes. All other systems reviewed and "
    "negative.",
    "ROS:\n(+) Per HPI\n(-) Denies fever, chills, night sweats, recent weight loss or gain. Denies headache, sinus "
    "tenderness, rhinorrhea or congestion. Denies cough, shortness of breath. Denies chest pain or tightness, "
    "palpitations. Denies nausea, vomiting, diarrhea, constipation or abdominal pain. No recent change in bowel or "
    "bladder habits. No dysuria. Denies arthralgias or myalgias.",
    "All other systems {reviewed|were reviewed} and are negative.",
    "ROS: {Positive|Pos} as per HPI. {Negative|Neg} for {fevers|chills}, {chest pain|palpitations}, "
    "{dysuria|hematuria}, "
    "{rash|joint pain}, and {focal weakness|numbness}.",
)


_ROS_ITEMS = ("fevers", "chills", "night sweats", "weight loss", "headache", "vision changes", "sore throat",
              "rhinorrhea", "chest pain", "palpitations", "orthopnea", "PND", "cough", "wheezing", "hemoptysis",
              "nausea", "vomiting", "diarrhea", "constipation", "melena", "BRBPR", "dysuria", "hematuria",
              "urinary frequency", "arthralgias", "myalgias", "rash", "focal weakness", "numbness", "dizziness",
              "anxiety", "low mood", "easy bruising", "leg swelling", "abdominal pain", "back pain")


def _ros(c: _Case) -> str:
    """A review of systems: a fixed phrase, or the negatives the examiner happened to list."""
    if c.chance(0.3):
        return c.text(c.pick(_ROS))
    items = c.rng.sample(_ROS_ITEMS, c.rng.randint(4, 4 + round(14 * c.detail)))
    cut = c.rng.randint(1, len(items) - 1)
    return c.text("{ROS:|Review of systems:|ROS -}") + " " + c.text("{Denies|Negative for|(-)}") + " " + \
        _join(items[:cut], "or") + ". " + c.text("{No|Denies|Also denies}") + " " + _join(items[cut:], "or") + \
        ". " + c.text("{All other systems negative.|Otherwise negative.|10-point ROS otherwise negative.|}")


def _trend(c: _Case, name: str) -> str:
    """'Creat 2.1 -> 1.6 -> 1.2': an admission value easing back into the reference range."""
    lab = LABS[name]
    first = float(c.labs[name]) if name in c.labs else c.rng.uniform(lab.lo, lab.hi)
    steps = [first] + sorted((c.rng.uniform(lab.lo, lab.hi) for _ in range(c.rng.randint(1, 3))),
                             reverse=first > (lab.lo + lab.hi) / 2)
    return f"{name} " + " -> ".join(f"{v:.{lab.decimals}f}" for v in steps)


def _vitals(c: _Case, sick: bool) -> str:
    r = c.rng
    t = f"{r.uniform(98.0, 101.6) if sick else r.uniform(97.4, 99.1):.1f}"
    hr, sbp, dbp = r.randint(62, 128) if sick else r.randint(56, 96), r.randint(92, 178), r.randint(50, 98)
    rr, sat = r.randint(14, 26) if sick else r.randint(12, 20), r.randint(89, 100) if sick else r.randint(93, 100)
    o2 = c.pick(("RA", "RA", "room air", f"{r.randint(2, 4)}L NC"))
    form = 1 if r.random() > 0.3 + c.detail else r.randrange(4)  # terse notes write the bare numbers
    if form == 0:
        out = f"T {t} HR {hr} BP {sbp}/{dbp} RR {rr} O2 sat {sat}% on {o2}"
    elif form == 1:
        out = f"{t} {hr} {sbp}/{dbp} {rr} {sat}% {o2}"
    elif form == 2:
        out = f"Temp {t}F, HR {hr}, BP {sbp}/{dbp}, RR {rr}, SpO2 {sat}% {o2}"
    else:
        out = f"T: {t} BP: {sbp}/{dbp} P: {hr} R: {rr} O2: {sat}% {o2}"
    # Discharge vitals of a detailed note carry the day's extremes, weight and fluid balance.
    if not sick and c.chance(c.detail):
        out += (f" Tmax {r.uniform(98.2, 100.3):.1f} Wt {c.vocab['dwt']} kg "
                f"I/O {r.randint(400, 2400)}/{r.randint(300, 2800)}")
    return out


def _lab_phrase(c: _Case) -> str:
    """The admission labs an HPI quotes: the condition's own, and a few basic ones as they came back."""
    names = [n for n in _lab_names(c.cond) if n in c.labs]
    names += [n for n in c.rng.sample(BASIC, c.rng.randint(0 if names else 2, 4)) if n not in names]
    return ", ".join(f"{n} {c.labs[n]}" for n in names)


def _hpi(d: _Doc, c: _Case) -> None:
    p, w, cond, rng, x = c.person, c.words, c.cond, c.rng, c.detail
    complaint = _lower_first(c.complaint)
    history = _join(_pmh_words(c)) if c.pmh else c.pick(("no significant past medical history",
                                                         "no past medical history", "no known medical problems"))
    if not c.full:
        d.line(*c.fill(_COMPACT_HPI, history=history, complaint=complaint))
        return
    d.line(*c.fill(c.pick(_HPI_OPENERS), history=history, complaint=complaint, letter=w.letter))
    ago = rng.randint(1, 10)
    onset = (_body_date(c, p.admit - dt.timedelta(days=ago)), "DATE")
    story = [c.fill(c.pick(_ONSET), n=_days(ago), onset=onset, complaint=complaint,
                    relative=c.pick((w.spouse, "daughter", "son", "partner")))] if c.chance(0.4 + 0.6 * x) else []
    for _ in range(round((0.5 + 2 * x) * rng.random())):
        syms, negs = rng.sample(_SYMPTOMS, 2), rng.sample(_NEGATIVES, 2)
        story.append(c.fill(c.pick(_ASSOCIATED), a=syms[0], b=syms[1], c=negs[0], d=negs[1]))
    other = (f"{c.fake.last_name()} {c.pick(HOSPITAL_KINDS)}", "LOCATION:HOSPITAL")
    if c.chance(0.1 + 0.8 * x):
        story.append(c.fill(c.pick(_REFERRAL), pcp=(doctor_name(c.fake), "NAME:DOCTOR"), other=other,
                            finding=_lower_first(cond.diagnosis) if c.chance(0.5) else "abnormal labs"))
    for template in rng.sample(_HPI_EXTRA, round(3.5 * x * rng.random())):
        story.append(c.fill(template, year=(str(_past_year(c, 15)), "DATE"), other=other, prior=c.pick(_PRIOR),
                            workup=c.pick(_WORKUP)))
    if story:
        _paragraph(d, story, c)
    if c.chance(0.15 + 0.85 * x):
        given = _join(rng.sample([g for g in _ED_GIVEN if _tolerated(c, [g])], rng.randint(1, 1 + round(3 * x))))
        team = c.service.lower().replace("obstetrics/gynecology", "OB/GYN")
        ed = [c.fill(c.pick(_ED), vitals=_vitals(c, True)), c.fill(c.pick(_ED_LABS), labs=_lab_phrase(c))]
        if c.imaging and c.chance(0.6):
            study, _, finding = c.imaging.partition(": ")
            ed.append([f"{study} {c.pick(('showed', 'demonstrated', 'was notable for', 'revealed'))} "
                       f"{_lower_first(finding)}"])
        ed.append(c.fill(c.pick(_ED_TREAT), given=given, team=team, Team=c.pick(("Surgery", "Medicine", "Cardiology",
                                                                                  "Neurology", "GI", "Urology"))))
        _paragraph(d, ed, c)
    if c.chance(0.1 + 0.7 * x):
        d.line(*c.fill(c.pick(_FLOOR), state=c.text(c.pick(_FLOOR_STATE))))
    if c.chance(0.05 + 0.8 * x):
        d.add("\n")
        d.line(_ros(c))


def _paragraph(d: _Doc, sentences: list[list], c: _Case) -> None:
    """Sentences run together as prose, or one per line in a terser note."""
    sep = " " if c.bullets != "" or c.detail > 0.3 else "\n"
    for i, s in enumerate(sentences):
        if i:
            d.add(sep)
        d.pieces(s)
    d.add("\n")


_SURGERIES = ("appendectomy", "cholecystectomy", "tonsillectomy", "inguinal hernia repair", "cataract surgery",
              "right knee arthroscopy", "left carpal tunnel release", "umbilical hernia repair", "lumbar discectomy",
              "rotator cuff repair", "hemorrhoidectomy", "thyroidectomy", "septoplasty", "colonoscopy with polypectomy")
_FEMALE_SURGERIES = ("cesarean section", "tubal ligation", "breast biopsy (benign)")
# Past operations a current condition rules out (no appendicitis after an appendectomy).
_RULED_OUT_BY = {"appendectomy": ("append",), "cholecystectomy": ("cholecyst", "gallstone", "gallbladder"),
                 "tubal ligation": ("pregnan", "delivery", "labor", "preeclampsia", "hyperemesis", "postpartum")}


def _past_year(c: _Case, within: int = 100) -> int:
    """A year of the patient's adult life before this admission, at most `within` years back."""
    last = c.person.admit.year - 1
    return c.rng.randint(min(max(c.person.dob.year + 18, last - within), last), last)


def _pmh(d: _Doc, c: _Case) -> None:
    names = _pmh_words(c)
    if not c.full:
        d.line(f"- {names[0]}" if names else "None")
        return
    if not names:
        d.line(c.pick(("None.", "None", "Denies", "No significant past medical history.")))
    elif c.detail < 0.2 and c.chance(0.5):
        d.line(", ".join(names))
    else:
        for i, n in enumerate(names, 1):
            if c.chance(0.4):  # the year it was diagnosed
                d.line(f"{c.bullets or f'{i}. '}{n} (", *c.fill("{dx |diagnosed |since |}"),
                       (str(_past_year(c)), "DATE"), ")")
            else:
                d.line(f"{c.bullets or f'{i}. '}{n}")
    if c.chance(0.2 + 0.6 * c.detail):
        now = " ".join([c.cond.diagnosis, *c.cond.procedures]).lower()
        pool = [s for s in (*_SURGERIES, *(_FEMALE_SURGERIES if c.person.sex == "Female" else ()))
                if not any(stem in now for stem in _RULED_OUT_BY.get(s, ()))]
        surgeries = c.rng.sample(pool, c.rng.randint(0, 3))
        d.line(c.pick(("PAST SURGICAL HISTORY:", "PSH:", "Past Surgical History:")))
        if not surgeries:
            d.line("None")
        for s in surgeries:
            if c.chance(0.6):
                d.line(f"{c.bullets or '- '}{s} (", (str(_past_year(c)), "DATE"), ")")
            else:
                d.line(f"{c.bullets or '- '}{s}")


_LIVES = ("Lives with {pos} {rel} in {city}.", "Lives alone in an apartment in {city}.",
          "Lives in {city} with {pos} {rel}.", "Resides in {city}; lives with {pos} {rel}.",
          "Lives alone in {city}.", "Lives with {pos} {rel} and {rel2} in a house in {city}.")
_WORK = ("Works as {an} {job}.", "Works as {an} {job} at {company}.", "Retired {job}.",
         "Former {job}, now retired.", "Employed as {an} {job}.", "Occupation: {job}.")
_TOBACCO = ("Never smoker.", "Former smoker, quit {n} years ago.", "Current smoker, {n2} pack-year history.",
            "Denies tobacco use.", "Quit smoking {n} years ago ({n2} pack-years).", "Tobacco: never.",
            "Smokes {n3} cigarettes per day.")
_ALCOHOL = ("Drinks alcohol socially.", "No alcohol use.", "Drinks {n3} glasses of wine per week.",
            "Rare alcohol.", "Denies EtOH.", "Occasional beer on weekends.")
_HEAVY_ALCOHOL = ("Drinks {n3} pints of vodka per day for many years.", "Heavy EtOH use, about {n2} drinks daily.",
                  "Reports drinking a fifth of liquor daily; multiple prior detoxes.")
_DRUGS = ("Denies illicit drug use.", "No IVDU.", "Denies drug use.", "Occasional marijuana.", "No recreational drugs.")
_OPIOIDS = ("Uses intranasal heroin daily, previously on methadone.", "Injects heroin and fentanyl daily.")
_FAMILY_SOCIAL = ("Has {1-4} children and {0-9} grandchildren.", "Married for {5-55} years.",
                  "Completed {10-20} years of education.", "Has {1-3} adult children nearby.",
                  "Walks {1-5} miles most days.", "Drinks {1-4} cups of coffee a day.")
_FUNCTION = ("Independent in ADLs and IADLs.", "Ambulates with a cane.", "Uses a walker at baseline.",
             "Fully independent at baseline.", "Needs help with IADLs; daughter manages medications.")


def _social(d: _Doc, c: _Case) -> None:
    w, rng, cond = c.words, c.rng, c.cond
    rels = [w.spouse, "partner", "daughter", "son", "sister", "brother", "friend"]
    city = (c.person.city, "LOCATION:CITY")
    if not c.full:
        d.line(*c.fill(c.pick(_LIVES[:2]), city=city, rel=c.pick(rels[:4])))
        return
    alcohol = _HEAVY_ALCOHOL if "lcohol" in cond.diagnosis or any("lcohol" in h.name for h in c.pmh) else _ALCOHOL
    drugs = _OPIOIDS if "pioid" in cond.diagnosis else _DRUGS
    smoker = any(h.name == "COPD" for h in c.pmh) or "lung" in cond.diagnosis.lower()
    tobacco = _TOBACCO[1:3] if smoker else _TOBACCO
    nums = {"n": str(rng.randint(2, 30)), "n2": str(rng.randint(10, 60)), "n3": str(rng.randint(2, 6))}
    job = (c.fake.job().lower(), "PROFESSION")
    nums["an"] = _article(job[0])
    items = [("Home", c.fill(c.pick(_LIVES), city=city, rel=c.pick(rels), rel2=c.pick(("a dog", "two cats",
                                                                                     "grandchildren")))),
             ("Occupation", c.fill(c.pick(_WORK), job=job, an=nums["an"],
                                   company=(c.fake.company(), "LOCATION:ORGANIZATION"))),
             ("Tobacco", c.fill(c.pick(tobacco), **nums)), ("EtOH", c.fill(c.pick(alcohol), **nums)),
             ("Illicits", c.fill(c.pick(drugs)))]
    if c.chance(0.3 + 0.4 * c.detail):
        items.append(("Function", [c.pick(_FUNCTION)]))
    if c.chance(0.2 + 0.6 * c.detail):
        items.append(("Other", c.fill(c.pick(_FAMILY_SOCIAL))))
    keep = [items[0]] + [it for it in items[1:] if c.chance(0.2 + 0.8 * c.detail)]
    if c.chance(0.3):
        rng.shuffle(keep)
    if c.bullets and c.chance(0.5):
        for label, pieces in keep:
            d.line(f"{c.bullets}{label}: ", *pieces)
    else:
        _paragraph(d, [pieces for _, pieces in keep], c)


_FAMILY = ("Mother with {a}.", "Father with {a}.", "Mother died of {b} at age {n}.", "Father died of {b} at age {n}.",
           "Brother with {a}.", "Sister with {a}.", "No family history of {a}.", "Maternal grandmother with {a}.")
_FAMILY_A = ("hypertension", "coronary artery disease", "type 2 diabetes", "breast cancer", "colon cancer",
             "hyperlipidemia", "stroke", "dementia", "depression", "thyroid disease", "asthma", "kidney stones")
_FAMILY_B = ("myocardial infarction", "lung cancer", "stroke", "pancreatic cancer", "complications of diabetes",
             "heart failure", "pneumonia")


def _family(d: _Doc, c: _Case) -> None:
    if not c.full:
        d.line(c.pick(("Non-contributory.", "Mother with hypertension. Father with coronary artery disease.")))
        return
    if c.chance(0.6 - 0.55 * c.detail):
        d.line(c.pick(("Non-contributory.", "Noncontributory", "Reviewed and non-contributory.", "Unknown; adopted.")))
        return
    n = c.rng.randint(1, 2 + int(3 * c.detail))
    facts = [c.fill(t, a=c.pick(_FAMILY_A), b=c.pick(_FAMILY_B), n=str(c.rng.randint(52, 94)))
             for t in c.rng.sample(_FAMILY, n)]
    if c.bullets and c.chance(0.5):
        for f in facts:
            d.line(c.bullets, *f)
    else:
        _paragraph(d, facts, c)


# --- exam and results --------------------------------------------------------------------------------------

# Normal findings per system, in groups of ways to say one finding: an exam line says a few of the findings,
# each one way, in any order.
_EXAM = {
    "General": (("alert", "awake"), ("oriented x3", "AOx3"), ("in no acute distress", "NAD"),
                ("pleasant", "cooperative"), ("comfortable", "lying in bed", "sitting up in a chair"),
                ("well appearing",)),
    "HEENT": (("normocephalic", "NCAT"), ("sclera anicteric", "anicteric sclerae"), ("EOMI",),
              ("PERRL", "pupils equal and reactive"), ("moist mucous membranes", "MMM"),
              ("oropharynx clear", "OP clear"), ("no oral lesions",)),
    "Neck": (("supple",), ("JVP not elevated", "no JVD", "JVP at {6-8} cm"), ("no lymphadenopathy", "no LAD"),
             ("no thyromegaly",), ("trachea midline",)),
    "Lungs": (("clear to auscultation bilaterally", "CTAB"), ("no wheezes, rales or rhonchi", "no w/r/r"),
              ("good air movement",), ("no increased work of breathing", "no accessory muscle use"),
              ("symmetric chest expansion",)),
    "CV": (("regular rate and rhythm", "RRR"), ("normal S1 and S2", "nl S1/S2"),
           ("no murmurs, rubs or gallops", "no m/r/g", "{2/6|3/6} systolic murmur at the {RUSB|apex|LLSB}"),
           ("2+ radial pulses",), ("no S3 or S4",), ("PMI nondisplaced",)),
    "Abdomen": (("soft",), ("non-tender", "NT", "nontender"), ("non-distended", "ND", "obese"),
                ("bowel sounds present", "+BS", "normoactive bowel sounds"), ("no organomegaly", "no HSM"),
                ("no rebound or guarding",)),
    "GU": (("no Foley", "Foley in place draining {clear|yellow} urine"), ("no CVA tenderness",),
           ("no suprapubic tenderness",)),
    "Extremities": (("warm, well perfused", "WWP"), ("2+ pulses", "2+ DP pulses bilaterally"),
                    ("no clubbing, cyanosis or edema", "no c/c/e", "no edema", "{trace|1+} bilateral ankle edema"),
                    ("calves soft and non-tender",)),
    "Skin": (("no rashes or lesions", "no rashes"), ("warm and dry",), ("no pressure injuries",), ("no jaundice",)),
    "Neuro": (("CN II-XII intact", "cranial nerves intact"), ("strength 5/5 throughout", "moving all extremities"),
              ("sensation grossly intact",), ("gait deferred", "gait steady"), ("fluent speech",),
              ("no focal deficits", "grossly nonfocal")),
    "Psych": (("appropriate mood and affect", "pleasant affect"), ("calm", "cooperative"),
              ("linear thought process",), ("good insight",)),
}
# Words of a condition's own exam finding -> the systems whose normal findings it would contradict.
_EXAM_OVERRIDES = {
    "Lungs": ("crackles", "wheez", "breath sounds", "dullness", "egophony", "kussmaul"),
    "CV": ("murmur", "rhythm", "rub", "bradycard", "tachycard", "s3", "regular"),
    "Neck": ("jvp", "nuchal", "neck"),
    "Abdomen": ("abdom", "tender", "distended", "ascites", "murphy", "mcburney", "rebound", "peritonitis",
                "hepatomegaly", "splenomegaly", "epigastric", "quadrant"),
    "Neuro": ("drift", "weakness", "aphasia", "droop", "asterixis", "reflex", "gait", "nihss", "ptosis", "deficit",
              "oriented", "strength", "sensory", "hoffmann", "pupil", "areflexia", "confus", "somnolent"),
    "Extremities": ("edema", "pulse", "leg", "foot", "toe", "knee", "ankle", "splint", "compartment"),
    "Skin": ("erythema", "laceration", "crepitus", "gangrene", "ulcer", "petechiae", "jaundice", "spider"),
    "GU": ("foley", "costovertebral", "prostate", "testis", "scrot", "perineal"),
    "Psych": ("mood", "affect", "speech", "thought", "guarded", "paranoi", "insight", "stimuli"),
    "General": ("diaphoretic", "cachectic", "pale", "uncomfortable"),
    "HEENT": ("mucous membranes", "pupil", "ptosis", "sclera"),
}


def _exam_line(c: _Case, system: str) -> str:
    groups = c.rng.sample(_EXAM[system], min(len(_EXAM[system]), c.rng.randint(1, 4)))
    return _upper_first(c.text(", ".join(c.pick(g) for g in groups))) + "."


_EXAM_ORDER = tuple(_EXAM)


_EXAM_CORE = ("General", "Lungs", "CV", "Abdomen")


def _exam_block(d: _Doc, c: _Case, systems: int, pertinent: bool) -> None:
    """`systems` systems' normal findings; on admission (`pertinent`) the condition's own finding instead of those
    of the systems it concerns."""
    others = [s for s in _EXAM_ORDER if s not in _EXAM_CORE]
    picked = set(_EXAM_CORE[:systems]) | set(c.rng.sample(others, min(len(others), max(0, systems - len(_EXAM_CORE)))))
    if pertinent:
        finding = c.exam.lower()
        picked -= {s for s, words in _EXAM_OVERRIDES.items() if any(w in finding for w in words)}
    terse = c.abbrev and c.chance(0.5)
    for s in _EXAM_ORDER:
        if s in picked:
            d.line(f"{s.upper() if terse else s}: {_exam_line(c, s)}")
    if pertinent:
        d.line(c.exam)


def _exam(d: _Doc, c: _Case) -> None:
    if not c.full:
        d.line(c.exam)
        return
    x = c.detail
    if c.terse:
        d.line(f"VS: {_vitals(c, True)}")
        d.line(c.exam)
        return
    systems = 1 + round(8 * x * (0.6 + 0.4 * c.rng.random()))
    if x > 0.25 or c.chance(0.5):
        d.line(c.pick(("ADMISSION PHYSICAL EXAM:", "Admission exam:", "ADMISSION EXAM:", "On admission:",
                       "PHYSICAL EXAM:")))
    d.line(f"{c.pick(('Vitals', 'VS', 'Vital signs'))}: {_vitals(c, True)}")
    if c.chance(0.7 * x):
        d.line(c.text("Height: {ht} in  Weight: {wt} kg  BMI: {bmi}"))
    _exam_block(d, c, systems, True)
    if c.chance(0.1 + 0.9 * x):
        d.add("\n")
        d.line(c.pick(("DISCHARGE PHYSICAL EXAM:", "Discharge exam:", "DISCHARGE EXAM:", "On discharge:")))
        d.line(f"{c.pick(('Vitals', 'VS', 'Vital signs'))}: {_vitals(c, False)}")
        if c.chance(0.3 - 0.2 * x):
            d.line(c.text("{Unchanged from admission|Improved from admission|Exam as above} except as below."))
            d.line(_exam_line(c, "General"))
        else:
            _exam_block(d, c, max(2, systems - c.rng.randint(1, 4)), False)
        if c.cond.surgical:
            d.line(c.text(c.pick(("Incision: clean, dry and intact{| without erythema}.",
                                  "Wound: c/d/i, no {erythema|drainage|erythema or drainage}.",
                                  "{Incisions|Incision} healing well without signs of infection."))))


def _lab_time(c: _Case) -> str:
    """A draw time as MIMIC prints it ("06:10AM"), mostly from the early-morning draw."""
    hour = c.rng.choice((4, 5, 5, 6, 6, 6, 7, 7, 8, 9, 11, 13, 16, 19, 22, 23))
    return f"{(hour - 1) % 12 + 1:02d}:{c.rng.randint(0, 59):02d}{'AM' if hour < 12 else 'PM'}"


def _lab_line(c: _Case, day: dt.date, names: Sequence[str], admission: bool) -> list:
    """One MIMIC-style lab line: date, time, specimen and NAME-value pairs. Admission values are the case's own;
    later days drift back within the reference range."""
    ranges = _lab_ranges(c.cond)
    values = []
    for n in names:
        if admission and n in c.labs:
            values.append(f"{n}-{c.labs[n]}")
        elif admission and n in ranges:
            values.append(f"{n}-{_lab_value(c.rng, n, *ranges[n])}")
        else:
            values.append(f"{n}-{_lab_value(c.rng, n)}")
    return [(_body_date(c, day), "DATE"), f" {_lab_time(c)} BLOOD " + " ".join(values)]


_MICRO = ("BLOOD CULTURE x2: No growth to date.", "URINE CULTURE (Final): NO GROWTH.",
          "MRSA SCREEN: No MRSA isolated.", "C. difficile PCR: Negative.", "SARS-CoV-2 PCR: Negative.")
_EKG = ("EKG: Sinus rhythm at {60-95}, normal axis, no acute ST changes.", "ECG: NSR, normal intervals.",
        "EKG: Sinus tachycardia at {101-118}, no ischemic changes.")


def _results(d: _Doc, c: _Case) -> None:
    p, rng, cond = c.person, c.rng, c.cond
    specific = [n for n in _lab_names(cond) if n not in BASIC]
    if not c.full:
        d.line((_fmt_date(p.admit), "DATE"), f" {_lab_time(c)} "
               + " ".join(f"{n}-{c.labs[n]}" for n in (*BASIC[:2], *specific)))
        return
    x = c.detail
    if c.terse:
        d.line(*_lab_line(c, p.admit, specific or BASIC, True))
        return
    panels = (["cbc"] if x > 0.1 or not specific else []) + (["chem"] if x > 0.2 or c.chance(0.15) else []) + \
        [k for k in ("diff", "lft", "minerals", "coag") if c.chance(1.2 * x - 0.2)]
    d.line(c.pick(("ADMISSION LABS:", "Admission labs:", "LABS ON ADMISSION:", "PERTINENT LABS:")))
    for k in panels:
        d.line(*_lab_line(c, p.admit, PANELS[k], True))
    if specific:
        d.line(*_lab_line(c, p.admit, specific, True))
    interval = min(p.los - 1, round(x * x * min(p.los, 7) * rng.uniform(0.7, 1.3)))
    if interval > 0:
        d.add("\n")
        d.line(c.pick(("INTERVAL LABS:", "Trend:", "OTHER LABS:", "LABS DURING ADMISSION:")))
        for day in sorted(rng.sample(range(1, p.los), interval)):
            when = p.admit + dt.timedelta(days=day)
            d.line(*_lab_line(c, when, [*PANELS["cbc"][:3], *specific], False))
            if x > 0.8:
                d.line(*_lab_line(c, when, PANELS["chem"], False))
    if "cultures" not in " ".join(c.course) and "grew" not in " ".join(c.course) and c.chance(0.7 * x):
        d.add("\n")
        d.line("MICROBIOLOGY:")
        for m in rng.sample(_MICRO, rng.randint(1, 3)):
            d.line((_body_date(c, p.admit), "DATE"), f" {m}")
    if cond.imaging and c.chance(0.2 + 0.8 * x) or c.chance(0.3 * x):
        d.add("\n")
        d.line(c.pick(("IMAGING:", "Imaging:", "STUDIES:", "RADIOLOGY:")))
        if cond.imaging:
            d.line((_body_date(c, p.admit + dt.timedelta(days=min(p.los, rng.randint(0, 1)))), "DATE"),
                   " " + c.imaging)
        if c.service != "CARDIOLOGY" and c.chance(0.5 * x + 0.1):
            d.line((_body_date(c, p.admit), "DATE"), " " + c.text(c.pick(_EKG)))
    if c.chance(x):
        d.add("\n")
        d.line(c.pick(("DISCHARGE LABS:", "Discharge labs:", "LABS ON DISCHARGE:")))
        d.line(*_lab_line(c, p.discharge, PANELS["cbc"] if x > 0.5 else BASIC[:3], False))
        d.line(*_lab_line(c, p.discharge, PANELS["chem"] if x > 0.5 else BASIC[3:], False))


# --- course ------------------------------------------------------------------------------------------------

_COURSE_OPENERS = (
    "{title} {last} is {art} {age} year old {noun} with {history} who presented with {complaint}, {found to "
    "have|diagnosed with} {dx}.",
    "{title} {last} is {art} {age}-year-old {noun} with {history} admitted {with|for} {dx}.",
    "{age} yo {letter} with {history} admitted to the {team} service {for|with} {dx}.",
    "This is {art} {age} year old {noun} with {history} who was admitted for {dx}.",
    "In brief, {title} {last} is {art} {age} year old {noun} with {history} who presented with {complaint} and was "
    "{found to have|diagnosed with} {dx}.",
    "{Summary|Brief summary}: {age}-year-old {noun} with {history}, {admitted|hospitalized} for {dx}.",
)
_CONNECT = ("", "", "", "Subsequently, ", "Over the following {days|24 hours|48 hours}, ", "Thereafter, ",
            "After that, ", "Then ", "By hospital day {day}, ", "On hospital day {day}, ", "Later, ")
_PROGRESS_MEDICAL = (
    "Physical therapy {evaluated|saw} {pr} and recommended "
    "{pt}.", "Diet was advanced as tolerated{| without difficulty}.",
    "IV fluids were {stopped|discontinued} once {pr} was taking adequate oral intake.",
    "Pain was {controlled|well controlled|adequately controlled} on {oral medications|an oral regimen|acetaminophen "
    "and oxycodone}.",
    "Telemetry {showed no events|was unremarkable}.", "Telemetry was discontinued on hospital day {day}.",
    "Home medications were resumed as appropriate.", "Case management {assisted|helped} with discharge planning.",
    "{Pr} was ambulating the halls {independently|with a walker|with assistance} by hospital day {day}.",
    "Nutrition was consulted and recommended {oral supplements|a liberalized diet|calorie counts}.",
    "Labs were {trended|followed} daily and {remained stable|improved steadily}.",
    "Social work met with {pr} and {pos} {family|daughter|son|spouse} to {discuss|review} {discharge planning|home "
    "supports|coping}.",
    "Occupational therapy recommended {pt}.", "{Lines were|The peripheral IV was} removed prior to discharge.",
    "Oxygen saturation remained {above 92%|in the mid-90s} on room air.",
    "{Pr} was {afebrile|hemodynamically stable} for more than {24|48} hours prior to discharge.",
    "Bowel regimen was {started|continued} {given opioid use|to prevent constipation}.",
    "{Pr} {slept|rested} poorly the first night, {which improved|improving} with {melatonin|a quieter room}.",
    "A {bedside swallow|speech and swallow} evaluation {was passed|recommended a regular diet}.",
    "Orthostatic vital signs were {negative|checked and normal} before discharge.",
    "{Pr} was seen by {the|our} pharmacist for medication teaching.",
    "Fall precautions were maintained throughout the {admission|stay}.",
    "Blood glucose was {monitored|checked} before meals and at bedtime.",
    "Weight was {wt} kg on admission and {dwt} kg at discharge.",
    "{Pr} was {afebrile|without fever} with a Tmax of {98.6-100.3} over the last 24 hours.",
    "Heart rate ranged from the {60-70}s to {80-99}s on telemetry.",
    "Blood pressures ranged {105-125}-{130-165} systolic.",
    "{Pr} ambulated {150-600} feet with physical therapy{| without desaturation}.",
    "Intake was {800-2200} mL and output {900-2600} mL over the final day.",
    "Oral intake improved to about {50-100}% of meals.",
    "{Pr} required {1-4} doses of {oxycodone|hydromorphone|tramadol} in the 24 hours before discharge.",
)
_PROGRESS_SURGICAL = (
    "Postoperatively, {pr} was transferred to the PACU and then to the {floor|surgical floor|SICU} in stable "
    "condition.",
    "The Foley catheter was removed on postoperative day {1-2} and {pr} voided without difficulty.",
    "Pain was initially controlled with {a PCA|IV hydromorphone|an epidural} and then transitioned to oral pain "
    "medication.",
    "Diet was advanced from {sips|clear liquids} to a regular diet, which {pr} tolerated.",
    "{Pr} was passing flatus by postoperative day {2-3}.",
    "{Pr} had a bowel movement on postoperative day {3-4}.",
    "{Pr} received {subcutaneous heparin|enoxaparin} for DVT prophylaxis and used incentive spirometry.",
    "Physical therapy cleared {pr} for {pt}.", "The {incision|wound} was clean, dry and intact at discharge.",
    "{Drains were|The JP drain was} removed prior to discharge.",
    "{Pr} was ambulating {independently|with assistance} by postoperative day {1-3}.",
    "{Pr} was seen by the {acute pain service|pain service} for {multimodal analgesia|optimization of pain control}.",
    "Perioperative antibiotics were {continued for 24 hours|discontinued after 24 hours}.",
    "Hemoglobin was checked on postoperative day {1-2} and was stable.",
    "{Pr} was {afebrile|hemodynamically stable} throughout the postoperative course.",
    "Staples were left in place for removal at follow-up.",
    "Drain output was {20-180} mL on postoperative day {1-2} and {5-40} mL before removal.",
    "Estimated blood loss was {50-600} mL{| and no transfusion was needed}.",
    "Weight was {dwt} kg at discharge.",
    "{Pr} ambulated {100-500} feet on postoperative day {1-2}.",
    "Tmax was {98.6-100.4} on postoperative day {1-3}, without other signs of infection.",
    "Intake and output were {900-2400}/{700-2600} mL on the day before discharge.",
)
_PT = ("discharge home", "home with outpatient PT", "home with services", "short-term rehab", "home with a walker",
       "acute rehab")
_SYSTEMS = (
    ("Neuro", ("Pain was {well|adequately} controlled on {an oral regimen|oral medications}.",
               "Pain was managed with {a PCA|IV medications}, then oral medications.",
               "{Pr} remained neurologically intact.")),
    ("CV", ("Vital signs were {routinely|closely} monitored and {pr} remained hemodynamically stable.",
            "Hemodynamically stable {throughout|postoperatively}.")),
    ("Pulmonary", ("{Good pulmonary toilet|Pulmonary toilet}, early ambulation and incentive spirometry were "
                   "encouraged.",
                   "{Pr} remained stable from a pulmonary standpoint.")),
    ("GI/GU/FEN", ("Diet was advanced as tolerated; intake and output were {monitored|closely monitored}.",
                   "The Foley was removed and {pr} voided spontaneously. Electrolytes were repleted as needed.")),
    ("ID", ("Vital signs were monitored for signs of infection; {pr} remained afebrile.",
            "Perioperative antibiotics were given{| for 24 hours}.")),
    ("Heme", ("Hemoglobin remained stable.", "{Blood counts|The CBC} {were|was} checked daily and remained stable.")),
    ("Prophylaxis", ("{Subcutaneous heparin|SC heparin} and {venodyne boots|SCDs} were used for DVT prophylaxis.",
                     "{Pr} received enoxaparin and was encouraged to ambulate.")),
)
_CHRONIC_GENERIC = ("Stable; home {meds} continued.", "Continued home {meds}.", "No active issues; continued {meds}.",
                    "At baseline, {continued on|maintained on} {meds}.", "Stable throughout the {admission|stay}.",
                    "{Stable|Unchanged}. {Continued|Resumed} {meds}.", "{No changes made|Home regimen unchanged}.")
_CHRONIC_MORE = ("No changes were made to {pos} regimen.", "{Will need|Needs} outpatient follow-up with {pos} PCP.",
                 "{Pr} {tolerated|remained on} {pos} home regimen without "
                 "issue.", "Monitored clinically{| and with daily labs}.",
                 "{Pr} was counseled on adherence.", "Consider {titration|adjustment} as an outpatient.")
_CHRONIC_HEADERS = (("ACUTE ISSUES:", "CHRONIC ISSUES:"), ("ACTIVE ISSUES:", "CHRONIC ISSUES:"),
                    ("#ACUTE", "#CHRONIC"), ("Acute problems:", "Chronic problems:"),
                    ("ACUTE/ACTIVE PROBLEMS:", "CHRONIC/STABLE PROBLEMS:"))
_CONSULTS = (
    "{Palliative care|The palliative care team} met with {pr} and {pos} family to {discuss|clarify} goals of care.",
    "{Geriatrics|The geriatrics team} was consulted for {delirium prevention|medication review|falls risk}.",
    "{Pharmacy|The pharmacist} reviewed {pos} medications for interactions.",
    "{Pr} was seen by {wound care|wound care nursing} for {skin checks|a stage 1 heel pressure area}.",
    "{Physical therapy|PT} worked with {pr} daily on {gait training|transfers|stair climbing}.",
    "{Dietitian|Nutrition} counseling was provided on {a heart-healthy diet|carbohydrate counting|a low-sodium diet}.",
    "{Smoking cessation|Tobacco cessation} counseling was {provided|offered} and {pr} {accepted|declined} a nicotine "
    "patch.",
    "{Pr} was screened for depression{| with the PHQ-9}, which was {negative|mildly positive}.",
)
_CONSULT_TEAMS = ("Cardiology", "Nephrology", "Infectious Disease", "Endocrinology", "Gastroenterology",
                  "Pulmonary", "Hematology", "Neurology", "Physical Medicine and Rehabilitation", "Psychiatry",
                  "Geriatrics", "Palliative Care", "Nutrition", "Pharmacy")
_NAMED_CONSULTS = (
    "{team} (Dr. {doc}) was consulted and recommended {advice}.",
    "{Pr} was seen by {team}, Dr. {doc}, who {recommended|suggested|advised} {advice}.",
    "Case discussed with Dr. {doc} of {team}; {plan was to continue current management|no changes were recommended}.",
    "Per {team} (Dr. {doc}), {advice} {was recommended|is advised}.",
)
_ADVICE = ("outpatient follow-up", "no further inpatient workup", "a repeat echocardiogram in 3 months",
           "renal dosing of medications", "a short course of steroids", "continuing the current regimen",
           "checking a vitamin D level", "a medication taper", "holding nephrotoxins", "an outpatient MRI",
           "repeat labs in 1 week", "starting a statin")
_TRANSITIONAL = (
    "[ ] {Repeat|Check} {CBC|CBC and chemistry panel|BMP} {at follow-up|within 1 week|in 3-5 days}.",
    "[ ] Follow up {pending|final} {pathology|cultures|imaging reads}.",
    "[ ] Titrate {medications|antihypertensives} as blood pressure "
    "allows.", "[ ] Consider outpatient {sleep study|PFTs|echocardiogram}.",
    "[ ] Repeat imaging in {4-8} weeks.", "[ ] Ensure follow-up with {pos} primary care physician.",
    "[ ] Monitor {weight and volume status|electrolytes|renal function}.", "[ ] Check lipid panel in {6|8|12} weeks.",
    "- Medication reconciliation performed; new medications are listed below.",
    "- Follow up final culture data.", "- Outpatient physical therapy referral placed.",
    "- {Started|New}: {see discharge medications|as listed below}.",
    "- {Pr} will need {a|an outpatient} {colonoscopy|age-appropriate cancer screening|vaccination update}.",
)
_CODE_STATUS = ("Full code (confirmed)", "Full code (presumed)", "DNR/DNI", "Full code", "DNR, OK to intubate")


def _course(d: _Doc, c: _Case) -> None:
    p, cond, x = c.person, c.cond, c.detail
    if not c.full:
        d.line(c.course[0])
        return
    dx = _lower_first(cond.diagnosis)
    if c.chance(0.3 + 0.6 * x):
        history = _join(_pmh_words(c)) if c.pmh else "no significant past medical history"
        d.line(*c.fill(c.pick(_COURSE_OPENERS), history=history, dx=dx, letter=c.words.letter,
                       complaint=_lower_first(c.complaint), team=c.service.lower()))
    problem = c.chance(0.5)  # problem-based ("# Diagnosis: ...") rather than one narrative
    headers = c.pick(_CHRONIC_HEADERS)
    if problem:
        d.add("\n")
        if c.chance(0.5):
            d.line(headers[0])
        d.add(f"# {cond.diagnosis}: " if c.chance(0.5) else f"#{dx.upper() if c.abbrev else dx}\n")
    _acute_course(d, c, systems=cond.surgical and not problem and c.chance(0.5))
    for comp in c.complications:
        d.add("\n")
        if problem:
            d.add(f"# {_upper_first(comp.name)}: ")
        d.line(*c.fill(_vary(c, comp.course)))
    held = [m for m in c.home if med(m).name in cond.hold]
    for m in held:
        d.line(*c.fill("Home {drug} was {held|stopped} given {dx} and {is not restarted|was not resumed} at discharge; "
                       "{pos} {outpatient providers|PCP|outpatient team} will decide when to resume it.",
                       drug=med(m).name, dx=dx))
    if c.pmh and not c.terse:
        _chronic_course(d, c, headers[1] if problem else None)
    if c.chance(0.1 + 0.9 * x):
        _transitional(d, c, held)


def _acute_course(d: _Doc, c: _Case, systems: bool) -> None:
    """The condition's course, then what else happened: daily progress (more for a longer stay and a more
    detailed note), consultants and lab trends; for an operation sometimes by organ system (MIMIC's surgical
    notes)."""
    p, rng, x = c.person, c.rng, c.detail
    course = []
    for i, s in enumerate(c.course):
        if i and c.chance(0.4):  # MIMIC's "On ___, ..." with the date kept
            when = p.admit + dt.timedelta(days=min(p.los, i + rng.randint(0, 1)))
            course.append(["On ", (_body_date(c, when), "DATE"), ", " + _lower_first(s)])
            continue
        lead = c.text(c.pick(_CONNECT), day=str(rng.randint(2, max(2, p.los)))) if i else ""
        course.append([lead + (_lower_first(s) if lead else s)])
    if not re.search(rf"\b{c.words.pr}\b", " ".join(c.course), re.IGNORECASE):
        # Every course says who it is about, as the pronoun check of the evaluate stage expects.
        course.append(c.fill("{Pr} {improved|did well|recovered well} and was {discharged|ready for discharge} "
                             "on hospital day {day}.", day=str(p.los + 1)))
    progress = _PROGRESS_SURGICAL if c.cond.surgical else _PROGRESS_MEDICAL
    n_progress = min(len(progress), round((1 + p.los / 2.5) * (0.1 + 2 * x * x) * rng.uniform(0.6, 1.4)))
    extra = [_dated(c, c.fill(_vary(c, s), pt=c.pick(_PT), day=str(rng.randint(2, max(2, p.los)))), 0.4)
             for s in rng.sample(progress, n_progress)]
    extra += [c.fill(_vary(c, s)) for s in rng.sample(_CONSULTS, round(6 * x * x * rng.random()))]
    for _ in range(round(4 * x * rng.random())):
        extra.append(c.fill(c.pick(_NAMED_CONSULTS), team=c.pick(_CONSULT_TEAMS),
                            doc=(doctor_name(c.fake), "NAME:DOCTOR"), advice=c.pick(_ADVICE)))
    extra = [s for s in extra if _tolerated(c, s)]
    trended = rng.sample([*_lab_names(c.cond), *BASIC], round(6 * x * rng.random()))
    if trended:
        extra.append([c.text("{Labs trended|Lab trends|Trend}: ") + "; ".join(_trend(c, n) for n in trended) + "."])
    if systems:
        _paragraph(d, course, c)
        for name, options in _SYSTEMS:
            line = c.fill(_vary(c, c.pick(options)))
            if c.chance(0.5 + 0.5 * x) and _tolerated(c, line):
                d.line(f"{name}: ", *line)
        if extra:
            _paragraph(d, extra[:2 + round(4 * x)], c)
    else:
        _paragraph(d, course + extra, c)
        if x > 0.5 and p.los >= 4 and c.chance(0.6):
            _by_day(d, c, progress)


def _chronic_course(d: _Doc, c: _Case, header: str | None) -> None:
    """The comorbidities: one line in a brief note, else one each (under `header` in a problem-based note)."""
    if c.chance(0.6 - 0.6 * c.detail):
        d.line(c.text("{Chronic medical issues|Chronic conditions|Other chronic issues} were {stable|at baseline}; "
                      "home medications were {continued|resumed} {unless noted|as listed below}."))
        return
    d.add("\n")
    if header:
        d.line(header)
    prose = header is None and c.chance(0.5)
    lines = []
    for h in c.pmh:
        own = {med(m).name for regimen in h.regimens for m in regimen}
        drugs = [med(m).drug.lower() for m in c.home if med(m).name in own]
        template = h.course if c.chance(0.6) else c.pick(_CHRONIC_GENERIC)
        if c.chance(c.detail ** 2):
            template += " " + c.pick(_CHRONIC_MORE)
        text = c.fill(_vary(c, template), meds=_join(drugs) if drugs else "home regimen")
        if prose:
            lines.append([f"{_upper_first(h.name)}: ", *text])
        else:
            d.line(f"# {h.short if c.abbrev else _upper_first(h.name)}: ", *text)
    if prose:
        _paragraph(d, lines, c)


def _transitional(d: _Doc, c: _Case, held: list[str]) -> None:
    p, w = c.person, c.words
    d.add("\n")
    d.line(c.pick(("TRANSITIONAL ISSUES:", "Transitional issues:", "TRANSITIONAL ISSUES", "Issues for follow-up:")))
    d.line("- Follow up with Dr. ", (p.attending, "NAME:DOCTOR"), f" in {c.rng.randint(1, 4)} weeks.")
    for t in c.rng.sample(_TRANSITIONAL, c.rng.randint(1, 1 + round(6 * c.detail))):
        d.line(*c.fill(t))
    if c.chance(0.7):
        d.line(*c.fill("- {PCP|Primary care}: Dr. {doc}, {phone}{|; please send discharge summary}",
                       doc=(doctor_name(c.fake), "NAME:DOCTOR"), phone=(phone_number(c.fake), "CONTACT:PHONE")))
    if held:
        d.line(f"- Held: {', '.join(med(m).name for m in held)}; reassess at follow-up.")
    d.line(f"- Code status: {c.pick(_CODE_STATUS[2:] if p.age >= 85 else _CODE_STATUS)}")
    d.line(f"- Contact: {c.pick((w.spouse, 'daughter', 'son', 'sister', 'partner'))} ",
           (phone_number(c.fake), "CONTACT:PHONE"))


def _dated(c: _Case, pieces: list, p: float) -> list:
    """`pieces` (a sentence), with probability `p` opened by the day of the stay it happened on."""
    if not c.chance(p) or not isinstance(pieces[0], str):
        return pieces
    when = c.person.admit + dt.timedelta(days=c.rng.randint(1, max(1, c.person.los)))
    return [c.pick(("On ", "On ", "By ", "As of ")), (_body_date(c, when), "DATE"), ", " + _lower_first(pieces[0]),
            *pieces[1:]]


def _by_day(d: _Doc, c: _Case, progress: Sequence[str]) -> None:
    """A day-by-day account of a longer stay, one line a hospital day."""
    label = c.pick(("HD{n}", "HD #{n}", "Day {n}", "Hospital day {n}"))
    d.line(c.text("{Day-by-day course|Hospital course by day|Daily events}:"))
    r = c.rng
    for n, s in enumerate(r.sample(progress, min(c.person.los, 10, len(progress))), 1):
        vitals = (f"Tmax {r.uniform(98.0, 100.8):.1f}, HR {r.randint(58, 80)}-{r.randint(82, 110)}, "
                  f"SBP {r.randint(95, 120)}-{r.randint(122, 165)}. " if r.random() < 0.5 else "")
        event = c.fill(_vary(c, s), pt=c.pick(_PT), day=str(n))
        d.line(f"{label.format(n=n)}: {vitals}", *(event if _tolerated(c, event) else ["No events."]))


# --- medications -------------------------------------------------------------------------------------------

_FREQ_WORDS = {"daily": "once a day", "BID": "twice a day", "TID": "three times a day", "QID": "four times a day",
               "QHS": "at bedtime", "QPM": "every evening", "Q4H": "every 4 hours", "Q6H": "every 6 hours",
               "Q8H": "every 8 hours", "Q12H": "every 12 hours", "weekly": "once a week"}
_ROUTE_WORDS = {"PO": "by mouth", "SC": "subcutaneously", "IH": "inhaled", "IV": "intravenously",
                "SL": "under the tongue",
                "TD": "on the skin", "TP": "on the skin", "OU": "in both eyes", "NAS": "in the nose", "PR": "rectally",
                "IM": "into the muscle", "NU": "nebulized", "VG": "vaginally"}


def _rx_line(c: _Case, m: Med) -> str:
    """The prescription line MIMIC prints under a new medication."""
    head, _, rest = m.freq.partition(" ")
    freq = _FREQ_WORDS.get(head, head.lower()) + (f" {rest}" if rest else "")
    return (f"RX *{m.drug.lower()} {m.dose} {c.pick(('1 tablet(s)', '1 capsule(s)', 'as directed'))} "
            f"{_ROUTE_WORDS.get(m.route, m.route)} {freq} Disp #*{c.pick(('14', '28', '30', '60', '90'))} "
            f"{c.pick(('Tablet', 'Capsule', 'Each'))} Refills:*{c.rng.randint(0, 3)}")


def _med_list(d: _Doc, c: _Case, meds: list[str], rx: Sequence[str] = ()) -> None:
    for i, m in enumerate(meds, 1):
        d.line(f"{c.bullets}{m}" if c.bullets and c.full else f"{i}. {m}")
        if m in rx:
            d.line(_rx_line(c, med(m)))


def _admission_meds(d: _Doc, c: _Case) -> None:
    meds = c.home if c.full else c.home[:1]
    if c.full and c.chance(0.5):
        d.line(c.pick(("The Preadmission Medication list is accurate and complete.",
                       "Preadmission medications listed are correct and complete. Information was obtained from "
                       "Patient.", "Information was obtained from the patient and pharmacy records.")))
    if not meds:
        d.line(c.pick(("None.", "None", "No home medications.")) if c.full else "None")
    _med_list(d, c, meds)


def _discharge_lists(c: _Case) -> tuple[list[str], list[str], list[str]]:
    """(new, continued, stopped) at discharge: the condition's medications replace home ones of the same drug."""
    new = list(c.cond.meds if c.full else c.cond.meds[:2])
    new_names = {med(m).name for m in new}
    continued = [m for m in c.home if med(m).name not in new_names and med(m).name not in c.cond.hold]
    stopped = [m for m in c.home if med(m).name in c.cond.hold]
    return new, continued, stopped


def _discharge_meds(d: _Doc, c: _Case) -> None:
    new, continued, stopped = _discharge_lists(c)
    if not c.full:
        _med_list(d, c, new + continued[:1])
        return
    style = c.rng.random()
    if style < 0.2 + 0.3 * c.detail:  # MIMIC: one list, each new drug with its prescription
        _med_list(d, c, new + continued, rx=new)
    elif style < 0.85:
        _med_list(d, c, new + continued)
    else:
        for label, meds in (("NEW MEDICATIONS:", new), ("CONTINUE:", continued), ("STOP:", stopped)):
            if meds:
                d.line(label)
                for m in meds:
                    d.line(f"- {m}")


# --- discharge -----------------------------------------------------------------------------------------------

def _disposition(d: _Doc, c: _Case) -> None:
    if not c.full:
        d.line(c.rng.choice(DISPOSITIONS))
        return
    p = c.person
    extended = p.age >= 75 and p.los >= 5 or c.chance(0.08)
    if extended:
        d.line("Extended Care")
        if c.chance(0.7):
            d.line("Facility:")
            d.line((f"{c.fake.last_name()} "
                    + c.pick(("Rehabilitation Center", "Nursing and Rehab", "Skilled Nursing Facility",
                              "Senior Living")),
                    "LOCATION:HOSPITAL"))
    else:
        home = c.pick(("Home", "Home", "Home With Service"))
        d.line(home)
        if home == "Home With Service" and c.chance(0.7):
            d.line("Facility:")
            d.line((f"{c.fake.last_name()} {c.pick(('VNA', 'Home Health', 'Visiting Nurse Services'))}",
                    "LOCATION:ORGANIZATION"))


def _diagnosis(d: _Doc, c: _Case) -> None:
    cond = c.cond
    if not c.full:
        d.line(f"{cond.diagnosis} ({cond.icd10})")
        return
    secondary = [comp.name for comp in c.complications] + [h.short if c.abbrev else h.name for h in c.pmh]
    style = c.rng.choice((0, 0, 1, 1, 2, 2, 3, 4, 4))
    if style == 0:
        d.line(f"{cond.diagnosis} ({cond.icd10})")
    elif style == 1:
        d.line(cond.diagnosis)
        if secondary:
            d.line("Secondary: " + ", ".join(secondary))
    elif style == 2:
        d.line(c.pick(("PRIMARY DIAGNOSIS:", "Primary diagnosis:", "PRIMARY:")))
        d.line(f"- {cond.diagnosis}")
        if secondary:
            d.add("\n")
            d.line(c.pick(("SECONDARY DIAGNOSES:", "Secondary diagnoses:", "SECONDARY:")))
            for s in secondary:
                d.line(f"- {s}")
    elif style == 3:
        d.line(f"{cond.diagnosis}")
        d.line(f"ICD-10-CM {cond.icd10}: {icd10_description(cond.icd10)}")
        for comp in c.complications:
            d.line(f"ICD-10-CM {comp.icd10}: {icd10_description(comp.icd10)}")
        for h in c.pmh:
            d.line(f"ICD-10-CM {h.icd10}: {icd10_description(h.icd10)}")
    else:
        d.line(f"Primary: {cond.diagnosis} ({cond.icd10})")
        if secondary:
            d.line("Secondary: " + "; ".join(secondary))


_CONDITION = (
    ("Mental Status: Clear and coherent.", "Mental Status: Confused - sometimes."),
    ("Level of Consciousness: Alert and interactive.", "Level of Consciousness: Lethargic but arousable."),
    ("Activity Status: Ambulatory - Independent.", "Activity Status: Ambulatory - requires assistance or aid "
     "(walker or cane).", "Activity Status: Out of Bed with assistance to chair or wheelchair."),
)


def _condition(d: _Doc, c: _Case) -> None:
    if not c.full:
        d.line("Stable, ambulatory.")
        return
    if c.chance(0.7 - 0.4 * c.detail):
        d.line(c.text(c.pick(("{Stable|Good|Fair}.", "{Improved|Much improved}, {hemodynamically stable|afebrile}.",
                               "Stable for discharge{| to home| to rehab}.",
                               "{Alert and oriented|AOx3}, {ambulating independently|ambulating with assistance}.",
                               "{Good|Stable}; tolerating {a regular diet|oral intake}, {pain controlled|afebrile}."))))
        return
    old = c.person.age >= 80 or c.person.los >= 10
    parts = [c.pick(opts[1:]) if old and len(opts) > 1 and c.chance(0.5) else opts[0] for opts in _CONDITION]
    d.line(" ".join(parts) if c.chance(0.5) else "\n".join(parts))


_WHY = ("You were admitted to {hospital} because you had {complaint}.",
        "You came to {hospital} with {complaint}.",
        "You were {hospitalized|admitted} at {hospital} for {dx}.",
        "Thank you for choosing {hospital}. You were admitted for {dx}.",
        "You {were admitted|came} to the hospital {because of|with} {complaint}.",
        "It was a {pleasure|privilege} {taking care of|caring for} you at {hospital}, where you were "
        "{admitted|treated} for {dx}.")
_WHAT = ("While you were here, {summary}.", "In the hospital, {summary}.", "During your stay, {summary}.",
         "We found that you had {dx}. {Summary}.", "{Here|In the hospital}, {summary}.")
_HOME = ("Please take all of your medications as prescribed.", "Please continue your medications as listed below.",
         "Take your medications as {instructed|prescribed} and keep your follow-up appointments.",
         "Please weigh yourself every morning and call if your weight goes up more than 3 lbs.",
         "Avoid heavy lifting {for 6 weeks|(more than 10 lbs) for 4 weeks}.",
         "You may shower, but do not bathe or swim for {2|4} weeks.",
         "Do not drive while taking {narcotic|opioid} pain medications.", "Stay well hydrated.",
         "Walk several times a day{| and gradually increase your activity}.", "Eat a low {salt|sodium} diet.",
         "Do not drink alcohol{| while taking these medications}.", "Keep your incision clean and dry.",
         "Use your incentive spirometer {10 times an hour|several times a day} while awake.",
         "{Check|Monitor} your blood sugar {before meals and at bedtime|twice a day}.",
         "Bring this paperwork to your {follow-up appointments|primary care appointment}.")
_SURGICAL_BLOCKS = (
    ("ACTIVITY:", ("{No|Avoid} heavy lifting, pushing or pulling for {4|6} weeks.", "You may climb stairs.",
                   "{Walk|Get up and walk} several times a "
                   "day.", "No driving for {1|2} weeks{| or while taking opioids}.")),
    ("WOUND CARE:", ("You may shower {48 hours after surgery|tomorrow}; pat the incision dry.",
                     "Do not {soak|submerge} the incision{| in a tub or pool} for {2|4} weeks.",
                     "{Steri-strips|Staples} will {fall off on their own|be removed at your follow-up visit}.")),
    ("DIET:", ("Resume your regular diet{| as tolerated}.", "Eat small, frequent meals.",
               "Drink plenty of fluids and eat fiber to prevent constipation.")),
    ("PAIN:", ("Take acetaminophen {around the clock|regularly} and oxycodone only as needed.",
               "Do not take more than {3|4} grams of acetaminophen a day.")),
)
_WARN = ("fevers above 101.5F", "worsening pain", "chest pain", "shortness of breath", "new weakness or numbness",
         "bleeding", "inability to tolerate food or medications", "redness or drainage from your incision",
         "persistent nausea or vomiting", "dizziness or fainting", "blood in your urine or stool",
         "confusion", "swelling in your legs", "severe headache", "a rapid heartbeat")
_NEXT_VISIT = ("Your next appointment is with Dr. {doc} on {date}.",
               "Your follow-up appointment with Dr. {doc} is on {date}.",
               "Your follow-up appointment with Dr. {doc} is on {date} at {hospital}.",
               "Please see Dr. {doc} on {date}{| as scheduled}.")
_SIGNOFF = ("It was a pleasure taking care of you.", "We wish you the best!", "Best wishes for your recovery,",
            "It was a pleasure caring for you at {hospital}.", "Sincerely,", "{Best|Warm} regards,",
            "We wish you {a speedy recovery|all the best}.")


def _instructions(d: _Doc, c: _Case) -> None:
    p, title, cond = c.person, c.words.title, c.cond
    if not c.full:
        d.line(f"Dear {title} ", (p.last, "NAME:PATIENT"), ", call ", (p.phone, "CONTACT:PHONE"), " with concerns.")
        return
    d.line(f"Dear {title} ", (p.last, "NAME:PATIENT"), ",")
    d.add("\n")
    dx = _lower_first(cond.diagnosis)
    if c.terse:
        d.line(*c.fill(c.pick(_WHY), complaint=_lower_first(c.complaint), dx=dx), " Call ",
               (p.phone, "CONTACT:PHONE"), " with questions.")
        return
    summary = _lower_first(c.course[min(1, len(c.course) - 1)].rstrip("."))
    summary = summary.replace(c.words.pr.capitalize() + " ", "you ").replace(f" {c.words.pr} ", " you ")
    summary = re.sub(rf"\b{c.words.pos}\b", "your", re.sub(rf"^{c.words.pr}\b", "you", summary))
    summary = re.sub(r"\byou was\b", "you were", re.sub(r"\byou has\b", "you have", summary))
    x = c.detail
    headed = c.chance(0.2 + 0.4 * x)
    why = c.fill(c.pick(_WHY), complaint=_lower_first(c.complaint), dx=dx)
    what = c.fill(c.pick(_WHAT), summary=summary, Summary=summary[0].upper() + summary[1:], dx=dx)
    home = [c.text(h) for h in c.rng.sample(_HOME, round((0.5 + 5 * x) * c.rng.random()))]
    if not c.chance(0.5 + 0.6 * x):
        what = []
    if headed:
        d.line(c.pick(("WHY WERE YOU ADMITTED?", "Why were you in the hospital?", "WHY WAS I ADMITTED?")))
        d.line("- ", *why)
        d.line(c.pick(("WHAT HAPPENED IN THE HOSPITAL?", "What was done while you were here?")))
        if what:
            d.line("- ", *what)
        if home:
            d.line(c.pick(("WHAT SHOULD YOU DO WHEN YOU GO HOME?", "What should you do after you leave?")))
        for h in home:
            d.line(f"- {h}")
    else:
        d.line(*why, *([" ", *what] if what else []))
        if home:
            d.line(" ".join(home))
    if cond.surgical:
        for label, options in c.rng.sample(_SURGICAL_BLOCKS, round(len(_SURGICAL_BLOCKS) * x * c.rng.random())):
            d.line(label)
            for o in c.rng.sample(options, c.rng.randint(1, len(options))):
                d.line(f"- {c.text(o)}")
    warn = c.rng.sample(_WARN, c.rng.randint(2, 3 + round(4 * x)))
    warn_style = c.rng.random() + 0.4 * (1 - x)
    if warn_style < 0.3 + 0.4 * x:
        d.line(c.text("{Please call your doctor|Call your doctor|Please contact us} or {return to the emergency "
                      "department|go to the ER|come to the emergency room} if you {experience|develop|have} ")
               + _join(warn, "or") + ", or any other symptom that concerns you.")
    elif warn_style < 0.6 + 0.4 * x:
        d.line(c.text("{Call your doctor or go to the ER for|Return to the hospital for|Warning signs to watch for}:"))
        for w in warn:
            d.line(f"- {_upper_first(w)}")
    if c.chance(0.5 * x):
        d.line(*c.fill("{Your prescriptions were sent to|New prescriptions went to|Please pick up your medications at} "
                       "{pharmacy} ({phone}).", pharmacy=(f"{c.fake.last_name()} Pharmacy", "LOCATION:ORGANIZATION"),
                       phone=(phone_number(c.fake), "CONTACT:PHONE")))
    if c.chance(0.2 + 0.6 * x):
        fu = _fmt_date(c.followup)
        d.line(*c.fill(c.pick(_NEXT_VISIT), doc=(p.attending, "NAME:DOCTOR"), date=(fu, "DATE")))
    d.line(*c.fill("{Questions|Questions or concerns|If you have questions}? {Call|Please call} "),
           (p.phone, "CONTACT:PHONE"), ".")
    if c.chance(0.3 + 0.7 * x):
        d.line(*c.fill(c.pick(_SIGNOFF)))
        team = c.pick((c.service.title(), "Medicine", "Surgery"))
        d.line(f"Your {team} Care Team" if c.chance(0.7) else "Your Care Team")


_DEPARTMENTS = ("PRIMARY CARE", "CARDIOLOGY", "NEUROLOGY", "SURGICAL SPECIALTIES", "ORTHOPEDICS", "UROLOGY",
                "HEMATOLOGY/ONCOLOGY", "GASTROENTEROLOGY", "VASCULAR SURGERY", "BEHAVIORAL HEALTH", "OB/GYN")


def _appointment_time(c: _Case, twelve_hour: bool = False) -> str:
    hour = c.rng.randint(8, 16)
    minute = c.pick(('00', '15', '30', '45'))
    if twelve_hour:
        return f"{(hour - 1) % 12 + 1}:{minute} {'AM' if hour < 12 else 'PM'}"
    return f"{hour}:{minute}"


def _followup(d: _Doc, c: _Case) -> None:
    p, rng, fake, fu = c.person, c.rng, c.fake, c.followup
    if not c.full:
        d.line("Dr. ", (p.attending, "NAME:DOCTOR"), " on ", (_fmt_date(fu), "DATE"), f" at {_appointment_time(c)}")
        return
    x = c.detail
    if c.terse:
        d.line("Dr. ", (p.attending, "NAME:DOCTOR"), " on ", (_fmt_date(fu), "DATE"), f" at {_appointment_time(c)}")
        return
    mimic = c.chance(0.1 + 0.5 * x)
    visits = [(p.attending, fu)] + [(doctor_name(fake), fu + dt.timedelta(days=rng.randint(1, 45)))
                                    for _ in range(round((0.8 + 5 * x) * rng.random()))]
    for i, (doc, when) in enumerate(visits):
        if i:
            d.add("\n")
        if mimic:
            d.line(f"Department: {c.service if i == 0 else c.pick(_DEPARTMENTS)}")
            d.line(f"When: {when:%A} ", (_fmt_date(when), "DATE"), f" at {_appointment_time(c, True)}")
            d.line("With: ", (doc, "NAME:DOCTOR"), ", MD ", (phone_number(fake), "CONTACT:PHONE"))
            if c.chance(0.5):
                d.line(f"Building: {c.pick(('SC', 'LM', 'CC'))} {fake.last_name()} Building, "
                       f"{c.pick(('1st', '2nd', '3rd', '5th', '8th'))} Fl")
                d.line("Campus: ", c.pick(("EAST", "WEST")),
                       f"     Best Parking: {c.pick(('Main Garage', 'Lot B', 'Street parking'))}")
        else:
            d.line("Dr. ", (doc, "NAME:DOCTOR"), " on ", (_fmt_date(when), "DATE"), f" at {_appointment_time(c)}")
            if c.chance(0.15 + 0.75 * x):
                line = ["Location: ", (fake.street_address(), "LOCATION:STREET"), ", ", (p.city, "LOCATION:CITY"), ", ",
                        (fake.state_abbr(include_territories=False), "LOCATION:STATE"), " ",
                        (fake.zipcode(), "LOCATION:ZIP"), "  Phone: ", (p.phone if i == 0 else phone_number(fake),
                                                                          "CONTACT:PHONE")]
                if c.chance(0.3):
                    line += ["  Fax: ", (phone_number(fake), "CONTACT:FAX")]
                d.line(*line)
    if c.chance(0.1 + 0.3 * x):
        d.line(c.pick(("Please call to schedule a follow-up appointment with your primary care physician within 1 "
                       "week.",
                       "Please follow up with your PCP within 1-2 weeks of discharge.")))


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
