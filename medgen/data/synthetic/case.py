"""Drawing one record's case: the patient, condition, comorbidities, stay and how the note is written (its
detail, abbreviations, list style), and the sources the section writers draw details from.

Every draw from `rng` and `fake` happens in a fixed order, which is what makes a seed reproduce its records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import random
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

from faker import Faker

from medgen.core.constants import SEXES
from medgen.data.identity import Person, doctor_name, draw_person
from medgen.data.phi import names
from medgen.data.phi.dates import FORMS as DATE_FORMS
from medgen.data.phi.dates import render as render_date
from medgen.data.phi.forms import PHONE_FORMS, PHONE_WEIGHTS, draw_phone
from medgen.data.synthetic.clinical import (
    ALLERGIES,
    BASIC,
    COMPLICATIONS,
    EXCLUSIVE,
    HISTORY,
    LABS,
    Complication,
    Condition,
    History,
    conditions_for,
    histories_for,
    med,
    services_for,
)
from medgen.data.synthetic.phrases import FIELD_RE, article, draw_range, vary

ADMITTED = (dt.date(2015, 1, 1), dt.date(2025, 12, 31))

# Which of the date forms (medgen.data.phi.dates.FORMS) fit where: a line-leading result or study date needs a
# whole date; "on ___" takes any form that names a day; an event long past may be a month and year.
WHOLE = ("MM/DD/YYYY", "M/D/YYYY", "M/D/YY", "YYYY-MM-DD", "Month D, YYYY", "D Month YYYY", "DD-Mon-YYYY",
         "Mon D, YYYY", "M-D-YY")
DAY = WHOLE + ("M/D", "Mon D", "the Dth", "Month Dth", "D Mon")
PAST = ("Month YYYY", "MM/DD/YYYY", "M/D/YY", "Month D, YYYY")
LAB_FORMS = ("MM/DD/YYYY", "MM/DD/YYYY", "M/D/YYYY", "YYYY-MM-DD", "M/D")


@dataclass(frozen=True)
class Style:
    """How one note writes its PHI: most of its dates in one main form (a note is mostly consistent, notes are
    not), its lab lines in one numeric form, its phones in one style."""

    date: str  # key of dates.FORMS
    lab_date: str
    phone: str  # one of forms.PHONE_FORMS


class _Words(NamedTuple):
    """How the text refers to the patient."""

    title: str
    pr: str
    obj: str
    pos: str
    noun: str
    letter: str
    spouse: str


_WORDS = {"Male": _Words("Mr.", "he", "him", "his", "man", "M", "wife"),
          "Female": _Words("Ms.", "she", "her", "her", "woman", "F", "husband")}

@dataclass
class Case:
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
    style: Style = Style("MM/DD/YYYY", "MM/DD/YYYY", "(NNN) NNN-NNNN")
    vocab: dict = field(default_factory=dict)
    density: float = 0.5  # 0..1: how much PHI beyond the header the note carries (contacts, signatures, people)
    messy: float = 0.0  # 0..1: typos, abbreviations and run-on text
    pcp: str = ""  # the primary care physician, one per patient wherever the note names them

    @property
    def terse(self) -> bool:
        """The sparsest `full` notes (about one in fifteen): one line where others write a block."""
        return self.full and self.detail < 0.1

    @property
    def words(self) -> _Words:
        words = _WORDS[self.person.sex]
        return words._replace(title=self.vocab.get("title", words.title))

    def fill(self, template: str, **fields) -> list:
        """`template` as pieces: {name} from `fields`, the patient's words or lab values, {a-b} a number in
        that range, {x|y|z} one of the words (an alternative may be empty)."""
        parts = FIELD_RE.split(template)
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
                value = fields[part]
                out.extend(value) if isinstance(value, list) else out.append(value)
            elif part in self.vocab:
                out.append(self.vocab[part])
            elif part in self.labs:
                out.append(self.labs[part])
            else:
                out.append(draw_range(self.rng, part))
        return out

    def text(self, template: str, **fields) -> str:
        """`fill` for templates without PHI."""
        return "".join(self.fill(template, **fields))

    def pick(self, options: Sequence):
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


def fmt_date(d: dt.date) -> str:
    """A header date, as the MIMIC-IV layout prints it."""
    return d.strftime("%m/%d/%Y")


def draw_style(rng: random.Random) -> Style:
    names = list(DATE_FORMS)
    main = rng.choices(names, [DATE_FORMS[n][1] for n in names])[0]
    return Style(main, rng.choice(LAB_FORMS), rng.choices(PHONE_FORMS, PHONE_WEIGHTS)[0])


def body_date(c: Case, d: dt.date, fits: tuple[str, ...] = DAY) -> str:
    """A date inside the note: mostly in the note's main form where that fits here, else another form that does."""
    if c.style.date in fits and c.chance(0.65):
        form = c.style.date
    else:
        form = c.rng.choices(fits, [DATE_FORMS[f][1] for f in fits])[0]
    return render_date(DATE_FORMS[form][0], d)


def lab_date(c: Case, d: dt.date) -> str:
    return render_date(DATE_FORMS[c.style.lab_date][0], d)


def phone(c: Case) -> str:
    """A phone number, mostly in the note's style."""
    return draw_phone(c.rng, c.style.phone if c.chance(0.85) else None)


@functools.lru_cache(maxsize=None)
def lab_ranges(cond: Condition) -> dict[str, tuple[float, float]]:
    out = {}
    for spec in cond.labs:
        name, _, rng = spec.partition(" ")
        if rng:
            lo, _, hi = rng.partition("-")
            out[name] = (float(lo), float(hi))
    return out


@functools.lru_cache(maxsize=None)
def lab_names(cond: Condition) -> tuple[str, ...]:
    return tuple(spec.split(" ")[0] for spec in cond.labs)


def lab_value(rng: random.Random, name: str, lo: float | None = None, hi: float | None = None) -> str:
    lab = LABS[name]
    v = rng.uniform(lab.lo if lo is None else lo, lab.hi if hi is None else hi)
    return f"{v:.{lab.decimals}f}"


@functools.lru_cache(maxsize=None)
def _drugs_named(cond: Condition) -> str:
    """Every word of the condition's medications and course, to keep allergies off what the patient gets."""
    return " ".join([*cond.meds, *cond.course]).lower()


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


def _draw_allergies(c: Case) -> list[str]:
    used = " ".join([_drugs_named(c.cond), *c.home, *(comp.course for comp in c.complications)]).lower()
    safe = [a for a, drugs in ALLERGIES.items() if not any(d in used for d in drugs)]
    k = c.rng.choice((0, 0, 0, 1, 1, 2, 3)) if c.full else c.rng.choice((0, 1))
    return c.rng.sample(safe, k=min(k, len(safe)))


def tolerated(c: Case, pieces: Sequence) -> bool:
    """Whether a sentence names no drug the patient is allergic to (sentences drawn after the allergies are)."""
    text = "".join(p for p in pieces if isinstance(p, str)).lower()
    return not any(drug in text for a in c.allergies for drug in ALLERGIES[a])


def _draw_complications(c: Case) -> list[Complication]:
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


def draw_case(fake: Faker, rng: random.Random, profile: str, sex: str | None, service: str | None) -> Case:
    sex = sex or rng.choice(SEXES)
    service = service or rng.choice(services_for(sex))
    cond = rng.choice(conditions_for(service, sex))
    full = profile == "full"
    # How much the note writes, drawn first: the stay and the history it lists depend on it.
    detail = rng.random() ** 0.85 if full else 0.0
    person = draw_person(fake, rng, sex, (cond.min_age, cond.max_age), ADMITTED,
                         _stay_days(rng, cond, detail if full else None))
    pmh = _draw_history(rng, cond, sex, person.age, detail if full else None)
    home = _home_meds(rng, pmh)
    ranges = lab_ranges(cond)
    labs = {n: lab_value(rng, n, *ranges.get(n, (None, None))) for n in (*BASIC, *lab_names(cond))}
    c = Case(service, cond, full, person, pmh, home, labs, fake, rng, detail)
    w = c.words
    c.vocab = {"Pr": w.pr.capitalize(), "pr": w.pr, "obj": w.obj, "pos": w.pos, "title": w.title, "noun": w.noun,
               "last": (person.last, "NAME:PATIENT"), "age": (str(person.age), "AGE"),
               "first": (person.first, "NAME:PATIENT"), "name": (person.name, "NAME:PATIENT"),
               "hospital": (person.hospital, "LOCATION:HOSPITAL"), "art": article(str(person.age)),
               **_body_size(rng, sex, any(h.name == "obesity" for h in pmh), cond)}
    if full:
        c.abbrev = rng.random() < 0.4
        c.bullets = rng.choice(("- ", "- ", "* ", ""))
        c.complications = _draw_complications(c)
    c.allergies = _draw_allergies(c)
    c.course = [c.text(vary(c, s)) for s in cond.course]
    c.exam, c.imaging = c.text(cond.exam), c.text(cond.imaging)
    c.complaint = rng.choice(cond.complaints) if full else cond.complaints[0]
    c.followup = person.discharge + dt.timedelta(days=rng.randint(5, 21))
    c.style = draw_style(rng)
    c.person = dataclasses.replace(person, phone=draw_phone(rng, c.style.phone))
    # Drawn last, so that what came before them reads the same draws as it always did.
    if sex == "Female":
        c.vocab["title"] = rng.choices(("Ms.", "Mrs.", "Miss", "Ms"), (0.55, 0.3, 0.08, 0.07))[0]
    elif rng.random() < 0.1:
        c.vocab["title"] = "Mr"
    c.density = rng.random() ** 1.5
    c.messy = rng.random() ** 3
    c.pcp = doctor_name(fake)
    c.person = dataclasses.replace(c.person, mrn=_mrn(rng, c.person.mrn),
                                   last=_hyphenated(fake, c.person.last) if rng.random() < 0.1 else c.person.last)
    c.vocab.update(last=(c.person.last, "NAME:PATIENT"), name=(c.person.name, "NAME:PATIENT"))
    return c


def _mrn(rng: random.Random, digits: str) -> str:
    """A medical record number in one of the shapes institutions print: digits, grouped, zero-padded, lettered."""
    letters = "".join(rng.choice("ABCDEFGHKMNPRTWX") for _ in range(3))
    return rng.choices((digits, f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", f"{digits[:2]}-{digits[2:5]}-{digits[5:]}",
                        f"00{digits}", f"MR{digits}", f"{rng.choice('ABEHKMT')}{digits}", f"{letters}-{digits[:4]}",
                        f"{digits[:4]}-{digits[4:]}", digits[:5]),
                       (0.35, 0.12, 0.1, 0.08, 0.07, 0.08, 0.08, 0.06, 0.06))[0]


def _hyphenated(fake: Faker, last: str) -> str:
    return f"{last}-{names.last_name(fake.random)}"
