"""Surrogate makers: one synthetic identity and stay per note, and a maker per rule that turns a mask into a
typed surrogate (with its PHI spans) or a non-PHI filler."""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from typing import Callable

from faker import Faker

from medgen.data.identity import Person, doctor_name, draw_person
from medgen.data.mimic.rules import (
    AGE_SUFFIX,
    FALLBACK,
    KIN,
    KIN_F,
    KIN_M,
    RULES,
    SECTION_WINDOWS,
    Context,
    sentence,
    window,
)
from medgen.data.phi import places
from medgen.data.phi.dates import FORMS as DATE_FORMS
from medgen.data.phi.dates import render as render_date
from medgen.data.phi.forms import PHONE_FORMS, PHONE_WEIGHTS, draw_phone, wants_an

# ------------------------------------------------------------------------------------------ surrogates

@dataclass(frozen=True)
class Fill:
    """A surrogate: its text and the PHI spans inside it (offsets in `text`). A non-PHI fill has no spans
    and a typed `placeholder`; `proper` (a person's name) drops an article before it; `when` is a date's
    window."""

    text: str
    spans: tuple[tuple[int, int, str], ...] = ()
    placeholder: str | None = None
    proper: bool = False
    when: str | None = None


def _phi(text: str, category: str, **kw) -> Fill:
    return Fill(text, ((0, len(text), category),), **kw)


def _parts(*parts: tuple[str, str | None], **kw) -> Fill:
    """A fill from (text, category or None) pieces."""
    out, spans, n = [], [], 0
    for text, category in parts:
        if category:
            spans.append((n, n + len(text), category))
        out.append(text)
        n += len(text)
    return Fill("".join(out), tuple(spans), **kw)


def _non_phi(text: str, kind: str) -> Fill:
    return Fill(text, placeholder=f"<{kind}>")


def _years_before(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


# MIMIC shifts dates into the 22nd century; surrogate stays fall in the same years.
ADMITTED = (dt.date(2110, 1, 1), dt.date(2180, 12, 31))
# The patient's own age masked (not an age at an earlier event, "onset at age ___")
_AGE_MASK_RE = re.compile(r"_{3,}(?:" + AGE_SUFFIX + r")|\b(?:Age:|aged)\s*_{3,}")
_STATED_AGE_RE = re.compile(r"\b(\d{1,3})(?:" + AGE_SUFFIX + r")(?!\s+(?:" + KIN + r"))")
_FEMALE_KIN = re.compile(rf"(?i)\b(?:{KIN_F})\b")
_MALE_KIN = re.compile(rf"(?i)\b(?:{KIN_M})\b")
_CLOSE_FAMILY = re.compile(r"(?:daughter|son|wife|husband|mother|father|sister|brother|mom|dad)$")
_OUTSIDE = re.compile(r"(?i)\b(?:OSH|outside|transferr(?:ed|al) from|from an?|another|local|other|previously)\b")
DATE_FORMAT = "%m/%d/%Y"  # the header's dates, as MIMIC-IV's layout prints them
# The forms the note's other dates are written in (one main form per note, the others now and then): whole dates
# only, since a masked date stands where the note's own whole date stood; no two-digit years, which could not say
# which century MIMIC's shifted dates fall in.
BODY_DATE_FORMS = ("MM/DD/YYYY", "M/D/YYYY", "YYYY-MM-DD", "Month D, YYYY", "D Month YYYY", "DD-Mon-YYYY")


@dataclass
class Identity:
    """One synthetic person and stay per note; every surrogate of the note comes from here, so names,
    places and dates agree wherever they recur."""

    person: Person
    fake: Faker
    rng: random.Random
    doctors: tuple[str, ...]  # masked doctor names take these in turn
    _doctor_i: int = 0
    memo: dict[str, object] = field(default_factory=dict)  # values that recur within the note
    _cursors: dict[str, dt.date] = field(default_factory=dict)
    _last_draw: tuple[str, dt.date] | None = None  # the time and date of the last lab line
    date_form: str = "MM/DD/YYYY"  # the note's main form for dates in its body (BODY_DATE_FORMS)
    phone_form: str = "(NNN) NNN-NNNN"  # the note's style for phones (forms.PHONE_FORMS)

    @classmethod
    def make(cls, fake: Faker, rng: random.Random, sex: str, text: str) -> Identity:
        """`sex` is "Male" or "Female". An age left unmasked in `text` is kept; a masked age is over 89."""
        m = _STATED_AGE_RE.search(text)
        stated = int(m.group(1)) if m and 0 < int(m.group(1)) < 120 else None
        ages = (stated, stated) if stated else (90, 99) if _AGE_MASK_RE.search(text) else (25, 89)
        person = draw_person(fake, rng, sex, ages, ADMITTED, (2, 12))
        ident = cls(person, fake, rng, (person.attending, doctor_name(fake), doctor_name(fake)))
        ident.date_form = rng.choices(BODY_DATE_FORMS, [DATE_FORMS[f][1] for f in BODY_DATE_FORMS])[0]
        ident.phone_form = rng.choices(PHONE_FORMS, PHONE_WEIGHTS)[0]
        return ident

    def write_date(self, d: dt.date) -> str:
        """A date of the note's body: mostly in its main form."""
        form = self.date_form if self.rng.random() < 0.75 else self.rng.choice(BODY_DATE_FORMS)
        return render_date(DATE_FORMS[form][0], d)

    def phone(self, plain: bool = False) -> str:
        """A phone in the note's style; `plain` (inside brackets) with dashes only."""
        return draw_phone(self.rng, "NNN-NNN-NNNN" if plain else self.phone_form)

    def once(self, key: str, make: Callable[[], object]):
        """The same value every time `key` recurs in the note."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def doctor(self) -> str:
        self._doctor_i += 1
        return self.doctors[(self._doctor_i - 1) % len(self.doctors)]

    def hospital(self, outside: bool) -> tuple[str, str]:
        """(full name, short name) of the hospital of the stay or of an outside one."""
        def make() -> tuple[str, str]:
            f, rng = self.fake, self.rng
            city, last, saint = f.city(), f.last_name(), f.first_name()
            return rng.choice(((f"{city} General Hospital", f"{city} General"), (f"St. {saint}'s Hospital",
                               f"St. {saint}'s"), (f"{last} Memorial Hospital", f"{last} Memorial"),
                               (f"{city} Medical Center", city)))
        return self.once("outside" if outside else "home", make)  # type: ignore[return-value]

    def date(self, when: str, key: str) -> dt.date:
        """A date in window `when`; within the stay and after it, dates of one section never go backwards."""
        p, rng = self.person, self.rng
        if when == "admit":
            return p.admit
        if when == "discharge":
            return p.discharge
        if when == "past":
            lo = _years_before(p.admit, max(p.age - 18, 1)) if p.age > 19 else p.dob + dt.timedelta(days=1)
            hi = p.admit - dt.timedelta(days=60)
            return lo + dt.timedelta(days=rng.randint(0, max((hi - lo).days, 0)))
        if when == "recent":
            return p.admit - dt.timedelta(days=rng.randint(1, 14))
        if when == "course":
            return p.discharge + dt.timedelta(days=rng.randint(1, 14))
        if when == "followup":
            cur = self._cursors.get(f"followup/{key}", p.discharge + dt.timedelta(days=rng.randint(1, 9)))
            d = cur + dt.timedelta(days=rng.randint(0, 14))
        else:  # stay
            cur = self._cursors.get(f"stay/{key}", p.admit)
            d = min(p.discharge, cur + dt.timedelta(days=rng.choice((0, 0, 1, 1, 2))))
        self._cursors[f"{when}/{key}"] = d
        return d

    def lab_date(self, section: str, drawn: str) -> dt.date:
        """Consecutive lab lines drawn at the same time are one draw and share a date; another time moves
        on through the stay."""
        key = f"{section}/{drawn}"
        if self._last_draw is None or self._last_draw[0] != key:
            self._last_draw = (key, self.date("stay", section))
        return self._last_draw[1]


def _date(ident: Identity, ctx: Context, when: str) -> Fill:
    d = ident.date(when, ctx.section)
    if ctx.masks > 1 and "-" in "".join(ctx.seps):  # "___-___": a range
        end = d + dt.timedelta(days=ident.rng.randint(1, 7))
        if when == "stay":
            end = min(end, ident.person.discharge)
        return _parts((ident.write_date(d), "DATE"), ("-", None), (ident.write_date(end), "DATE"), when=when)
    if ctx.masks > 1 and "/" in "".join(ctx.seps):  # "___/___": month and year
        return _phi(d.strftime("%m/%Y"), "DATE", when=when)
    return _phi(ident.write_date(d), "DATE", when=when)


def _lab_date(ident: Identity, ctx: Context) -> Fill:
    drawn = re.match(r"[ \t]+(\d{1,2}:\d{2}\s*[AaPp]?[Mm]?)", ctx.after).group(1)  # type: ignore[union-attr]
    return _phi(ident.lab_date(ctx.section, drawn).strftime(DATE_FORMAT), "DATE", when="stay")


def _year(ident: Identity, ctx: Context) -> Fill:
    when = window(ctx)
    return _phi(str(ident.date(when, ctx.section).year), "DATE", when=f"{when}-year")


FOLLOWUP_DEPARTMENTS = ("CARDIOLOGY", "GASTROENTEROLOGY", "NEPHROLOGY", "PULMONARY", "NEUROLOGY",
                        "HEMATOLOGY/ONCOLOGY", "ORTHOPEDICS", "GENERAL SURGERY", "UROLOGY", "RADIOLOGY",
                        "PRIMARY CARE", "ENDOCRINOLOGY")


def _followup_block(ident: Identity, ctx: Context) -> Fill:
    """The appointments a masked Followup Instructions section held, in one of the layouts notes use."""
    rng, f = ident.rng, ident.fake
    parts: list[tuple[str, str | None]] = []
    for i in range(rng.randint(1, 3)):
        d = ident.date("followup", "followup instructions")
        hour = rng.randint(8, 16)
        time = f"{(hour - 1) % 12 + 1}:{rng.choice(('00', '15', '30', '45'))} {'AM' if hour < 12 else 'PM'}"
        dept = rng.choice(FOLLOWUP_DEPARTMENTS)
        doc = ident.doctor()
        if i:
            parts.append(("\n\n", None))
        if rng.random() < 0.6:
            building = ident.once("building", f.last_name)
            parts += [(f"Department: {dept}\nWhen: ", None), (d.strftime("%A").upper(), "DATE"), (" ", None),
                      (d.strftime(DATE_FORMAT), "DATE"), (" at ", None), (time, "TIME"), ("\nWith: ", None),
                      (doc, "NAME:DOCTOR"), (", MD ", None), (ident.phone(), "CONTACT:PHONE"),
                      ("\nBuilding: ", None), (str(building), "LOCATION:DEPARTMENT"), (" Building, ", None),
                      (ident.hospital(False)[0], "LOCATION:HOSPITAL"), ("\nCampus: ", None),
                      (rng.choice(("EAST", "WEST")), None), ("     Best Parking: ", None),
                      (str(building), "LOCATION:DEPARTMENT"), (" Garage", None)]
        else:
            parts += [(f"{dept.title()} appointment with Dr. ", None), (doc, "NAME:DOCTOR"), (" on ", None),
                      (d.strftime(DATE_FORMAT), "DATE"), (" at ", None), (time, "TIME"),
                      (". If you need to reschedule, please call ", None), (ident.phone(), "CONTACT:PHONE"),
                      (".", None)]
    return _parts(*parts, when="followup")


def _age_sex(ident: Identity, ctx: Context) -> Fill:
    """The age-and-sex phrase MIMIC masks whole ("52F"), in one of the ways notes write it."""
    p, rng = ident.person, ident.rng
    woman = p.sex == "Female"
    age = str(p.age)
    forms = (f" year old {'woman' if woman else 'man'}", f" y/o {'F' if woman else 'M'}", "F" if woman else "M",
             f"-year-old {'female' if woman else 'male'}")
    return _parts((age, "AGE"), (rng.choice(forms), None))


def _age_lead(ident: Identity, ctx: Context) -> Fill:
    form = ident.rng.choice((" year old", " y/o", "-year-old", " yo"))
    return _parts((str(ident.person.age), "AGE"), (form, None))


def _relative(ident: Identity, groups: dict[str, str], masks: int) -> Fill:
    """A relative's first name (full name for two masks), of the sex the relation implies, the same for the
    same relation throughout the note; close family share the patient's surname."""
    word = (groups.get("kin") or groups.get("kin2") or "relative").lower()
    if _FEMALE_KIN.match(word) or _MALE_KIN.match(word):
        female = bool(_FEMALE_KIN.match(word))
    else:
        female = bool(ident.once(f"female/{word}", lambda: ident.rng.random() < 0.5))
    first = str(ident.once(f"kin/{word}", ident.fake.first_name_female if female else ident.fake.first_name_male))
    if masks == 1:
        return _phi(first, "NAME:PATIENT", proper=True)
    family = _CLOSE_FAMILY.match(word)
    surname = ident.person.last if family else str(ident.once(f"surname/{word}", ident.fake.last_name))
    return _phi(f"{first} {surname}", "NAME:PATIENT", proper=True)


def _patient_subject(ident: Identity, ctx: Context) -> Fill:
    p = ident.person
    if ctx.masks > 1:
        return _phi(p.name, "NAME:PATIENT", proper=True)
    return _parts(("Mr. " if p.sex == "Male" else "Ms. ", None), (p.last, "NAME:PATIENT"), proper=True)


def _doctor(ident: Identity, ctx: Context, full: bool) -> Fill:
    name = ident.doctor()
    return _phi(name if full or ctx.masks > 1 else name.split()[-1], "NAME:DOCTOR", proper=True)


def _ward(ident: Identity, ctx: Context) -> Fill:
    building = str(ident.once("ward", ident.fake.last_name))
    if re.match(r"\s+(?:\d|[A-Z]*ICU|CCU)", ctx.after):
        return _phi(building, "LOCATION:DEPARTMENT")
    return _phi(f"{building} {ident.rng.randint(2, 12)}", "LOCATION:DEPARTMENT")


def _time(ident: Identity, ctx: Context) -> Fill:
    rng = ident.rng
    t = f"{rng.randint(1, 12)}:{rng.choice(('00', '15', '30', '45'))}"
    return _phi(t if re.match(r"\s*[AaPp]\.?[Mm]", ctx.after) else f"{t} {rng.choice(('AM', 'PM'))}", "TIME")


# Non-PHI fillers: what such masks hid in real notes.
SECTION_FILLERS = {
    "social history": (
        "Lives with {poss} {spouse} in a single-family home. Retired {job}. Former smoker, quit {n} years ago. "
        "Drinks {drinks} per week. No illicit drug use.",
        "Lives alone in an apartment; {poss} {child} checks in daily. Works as {a_job}. Never smoker. No alcohol "
        "or drug use.",
        "Currently living with family. {Sub} smokes {packs} pack per day and drinks alcohol socially. Denies "
        "IV drug use. Independent in all ADLs.",
        "Married, lives with {poss} {spouse}. {Sub} is {a_job}. Quit smoking {n} years ago ({py} pack-years). "
        "Rare alcohol. Ambulates with a cane.",
        "Resides at an assisted living facility. Widowed. Remote tobacco use. No alcohol. Uses a walker.",
    ),
    "family history": (
        "Mother with hypertension and type 2 diabetes. Father died of a myocardial infarction in his 60s.",
        "Noncontributory.",
        "No family history of early coronary disease, sudden cardiac death or malignancy.",
        "Brother with colon cancer diagnosed in his 50s. Mother with breast cancer.",
        "Father with COPD and stroke; sister with hypothyroidism.",
    ),
    "major surgical or invasive procedure": ("None",),
    "past surgical history": ("Appendectomy; cholecystectomy.", "None.", "Right total knee replacement."),
}
_JOBS = ("teacher", "accountant", "nurse", "electrician", "postal worker", "engineer", "bus driver", "cashier")
LAB_PANELS = (
    "WBC-7.2 RBC-4.01 Hgb-12.1 Hct-36.5 MCV-91 MCH-30.2 MCHC-33.1 RDW-13.9 Plt Ct-231",
    "PT-12.6 PTT-29.8 INR(PT)-1.2",
    "Glucose-112* UreaN-19 Creat-1.0 Na-139 K-4.1 Cl-102 HCO3-25 AnGap-12",
    "ALT-24 AST-31 AlkPhos-88 TotBili-0.6",
    "Calcium-8.9 Phos-3.4 Mg-2.0",
    "Neuts-71.2* Lymphs-18.4* Monos-7.1 Eos-2.6 Baso-0.4",
    "cTropnT-<0.01 proBNP-412*",
    "Lactate-1.6",
)
EPONYMS = {"sarcoma": "Kaposi", "esophagus": "Barrett", "sign": "Murphy", "palsy": "Bell", "lymphoma": "Hodgkin",
           "disease": "Crohn", "syndrome": "Sjogren", "ulcer": "Curling", "triad": "Charcot", "hernia": "Spigelian",
           "fracture": "Colles", "test": "Romberg", "maneuver": "Valsalva", "thyroiditis": "Hashimoto",
           "catheter": "Foley", "pugh": "Child", "criteria": "Light", "node": "Virchow", "cyst": "Baker",
           "encephalopathy": "Wernicke", "phenomenon": "Raynaud", "contracture": "Dupuytren"}
EXAM_TERMS = {"edema": ("lower extremity", "bilateral lower extremity", "pedal", "trace bilateral"),
              "strength": ("5/5", "Full"),
              "pulse": ("PT", "radial", "DP"), "pain": ("calf", "leg"), "swelling": ("calf", "ankle"),
              "pitting": ("1+", "trace")}
DRUGS = {"Truvada": "Emtricitabine-Tenofovir", "Coumadin": "Warfarin", "Lasix": "Furosemide", "Keppra": "Levetiracetam",
         "Eliquis": "Apixaban", "Xarelto": "Rivaroxaban", "Plavix": "Clopidogrel", "Lipitor": "Atorvastatin",
         "Synthroid": "Levothyroxine", "Zofran": "Ondansetron", "Flomax": "Tamsulosin", "Protonix": "Pantoprazole"}
_UNITS = ((r"year|yr", (2, 25)), (r"month|mo", (2, 10)), (r"week|wk", (2, 6)), (r"day", (2, 10)), (r"hour|hr", (2, 12)),
          (r"pack[- ]year", (10, 60)), (r"pack|ppd", (1, 2)), (r"lb|pound|kg", (5, 30)), (r"", (2, 4)))


def _section_filler(ident: Identity, ctx: Context, groups: dict[str, str]) -> Fill:
    heading = groups.get("heading", ctx.section).strip()
    kind = re.sub(r"[^A-Z0-9]+", "_", heading.upper()).strip("_")
    pool = SECTION_FILLERS.get(heading.lower(), ("Not documented.",))
    p, rng = ident.person, ident.rng
    woman = p.sex == "Female"
    job = rng.choice(_JOBS)
    text = rng.choice(pool).format(
        poss="her" if woman else "his", Sub="She" if woman else "He", spouse="husband" if woman else "wife",
        child=rng.choice(("daughter", "son")), job=job, a_job=f"{'an' if wants_an(job) else 'a'} {job}",
        n=rng.randint(2, 30), py=rng.randint(10, 50),
        drinks=rng.choice(("1-2 glasses of wine", "2-3 beers", "one drink")), packs=rng.choice(("half a", "one")))
    return _non_phi(text, kind)


def _quantity(ident: Identity, ctx: Context) -> Fill:
    unit = re.match(r"[\s-]*(?:to\s+\d+\s+)?(\S+)", ctx.after)
    word = unit.group(1).lower() if unit else ""
    lo, hi = next(r for pattern, r in _UNITS if re.match(pattern, word))
    n = ident.rng.randint(lo, hi)
    return _non_phi(f"{n}-{n + 1}" if not word.startswith(("year", "yr", "pack")) and ident.rng.random() < 0.3
                    else str(n), "NUMBER")


def _eponym(ident: Identity, ctx: Context) -> Fill:
    """The eponym the noun after the mask goes with ("___'s sarcoma": Kaposi); after "Child's", Pugh."""
    if re.search(r"\bChild'?s?[\s-]*\Z", ctx.before):
        return _non_phi("Pugh", "EPONYM")
    noun = re.match(r"(?:'s\s+|[\s-]+)([A-Za-z]+)", ctx.after).group(1).lower()  # type: ignore[union-attr]
    return _non_phi(EPONYMS.get(noun, "Parkinson"), "EPONYM")


def _exam_term(ident: Identity, ctx: Context) -> Fill:
    word = re.match(r"\s+([a-z]+)", ctx.after).group(1)  # type: ignore[union-attr]
    word = word if word in EXAM_TERMS else word.rstrip("s")
    return _non_phi(ident.rng.choice(EXAM_TERMS.get(word, ("bilateral",))), "EXAM_TERM")


def _drug(ident: Identity, ctx: Context) -> Fill:
    brand = re.match(r"\s*\(([A-Za-z-]+)\)", ctx.after).group(1)  # type: ignore[union-attr]
    return _non_phi(DRUGS.get(brand, brand), "DRUG")


def _lab_values(ident: Identity, ctx: Context) -> Fill:
    """Values that fit their neighbours: the platelet count after "Plt", PT before PTT, INR after it."""
    rng = ident.rng
    if re.search(r"\bPlt\s*\Z", ctx.before):
        return _non_phi(f"Ct-{rng.randint(110, 420)}", "LAB_VALUES")
    if re.match(r"\s*PTT", ctx.after):
        return _non_phi(f"PT-{rng.randint(110, 160) / 10}", "LAB_VALUES")
    if re.search(r"\bPTT-[\d.]+\*?\s*\Z", ctx.before):
        return _non_phi(f"INR(PT)-{rng.randint(10, 16) / 10}", "LAB_VALUES")
    return _non_phi(rng.choice(LAB_PANELS), "LAB_VALUES")


def _phone(ident: Identity, ctx: Context) -> str:
    """A number; inside parentheses or brackets written with dashes, so it does not nest them."""
    return ident.phone(plain=bool(re.search(r"[(\[]\s*\Z", ctx.before)))


def _state_zip(ident: Identity) -> Fill:
    return _parts((_state(ident), "LOCATION:STATE"), (" ", None), (_zip(ident), "LOCATION:ZIP"))


def _state(ident: Identity) -> str:
    return str(ident.once("state", ident.fake.state_abbr))


def _zip(ident: Identity) -> str:
    return str(ident.once("zip", ident.fake.zipcode))


def _city(ident: Identity) -> str:
    return str(ident.once("city", ident.fake.city))


def _facility(ident: Identity) -> str:
    f, rng = ident.fake, ident.rng
    return rng.choice((f"{f.last_name()} Rehabilitation Center", f"{f.city()} Nursing and Rehabilitation Center",
                       f"{f.last_name()} House Nursing Home", f"{f.city()} Skilled Nursing Facility"))


Maker = Callable[[Identity, Context, dict], Fill]
MAKERS: dict[str, Maker] = {
    "patient_full": lambda i, c, g: _phi(i.person.name, "NAME:PATIENT", proper=True),
    "patient_last": lambda i, c, g: _phi(i.person.name if c.masks > 1 else i.person.last, "NAME:PATIENT", proper=True),
    "patient_first": lambda i, c, g: _phi(i.person.name if c.masks > 1 else i.person.first, "NAME:PATIENT",
                                          proper=True),
    "patient_subject": lambda i, c, g: _patient_subject(i, c),
    "contact_full": lambda i, c, g: _phi(str(i.once("contact", lambda: f"{i.fake.first_name()} {i.fake.last_name()}")),
                                         "NAME:PATIENT", proper=True),
    "relative": lambda i, c, g: _relative(i, g, c.masks),
    "doctor_full": lambda i, c, g: _doctor(i, c, full=True),
    "doctor_last": lambda i, c, g: _doctor(i, c, full=False),
    "mrn": lambda i, c, g: _phi(i.person.mrn, "ID:MEDICALRECORD"),
    "admit_date": lambda i, c, g: _phi(i.person.admit.strftime(DATE_FORMAT), "DATE", when="admit"),
    "discharge_date": lambda i, c, g: _phi(i.person.discharge.strftime(DATE_FORMAT), "DATE", when="discharge"),
    "birth_date": lambda i, c, g: _phi(i.person.dob.strftime(DATE_FORMAT), "DATE", when="birth"),
    "date": lambda i, c, g: _date(i, c, window(c)),
    "stay_date": lambda i, c, g: _date(i, c, "stay"),
    "lab_date": lambda i, c, g: _lab_date(i, c),
    "followup_date": lambda i, c, g: _date(i, c, "followup"),
    "year": lambda i, c, g: _year(i, c),
    "month": lambda i, c, g: _phi(i.date(window(c), c.section).strftime("%B"), "DATE"),
    "weekday": lambda i, c, g: _phi(i.rng.choice(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                                  "Sunday")), "DATE"),
    "time": lambda i, c, g: _time(i, c),
    "followup_block": lambda i, c, g: _followup_block(i, c),
    "age": lambda i, c, g: _phi(str(i.person.age), "AGE"),
    "earlier_age": lambda i, c, g: _phi(str(i.rng.randint(min(12, i.person.age - 1), max(i.person.age - 2, 12))),
                                        "AGE"),
    "age_sex": lambda i, c, g: _age_sex(i, c),
    "age_lead": lambda i, c, g: _age_lead(i, c),
    "hospital_short": lambda i, c, g: _phi(i.hospital(bool(_OUTSIDE.search(sentence(c.before))))[1],
                                           "LOCATION:HOSPITAL"),
    "hospital_full": lambda i, c, g: _phi(i.hospital(bool(_OUTSIDE.search(sentence(c.before))) or
                                                     SECTION_WINDOWS.get(c.section) == "past")[0], "LOCATION:HOSPITAL"),
    "facility": lambda i, c, g: _phi(str(i.once("facility", lambda: _facility(i))), "LOCATION:HOSPITAL"),
    "building": lambda i, c, g: _phi(str(i.once("building", i.fake.last_name)), "LOCATION:DEPARTMENT"),
    "organization": lambda i, c, g: _phi(_city(i), "LOCATION:ORGANIZATION"),
    "ward": lambda i, c, g: _ward(i, c),
    "street": lambda i, c, g: _phi(str(i.once("street", lambda: places.street(i.rng))), "LOCATION:STREET"),
    "route": lambda i, c, g: _phi(str(i.rng.randint(1, 140)), "LOCATION:STREET"),
    "street_name": lambda i, c, g: _phi(str(i.once("street_name", i.fake.last_name)), "LOCATION:STREET"),
    "city": lambda i, c, g: _phi(_city(i), "LOCATION:CITY"),
    "state": lambda i, c, g: _phi(_state(i), "LOCATION:STATE"),
    "zip": lambda i, c, g: _phi(_zip(i), "LOCATION:ZIP"),
    "state_zip": lambda i, c, g: _state_zip(i),
    "country": lambda i, c, g: _phi(str(i.once("country", i.fake.country)), "LOCATION:COUNTRY"),
    "phone": lambda i, c, g: _phi(_phone(i, c), "CONTACT:PHONE"),
    "fax": lambda i, c, g: _phi(_phone(i, c), "CONTACT:FAX"),
    "section_filler": _section_filler,
    "lab_values": lambda i, c, g: _lab_values(i, c),
    "specimen": lambda i, c, g: _non_phi(i.rng.choice(("Catheter", "Midstream", "Line-PICC", "Line-arterial")),
                                         "SPECIMEN"),
    "quantity": lambda i, c, g: _quantity(i, c),
    "dose": lambda i, c, g: _non_phi(i.rng.choice(("25-100", "10-325", "875-125", "5-325") if c.before.endswith("(")
                                                  else ("500", "250", "100", "25")), "DOSE"),
    "eponym": lambda i, c, g: _eponym(i, c),
    "exam_term": lambda i, c, g: _exam_term(i, c),
    "drug": lambda i, c, g: _drug(i, c),
    "it_word": lambda i, c, g: _non_phi("It", "WORD"),
    # The context says nothing: most such masks in MIMIC-IV-Note hide a proper noun.
    "fallback": lambda i, c, g: _phi(i.fake.last_name(), FALLBACK, proper=True),
}
assert {r.make for r in RULES} <= set(MAKERS), "every rule needs a maker"
