"""The surrogate pass: every PHI value of a record replaced by a fresh, realistic one, consistent inside the record.

What a generated record's PHI is, is whatever the model emitted, which may be a training patient's name and MRN.
This pass (the i2b2 corpora's and "hide in plain sight"'s answer to both privacy and consistency) replaces each
value by a surrogate of the same category, in the same surface form:

- people: one new first name per distinct first name (of the same sex), one new surname per distinct surname,
  so every mention of a person (full name, "Mr. Surname", the first name alone, initials, "SURNAME, FIRST") maps
  to the same new person, each in its own form; the same for hospitals, organizations, cities and streets (the
  distinctive words map, "Hospital", "St", a unit's number keep their form);
- dates: one random shift per record, so intervals and order hold; each date re-rendered in its own form, partial
  ones included ("3/10", "June", "2089", "the 3rd"), their missing fields read from the admission date; a weekday
  written beside a date follows it;
- ages: the patient's follow the (shifted) date of birth and admission; past 89 in the record's own convention
  ("90+") where it has one; other ages (a relative's) move by a few years;
- identifiers (MRN, phone, fax, ZIP, SSN, account, ...): digits and letters drawn anew, separators, groups and
  length kept, the same value mapped the same way throughout the record;
- "a"/"an" before a replaced value agrees with it, and the patient's title (Mr./Ms.) with the record's Sex.

`surrogate(text, spans, seed, avoid)` returns the new text, its spans (offsets recomputed exactly) and what was
done. `avoid` holds values that must never be drawn (the training split's), so no surrogate repeats one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from faker import Faker

from medgen.data.phi import dates as D
from medgen.data.phi import names, places
from medgen.data.phi.categories import category
from medgen.data.phi.forms import wants_an
from medgen.data.record_format import header_value, person_name

SHIFT_DAYS = (180, 3650)  # a record's dates move by this many days, either way
_TITLE_RE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Drs|Prof)\.?\s+)\Z", re.IGNORECASE)
_PATIENT_TITLE_RE = re.compile(r"\b(Mr|Mrs|Ms|Miss)(\.?\s+)\Z")
_NAME_AFFIX = re.compile(r"^(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?$|^(?:MD|M\.D\.|DO|RN|NP|PA|PA-C|PhD|Jr\.?|Sr\.?|II|III|IV)$",
                         re.IGNORECASE)
_INITIAL_RE = re.compile(r"^[A-Za-z]\.?$")
# A relative named by one word ("her daughter Maya", "Baby (Leo)") is named by a first name.
_KIN_RE = re.compile(r"\b(?:daughter|son|wife|husband|mother|father|sister|brother|baby|partner|friend|niece|nephew|"
                     r"grandson|granddaughter|girlfriend|boyfriend|mom|dad|child)\W{0,3}\Z", re.IGNORECASE)
_INITIALS_RE = re.compile(r"(?:[A-Za-z]\.?){1,3}")
_ARTICLE_RE = re.compile(r"(?:(?<=\s)|\A)(an?|An?|AN?)(\s+)\Z")
_AGE_UNIT_RE = re.compile(r"\A(?:\s*-?\s*(?:years?|yrs?|yo)\b|\s*y/?o\b|\s*y\.o\.|\s?-year-old|\s?[MF]\b)",
                          re.IGNORECASE)
_DOB_RE = re.compile(r"(?:\bDOB|Date of Birth|\bborn(?: on)?|\bD\.O\.B\.)\W{0,3}\Z", re.IGNORECASE)
_AGE_LEAD_RE = re.compile(r"(?:\bage[d:]?\s*|\bAge:\s*)\Z", re.IGNORECASE)
_NOT_PATIENT_AGE = re.compile(r"\b(?:mother|father|sister|brother|son|daughter|wife|husband|grand\w+|aunt|uncle|"
                              r"sibling|child|died|death|passed|at age|since age|age of|onset|when s?he was|at the age)\b",
                              re.IGNORECASE)
_OVER_89_RE = re.compile(r"^\s*(?:>\s*89|over\s+89|older than\s+89|90\s*\+|\d{2,3}\s*\+|90 or older)\s*$",
                         re.IGNORECASE)
_WEEKDAY_WORD = re.compile(r"\b(" + "|".join(D.WEEKDAYS) + r"|Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)\b\.?",
                           re.IGNORECASE)
_GENERIC_PLACE = {w.lower() for w in (
    "Hospital", "Hospitals", "Medical", "Center", "Centre", "General", "Memorial", "Regional", "Community",
    "University", "Clinic", "Clinics", "Health", "Healthcare", "System", "ED", "ER", "Emergency", "Department",
    "Rehabilitation", "Rehab", "Nursing", "Home", "VNA", "Pharmacy", "Hospice", "Services", "Service", "Care",
    "Institute", "of", "the", "and", "&", "for", "at", "Children's", "Women's", "Unit", "Ward", "Floor", "Wing",
    "Building", "Tower", "Pavilion", "Campus", "ICU", "MICU", "SICU", "CCU", "NICU", "Step-Down", "Stepdown",
    "Cardiac", "Surgical", "Medicine", "Center's", "Specialty", "Specialties", "Associates", "Group", "Practice",
    "Visiting", "Nurse", "Nurses", "Association", "Inc", "Inc.", "LLC", "Co", "Company", "Corp", "Corporation",
    "Family", "Primary", "Urgent", "Outpatient", "Inpatient", "Behavioral", "Mental", "Senior", "Living", "Assisted",
    "Skilled", "Facility", "Agency", "Shelter", "School", "Bank", "Church", "Market", "Store", "Lab", "Laboratory",
    "Dialysis", "Cancer", "Heart", "Orthopedic", "Orthopaedic", "Surgery", "Team", "North", "South", "East", "West",
    "St.", "St", "Saint", "Mount", "Mt.", "Lake", "Valley", "Park", "County", "City", "Hill")}
_STREET_GENERIC = {w.lower() for w in (
    "St", "St.", "Street", "Ave", "Ave.", "Avenue", "Rd", "Rd.", "Road", "Blvd", "Blvd.", "Boulevard", "Dr", "Dr.",
    "Drive", "Ln", "Ln.", "Lane", "Way", "Ct", "Ct.", "Court", "Pl", "Pl.", "Place", "Ter", "Terrace", "Pkwy",
    "Parkway", "Hwy", "Highway", "Route", "Rte", "Cir", "Circle", "Sq", "Square", "Trl", "Trail", "Suite", "Ste",
    "Apt", "Apt.", "Apartment", "Unit", "Fl", "Floor", "#", "N", "S", "E", "W", "N.", "S.", "E.", "W.", "NE", "NW",
    "SE", "SW", "North", "South", "East", "West", "PO", "P.O.", "Box", "Rural", "RR")}
STATES = places.STATES
_STATE_NAMES = {v.lower(): k for k, v in STATES.items()}


def norm(value: str) -> str:
    return " ".join(value.casefold().split())


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


@dataclass
class Stats:
    """What the pass did to one record (counts only)."""

    replaced: Counter = field(default_factory=Counter)  # spans per category
    kept: Counter = field(default_factory=Counter)  # spans left as they were (TIME, a place with no distinctive word)
    unparsed_dates: int = 0  # dates in no known form: their digits redrawn instead
    weekdays_fixed: int = 0  # weekdays beside a date rewritten to follow it
    ages_from_dob: int = 0  # patient ages computed from the date of birth and admission
    titles_fixed: int = 0  # Mr./Ms. before the patient's name changed to agree with Sex
    articles_fixed: int = 0  # a/an before a replaced value

    def add(self, other: Stats) -> None:
        for name in ("replaced", "kept"):
            getattr(self, name).update(getattr(other, name))
        for name in ("unparsed_dates", "weekdays_fixed", "ages_from_dob", "titles_fixed", "articles_fixed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {"replaced": dict(self.replaced.most_common()), "kept": dict(self.kept.most_common()),
                "unparsed_dates": self.unparsed_dates, "weekdays_fixed": self.weekdays_fixed,
                "ages_from_dob": self.ages_from_dob, "titles_fixed": self.titles_fixed,
                "articles_fixed": self.articles_fixed}


@dataclass(frozen=True)
class Avoid:
    """Values a surrogate must never be (normalized): the training split's, so a fresh value never repeats one."""

    names: frozenset[str] = frozenset()  # full names, "first last"
    codes: frozenset[str] = frozenset()  # identifiers and phones, digits and letters only, lowercased
    places: frozenset[str] = frozenset()  # streets, hospitals, cities, normalized

    @classmethod
    def of(cls, records: Iterable[tuple[str, list[Mapping]]]) -> Avoid:
        names, codes, places = set(), set(), set()
        for _, spans in records:
            for s in spans:
                cat = category(s["category"])
                if cat.maker == "name" and len(s["text"].split()) >= 2:
                    names.add(norm(s["text"]))
                elif cat.maker in ("code", "email", "ip", "username"):
                    codes.add(_compact(s["text"]))
                elif cat.maker in ("street", "place", "city", "profession", "country"):
                    places.add(norm(s["text"]))
        return cls(frozenset(names), frozenset(codes), frozenset(places))


def _compact(value: str) -> str:
    return "".join(ch for ch in value.casefold() if ch.isalnum())


def _cased(new: str, like: str) -> str:
    """`new` in the letter case of `like`: UPPER, lower or as drawn."""
    letters = [c for c in like if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return new.upper()
    if letters and all(c.islower() for c in letters):
        return new.lower()
    return new


class _Draw:
    """The record's random source and its fresh values, each drawn once per distinct original."""

    def __init__(self, seed: str, avoid: Avoid):
        key = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        self.rng = random.Random(key)
        self.fake = Faker("en_US")
        self.fake.seed_instance(key)
        self.avoid = avoid
        self.maps: dict[tuple[str, str], str] = {}
        self.used: set[str] = set()

    def once(self, kind: str, original: str, make: Callable[[], str], tries: int = 20) -> str:
        """The same fresh value for the same original; a new one never equals another original's or a value
        to avoid."""
        key = (kind, original)
        if key not in self.maps:
            value = make()
            for _ in range(tries):
                if value.casefold() != original.casefold() and norm(value) not in self.used and \
                        _compact(value) not in self.avoid.codes and norm(value) not in self.avoid.places:
                    break
                value = make()
            self.maps[key] = value
            self.used.add(norm(value))
        return self.maps[key]

    def shape(self, value: str, letters: bool = True) -> str:
        """`value` with each digit (and letter) drawn anew, case, separators and length kept; a group's first
        digit stays non-zero where it was."""
        out = []
        for i, ch in enumerate(value):
            if ch.isdigit():
                low = 1 if ch != "0" and (i == 0 or not value[i - 1].isdigit()) else 0
                out.append(str(self.rng.randint(low, 9)))
            elif letters and ch.isalpha() and ch.isascii():
                letter = self.rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
                out.append(letter if ch.isupper() else letter.lower())
            else:
                out.append(ch)
        return "".join(out)


# --- the record's people -----------------------------------------------------------------------------------

class _People:
    """Name parts mapped once per record: every distinct first name and surname gets one new one."""

    def __init__(self, draw: _Draw, sex: str | None, patient: tuple[str, str] | None):
        self.draw, self.sex, self.patient = draw, sex, patient
        self.firsts: set[str] = set()
        self.lasts: set[str] = set()
        provider = draw.fake.providers
        person = next(p for p in provider if hasattr(p, "first_names_female"))
        female, male = names.first_names_by_sex()  # the engine's pool, every origin it draws from
        self.female = female | {n.lower() for n in person.first_names_female}
        self.male = male | {n.lower() for n in person.first_names_male}

    def learn(self, mentions: list[list[str]]) -> None:
        """Which words are first names and which surnames, from the mentions that show it."""
        for words in mentions:
            if len(words) >= 2:
                self.firsts.add(words[0].lower())
                self.lasts.add(words[-1].lower())

    def first(self, word: str) -> str:
        low = word.lower()
        if self.patient and low == self.patient[0].lower() and self.sex:
            sex = self.sex
        elif low in self.female and low not in self.male:
            sex = "Female"
        elif low in self.male and low not in self.female:
            sex = "Male"
        else:
            sex = self.draw.rng.choice(("Female", "Male"))
        return self.draw.once("first", low, lambda: names.first_name(self.draw.rng, sex))

    def last(self, word: str) -> str:
        return self.draw.once("last", word.lower(), lambda: names.last_name(self.draw.rng))

    def initial(self, letter: str, role: str) -> str:
        """A new initial for an original one: the initial of the new name of the person whose original name starts
        with it, else a letter drawn once."""
        pool = self.firsts if role == "first" else self.lasts
        matches = sorted(w for w in pool if w[:1] == letter.lower())
        if matches:
            return (self.first(matches[0]) if role == "first" else self.last(matches[0]))[0]
        return self.draw.once(f"initial-{role}", letter.lower(), lambda: self.draw.rng.choice("ABCDEFGHJKLMNPRSTW"))

    def is_surname(self, word: str, titled: bool) -> bool:
        low = word.lower()
        if low in self.lasts and low not in self.firsts:
            return True
        if low in self.firsts and low not in self.lasts:
            return False
        return titled or not (low in self.female or low in self.male)


def _name_words(value: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"[A-Za-z][A-Za-z'.-]*", value)]


def _name(value: str, people: _People, titled: bool, kin: bool = False) -> str:
    """`value` with its name words mapped: "First [Middle] Last", "Last, First", one word, initials."""
    words = [w for w in _name_words(value) if not _NAME_AFFIX.match(w[2])]
    if not words:
        return value
    comma = "," in value and value.index(",") < words[-1][0]
    roles: list[str]
    # "J. S.", "JS", "J.S."; a listed name ("CHO, XIN", "LI,WEI") is no initials, however short its words.
    if "," not in value and all(_INITIALS_RE.fullmatch(w[2]) and (len(w[2].replace(".", "")) == 1
                                                                 or w[2].replace(".", "").isupper()) for w in words):
        return _initials(value, words, people)
    if comma:
        roles = ["last"] + ["first"] + ["middle"] * (len(words) - 2)
    elif len(words) == 1:
        roles = ["first" if kin and not titled else "last" if people.is_surname(words[0][2], titled) else "first"]
    else:
        roles = ["first"] + ["middle"] * (len(words) - 2) + ["last"]
    out, pos = [], 0
    for (start, end, word), role in zip(words, roles):
        out.append(value[pos:start])
        if _INITIAL_RE.match(word):
            new = people.initial(word[0], "last" if role == "last" else "first") + word[1:]
        elif role == "last":
            new = "-".join(people.last(part) for part in word.split("-"))
        else:
            new = people.first(word)
        out.append(_cased(new, word))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _initials(value: str, words: list[tuple[int, int, str]], people: _People) -> str:
    """"J.S.", "JS", "J. S.": first initial(s) then the surname's."""
    letters = [(s + i, ch) for s, _, w in words for i, ch in enumerate(w) if ch.isalpha()]
    out = list(value)
    for k, (at, ch) in enumerate(letters):
        role = "last" if k == len(letters) - 1 and len(letters) > 1 else "first"
        new = people.initial(ch, role)
        out[at] = new.upper() if ch.isupper() else new.lower()
    return "".join(out)


# --- places -------------------------------------------------------------------------------------------------

def _place(value: str, draw: _Draw, generic: set[str], fresh: Callable[[], str], kind: str) -> str | None:
    """`value` with each run of distinctive words mapped (once per record) and its generic words ("Hospital",
    "Street") kept; digits redrawn. None when it has no distinctive word."""
    tokens = list(re.finditer(r"[A-Za-z][A-Za-z'.&-]*|\d[\dA-Za-z-]*", value))
    runs: list[list[re.Match]] = []
    for m in tokens:
        word = m.group()
        if word[0].isdigit() or word.lower() in generic or word.lower().rstrip(".") in generic:
            runs.append([m]) if word[0].isdigit() else None
            continue
        if runs and not runs[-1][0].group()[0].isdigit() and value[runs[-1][-1].end():m.start()].strip() == "":
            runs[-1].append(m)
        else:
            runs.append([m])
    if not any(not r[0].group()[0].isdigit() for r in runs):
        if not runs:
            return None
    out, pos = [], 0
    for run in runs:
        start, end = run[0].start(), run[-1].end()
        original = value[start:end]
        out.append(value[pos:start])
        if original[0].isdigit():
            out.append(draw.once(f"{kind}-number", original, lambda o=original: draw.shape(o)))
        else:
            n = len(original.split())
            out.append(_cased(draw.once(kind, norm(original), lambda: " ".join(fresh() for _ in range(n))), original))
        pos = end
    out.append(value[pos:])
    return "".join(out)


# --- identifiers and contacts ------------------------------------------------------------------------------

def _phone(value: str, draw: _Draw) -> str:
    """Digits redrawn, a North American number's area code and exchange starting 2-9, extension kept short."""
    def make() -> str:
        new = draw.shape(value, letters=False)  # "x", "ext." stay
        groups = list(re.finditer(r"\d+", new))
        main = [g for g in groups if not re.search(r"(?:x|ext\.?)\s*\Z", new[:g.start()], re.IGNORECASE)]
        if main and main[0].group() == "1" and len(main) > 1:  # +1 country code
            main = main[1:]
        chars = list(new)
        seen = 0
        for g in main:
            for i in range(g.start(), g.end()):
                if seen in (0, 3):
                    chars[i] = str(draw.rng.randint(2, 9))
                seen += 1
        return "".join(chars)
    return draw.once("phone", digits(value), make)


def _code(value: str, draw: _Draw, kind: str) -> str:
    def make() -> str:
        new = draw.shape(value)
        if kind == "ID:SSN":
            d = digits(new)
            if len(d) == 9 and (d[:3] in ("000", "666") or d[0] == "9" or d[3:5] == "00" or d[5:] == "0000"):
                return make()
        return new
    if kind in ("CONTACT:PHONE", "CONTACT:FAX"):
        return _phone(value, draw)
    return draw.once(kind, _compact(value), make)


def _email(value: str, draw: _Draw, people: _People) -> str:
    local, at, domain = value.partition("@")
    if not at:
        return _code(value, draw, "CONTACT:EMAIL")
    new_local = re.sub(r"[A-Za-z]+", lambda m: _name_part(m.group(), people, draw), local)
    labels = domain.split(".")
    new_domain = ".".join([draw.once("domain", lab.lower(), lambda: draw.fake.domain_word())
                           if i < len(labels) - 1 and lab.lower() != "www" else lab for i, lab in enumerate(labels)])
    return new_local + "@" + _cased(new_domain, domain)


def _name_part(word: str, people: _People, draw: _Draw) -> str:
    """A word of an email or username: a known name's new name, or letters drawn anew."""
    low = word.lower()
    if low in people.lasts:
        return _cased(people.last(low), word)
    if low in people.firsts:
        return _cased(people.first(low), word)
    for w in sorted(people.lasts, key=len, reverse=True):  # jsmith: an initial and a surname
        if len(w) > 2 and low.endswith(w) and len(low) - len(w) <= 2:
            return _cased(low[:len(low) - len(w)] and draw.shape(low[:len(low) - len(w)]), word) + \
                _cased(people.last(w), word[len(low) - len(w):])
    return draw.once("word", low, lambda: draw.shape(word))


def _url(value: str, draw: _Draw) -> str:
    m = re.match(r"(?i)(https?://)?([^/\s]+)(.*)", value)
    scheme, host, rest = (m.group(1) or "", m.group(2), m.group(3)) if m else ("", value, "")
    labels = host.split(".")
    host = ".".join(draw.once("domain", lab.lower(), lambda: draw.fake.domain_word())
                    if i < len(labels) - 1 and lab.lower() not in ("www", "portal", "my") else lab
                    for i, lab in enumerate(labels))
    rest = re.sub(r"[A-Za-z0-9]+", lambda t: draw.once("url-part", t.group(), lambda: draw.shape(t.group())), rest)
    return scheme + host + rest


def _ip(value: str, draw: _Draw) -> str:
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", value):
        return draw.once("ip", value, lambda: ".".join(str(draw.rng.randint(1, 223) if i == 0 else
                                                           draw.rng.randint(0, 254)) for i in range(4)))
    return draw.once("ip", value, lambda: re.sub(r"[0-9a-fA-F]", lambda c: draw.rng.choice("0123456789abcdef"),
                                                   value))


def _state(value: str, draw: _Draw) -> str:
    abbr = value.strip(". ").upper()
    if abbr in STATES:
        return _cased(draw.once("state", abbr, lambda: draw.rng.choice(sorted(STATES))), value)
    if value.lower() in _STATE_NAMES:
        new = draw.once("state", _STATE_NAMES[value.lower()], lambda: draw.rng.choice(sorted(STATES)))
        return _cased(STATES[new], value)
    return _cased(draw.once("state-name", norm(value), lambda: STATES[draw.rng.choice(sorted(STATES))]), value)


# --- dates and ages -----------------------------------------------------------------------------------------

@dataclass
class _Clock:
    anchor: dt.date
    shift: dt.timedelta
    dob: dt.date | None
    admit: dt.date | None
    over_89: str | None  # the record's own way of writing an age past 89 ("90+"), if it has one

    def age(self) -> int | None:
        if self.dob is None or self.admit is None:
            return None
        return self.admit.year - self.dob.year - ((self.admit.month, self.admit.day) < (self.dob.month, self.dob.day))


def _header_date(text: str, field: str) -> dt.date | None:
    value = header_value(text, field)
    parsed = D.parse(value) if value else None
    return D.resolve(parsed, dt.date(2000, 1, 1)) if parsed and not parsed.template.partial else None


def _date(value: str, clock: _Clock, draw: _Draw, stats: Stats) -> tuple[str, dt.date | None]:
    parsed = D.parse(value)
    if parsed is not None:
        day = D.resolve(parsed, clock.anchor) + clock.shift
        return D.render(parsed.template, day), (day if "day" in parsed.template.fields() else None)
    # A range or list of dates ("3/10-3/12"): each date in it, else its digits drawn anew.
    pieces = re.split(r"(\s*(?:-|–|to|through|and|,)\s*)", value)
    if len(pieces) > 1 and all(D.parse(p) for p in pieces[::2]):
        return "".join(_date(p, clock, draw, stats)[0] if i % 2 == 0 else p for i, p in enumerate(pieces)), None
    stats.unparsed_dates += 1
    return draw.once("date", value, lambda: draw.shape(value)), None


def _age(value: str, before: str, after: str, clock: _Clock, draw: _Draw, stats: Stats) -> str:
    number = re.search(r"\d+", value)
    if number is None:
        return value
    patient = (_AGE_UNIT_RE.match(after) or _AGE_LEAD_RE.search(before)) and \
        not _NOT_PATIENT_AGE.search(re.split(r"[.;\n]", before)[-1][-60:])
    age = clock.age() if patient else None
    if age is not None:
        stats.ages_from_dob += 1
    else:
        age = max(1, min(105, int(number.group()) + draw.rng.choice((-3, -2, -1, 1, 2, 3))))
    if age > 89:
        if clock.over_89:
            return clock.over_89
        if _OVER_89_RE.match(value):
            return value
    elif _OVER_89_RE.match(value):
        return str(age)
    return value[:number.start()] + str(age) + value[number.end():]


# --- the makers: one per kind of value (the category table names each category's) ------------------------------

@dataclass
class _Span:
    """What a maker knows of the span it replaces: its category, the text around it, the record's state."""

    category: str
    before: str
    after: str
    draw: _Draw
    people: _People
    clock: _Clock
    stats: Stats


def _username(value: str, s: _Span) -> str:
    new = re.sub(r"[A-Za-z]+", lambda m: _name_part(m.group(), s.people, s.draw), value)
    return re.sub(r"\d+", lambda m: s.draw.once("username-digits", m.group(), lambda: s.draw.shape(m.group())), new)


_WHOLE_PLACE = {"LOCATION:DEPARTMENT": places.unit, "LOCATION:HOSPITAL": places.hospital,
                "LOCATION:ORGANIZATION": places.organization}


def _institution(value: str, s: _Span) -> str | None:
    """Institutions are named with common words (places, saints), not with surnames. One named with generic words
    alone ("North Valley Medical Center"), a unit's acronym ("MICU"), or one whose new name would be another of the
    record's, becomes a new one of its kind."""
    if re.fullmatch(r"[A-Z]{2,6}", value):
        if s.category == "LOCATION:DEPARTMENT":  # a unit's acronym ("MICU") names its kind: another unit
            return s.draw.once(s.category, norm(value), lambda: places.unit(s.draw.rng))
        return s.draw.once("acronym", value, lambda: s.draw.shape(value))  # a hospital's ("LCH") stays an acronym
    new = _place(value, s.draw, _GENERIC_PLACE, lambda: s.draw.rng.choice(places.PLACE_WORDS), s.category)
    if (new is None or norm(new) in s.draw.avoid.places) and s.category in _WHOLE_PLACE:
        new = s.draw.once(s.category, norm(value), lambda: _WHOLE_PLACE[s.category](s.draw.rng))
    return new


def _whole_years(shift: dt.timedelta, ref: dt.date) -> bool:
    """Whether `shift` moves `ref` to within a few days of its own month and day, leap days counted: a date without
    its year ("March 3") would then read as it was."""
    moved = ref + shift
    return any(abs((moved - dt.date(moved.year + k, ref.month, min(ref.day, 28))).days) <= 3 for k in (-1, 0, 1))


def _street(value: str, s: _Span) -> str:
    """A street with its distinctive words and numbers redrawn; one of generic words alone ("South Ln", "Route 9"
    keeps nothing of its own but the number) becomes a new street."""
    new = _place(value, s.draw, _STREET_GENERIC, lambda: s.draw.rng.choice(places.STREET_WORDS), s.category)
    if new is None or norm(new) == norm(value):
        new = s.draw.once("street", norm(value), lambda: places.street(s.draw.rng))
    return new


MAKERS: dict[str, Callable[[str, _Span], object]] = {
    "keep": lambda v, s: None,
    "name": lambda v, s: _name(v, s.people, titled=bool(_TITLE_RE.search(s.before)), kin=bool(_KIN_RE.search(s.before))),
    "date": lambda v, s: _date(v, s.clock, s.draw, s.stats),  # (text, the day it names, if it names one)
    "age": lambda v, s: _age(v, s.before, s.after, s.clock, s.draw, s.stats),
    "code": lambda v, s: _code(v, s.draw, s.category),
    "place": lambda v, s: _institution(v, s),
    "street": lambda v, s: _street(v, s),
    "city": lambda v, s: _cased(s.draw.once("city", norm(v), lambda: places.city(s.draw.rng).name), v),
    "state": lambda v, s: _state(v, s.draw),
    "country": lambda v, s: _cased(s.draw.once("country", norm(v), lambda: s.draw.rng.choice(places.COUNTRIES)), v),
    "profession": lambda v, s: _cased(s.draw.once("job", norm(v), lambda: s.draw.rng.choice(places.PROFESSIONS)), v),
    "email": lambda v, s: _email(v, s.draw, s.people),
    "url": lambda v, s: _url(v, s.draw),
    "ip": lambda v, s: _ip(v, s.draw),
    "username": _username,
}


# --- the pass -----------------------------------------------------------------------------------------------

def _sex(text: str) -> str | None:
    got = (header_value(text, "Sex") or "")[:1].upper()
    return {"M": "Male", "F": "Female"}.get(got)


def surrogate(text: str, spans: list[Mapping], seed: str, avoid: Avoid = Avoid(),
              sex: str | None = None) -> tuple[str, list[dict], Stats]:
    """The record with every span's value replaced by a fresh surrogate; the new spans and what was done. The
    patient's Sex is the record's `Sex:` line, else `sex`; the patient is the `Name:` line, else the first full
    patient name."""
    # A fresh value is never one the record already holds elsewhere, nor a training value.
    own = Avoid.of([(text, spans)])
    draw = _Draw(seed, Avoid(avoid.names | own.names, avoid.codes | own.codes, avoid.places | own.places))
    draw.used |= {norm(w) for s in spans for w in [s["text"], *s["text"].replace(",", " ").split()]}
    stats = Stats()
    ordered = sorted(spans, key=lambda s: s["start"])
    sex = _sex(text) or sex
    patient = person_name(header_value(text, "Name") or next(
        (s["text"] for s in ordered if s["category"] == "NAME:PATIENT" and " " in s["text"].strip()), ""))
    people = _People(draw, sex, patient)
    people.learn([[w for _, _, w in _name_words(s["text"]) if not _NAME_AFFIX.match(w)]
                  for s in ordered if category(s["category"]).maker == "name" and "," not in s["text"]])
    people.learn([list(reversed([w for _, _, w in _name_words(s["text"]) if not _NAME_AFFIX.match(w)][:2]))
                  for s in ordered if category(s["category"]).maker == "name" and "," in s["text"]])
    # The stay's dates: the header's, else (a note without the discharge layout) the date of birth where a DOB
    # label precedes it and the note's first other whole date.
    whole = [(s, D.resolve(p, dt.date(2000, 1, 1))) for s in ordered if category(s["category"]).maker == "date"
             for p in [D.parse(s["text"])] if p and not p.template.partial]
    born = [d for s, d in whole if _DOB_RE.search(text, max(0, s["start"] - 20), s["start"])]
    others = [d for s, d in whole if not _DOB_RE.search(text, max(0, s["start"] - 20), s["start"])]
    admit = _header_date(text, "Admission Date") or (others[0] if others else None)
    dob = _header_date(text, "Date of Birth") or (born[0] if born else None)
    first_date = whole[0][1] if whole else None
    shift = dt.timedelta(days=draw.rng.choice((-1, 1)) * draw.rng.randint(*SHIFT_DAYS))
    while _whole_years(shift, admit or first_date or dt.date(2020, 1, 1)):
        shift += dt.timedelta(days=draw.rng.choice((-1, 1)) * draw.rng.randint(3, 30))
    over = next((s["text"] for s in ordered if category(s["category"]).maker == "age" and _OVER_89_RE.match(s["text"])),
                None)
    clock = _Clock(admit or first_date or dt.date(2020, 1, 1), shift, dob and dob + shift, admit and admit + shift,
                   over)
    edits: list[tuple[int, int, str, dict | None]] = []  # (start, end, new text, span or None)
    dated: list[tuple[int, int, dt.date]] = []
    for s in ordered:
        cat = category(s["category"])
        value, start, end = s["text"], s["start"], s["end"]
        before, after = text[max(0, start - 80):start], text[end:end + 30]
        new = MAKERS[cat.maker](value, _Span(cat.name, before, after, draw, people, clock, stats))
        if cat.maker == "date" and isinstance(new, tuple):
            new, day = new
            if day is not None:
                dated.append((start, end, day))
        if new is None or new == value and cat.maker in ("keep", "place", "street"):
            stats.kept[cat.name] += 1
            new = value
        else:
            stats.replaced[cat.name] += 1
        edits.append((start, end, new, {**{k: v for k, v in s.items() if k not in ("start", "end", "text")}}))
        _article(text, start, new, edits, stats)
        if cat.name == "NAME:PATIENT" and sex and patient and value.split()[-1:] == [patient[1]]:
            _title(text, start, sex, edits, stats)
    for start, end, day in dated:
        _weekday(text, start, end, day, ordered, edits, stats)
    new_text, new_spans = _apply(text, edits)
    return new_text, new_spans, stats


def _article(text: str, start: int, new: str, edits: list, stats: Stats) -> None:
    """"a"/"an" before a replaced value follows the new value's sound."""
    m = _ARTICLE_RE.search(text, max(0, start - 6), start)
    if not m or not new[:1].isalnum():
        return
    want = "an" if wants_an(new) else "a"
    have = m.group(1)
    if have.lower() != want:
        fixed = want.upper() if have.isupper() and len(have) > 1 else want.capitalize() if have[0].isupper() else want
        edits.append((m.start(1), m.end(1), fixed, None))
        stats.articles_fixed += 1




def _title(text: str, start: int, sex: str, edits: list, stats: Stats) -> None:
    m = _PATIENT_TITLE_RE.search(text, max(0, start - 6), start)
    if not m:
        return
    title = m.group(1)
    female = title.lower() in ("ms", "mrs", "miss")
    if female == (sex == "Female"):
        return
    edits.append((m.start(1), m.end(1), "Ms" if sex == "Female" else "Mr", None))
    stats.titles_fixed += 1


def _weekday(text: str, start: int, end: int, day: dt.date, spans: list[Mapping], edits: list, stats: Stats) -> None:
    """A weekday written just before or after a date (outside any span) follows the shifted date."""
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    line_end = len(text) if line_end == -1 else line_end
    windows = [(max(line_start, start - 12), start), (end, min(line_end, end + 14))]
    for lo, hi in windows:
        for m in _WEEKDAY_WORD.finditer(text, lo, hi):
            gap = text[m.end():start] if hi == start else text[end:m.start()]
            if not re.fullmatch(r"[\s,(]*", gap) or any(s["start"] < m.end() and m.start() < s["end"] for s in spans):
                continue
            word = m.group(1)
            full = D.WEEKDAYS[day.weekday()]
            new = full if len(word) > 3 and word.lower().rstrip(".") in {d.lower() for d in D.WEEKDAYS} else full[:3]
            new = new.upper() if word.isupper() else new.lower() if word.islower() else new
            if new != word:
                edits.append((m.start(1), m.end(1), new, None))
                stats.weekdays_fixed += 1


def _apply(text: str, edits: list) -> tuple[str, list[dict]]:
    """The text with every edit made, left to right, and each span's new offsets and text."""
    out: list[str] = []
    spans: list[dict] = []
    pos = length = 0
    for start, end, new, span in sorted(edits, key=lambda e: (e[0], e[3] is not None)):
        if start < pos:  # an edit beside a span that another edit already covers
            continue
        out.append(text[pos:start])
        length += start - pos
        if span is not None:
            spans.append({"start": length, "end": length + len(new), **span, "text": new})
        out.append(new)
        length += len(new)
        pos = end
    out.append(text[pos:])
    return "".join(out), spans
