"""The PHI a note writes beyond its patient's identity, each drawn in the forms notes use: how a clinician or the
patient is named (full name, "Dr. Surname", "SURNAME, FIRST", an initial, the first name alone), and the rarer
identifiers (usernames, emails, portal URLs, accounts, plans, licenses, devices, rooms, units, places).

Every function returns pieces for `Doc.pieces`: plain text, and (value, category) for a PHI value.
"""

from __future__ import annotations

import re

from medgen.data.phi import places
from medgen.data.phi.forms import draw_code
from medgen.data.synthetic.case import Case

_PLANS = ("Blue Cross Blue Shield", "Aetna", "Harvard Pilgrim", "Tufts Health Plan", "UnitedHealthcare", "Medicare",
          "MassHealth", "Cigna", "Humana", "Kaiser Permanente")
_DEVICES = (("pacemaker", "Medtronic Azure"), ("ICD", "Boston Scientific Resonate"), ("insulin pump", "Tandem t:slim"),
            ("loop recorder", "Medtronic LINQ"), ("CPAP machine", "ResMed AirSense"))


def split(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last or first


def doctor(c: Case, name: str, titled: bool = True) -> list:
    """A clinician as notes name one: "Dr. Surname", "First Last, MD", "Dr. F. Last", "LAST, FIRST MD", "Dr Last",
    "First M. Last, M.D."."""
    first, last = split(name)
    middle = f"{first} {c.fake.random_uppercase_letter()}. {last}"
    forms = [["Dr. ", (last, "NAME:DOCTOR")], [(name, "NAME:DOCTOR"), ", MD"], ["Dr. ", (f"{first[0]}. {last}", "NAME:DOCTOR")],
             [(f"{last}, {first}", "NAME:DOCTOR"), " MD"], ["Dr. ", (name, "NAME:DOCTOR")], ["Dr ", (last, "NAME:DOCTOR")],
             [(middle, "NAME:DOCTOR"), ", M.D."], [(f"{last.upper()}, {first.upper()}", "NAME:DOCTOR"), " MD"]]
    if not titled:
        forms = [[(name, "NAME:DOCTOR")], [(f"{first} {last}", "NAME:DOCTOR"), ", MD"], [(middle, "NAME:DOCTOR"), ", MD"],
                 [(name, "NAME:DOCTOR"), c.pick((", MD", ", DO", ", NP", ", PA-C", " M.D."))]]
    return c.pick(forms)


def after_title(c: Case, name: str) -> tuple[str, str]:
    """A clinician's name after "Dr.": the full name, the surname, or an initial and the surname."""
    first, last = split(name)
    return (c.pick((name, name, last, f"{first[0]}. {last}")), "NAME:DOCTOR")


def patient(c: Case) -> list:
    """The patient in running text: mostly "Ms. Surname", sometimes the full name or the first name, now and then in
    capitals, lower case or listed."""
    p, title = c.person, c.words.title
    roll = c.rng.random()
    if roll < 0.62:
        return [f"{title} ", (p.last, "NAME:PATIENT")]
    if roll < 0.76:
        return [(p.name, "NAME:PATIENT")]
    if roll < 0.83:
        return [f"{title} ", (p.name, "NAME:PATIENT")]
    if roll < 0.9:
        return [(p.first, "NAME:PATIENT")]
    if roll < 0.94:
        return [(p.name.upper(), "NAME:PATIENT")]
    if roll < 0.97:
        return [(p.first.lower(), "NAME:PATIENT")]
    return [(f"{p.last}, {p.first}", "NAME:PATIENT")]


def listed(c: Case, name: str, category: str = "NAME:PATIENT") -> tuple[str, str]:
    """A name as a list or form writes it: "SURNAME, FIRST" or "Surname, First"."""
    first, last = split(name)
    value = f"{last}, {first}"
    return (value.upper() if c.chance(0.5) else value, category)


def username(c: Case, name: str) -> tuple[str, str]:
    first, last = split(name)
    base = c.pick((f"{first[0]}{last}", f"{first}.{last}", f"{last}{first[0]}", f"{first[0]}{last[:5]}"))
    value = re.sub(r"[^a-z.]", "", base.lower()) + c.pick(("", "", str(c.rng.randint(1, 99))))
    return (c.pick(("", "", "RN_", "md_")) + value, "NAME:USERNAME")


def domain(c: Case) -> str:
    words = re.findall(r"[A-Za-z]+", c.person.hospital)
    return "".join(w.lower() for w in words[:2]) + c.pick((".org", ".org", ".com", ".net"))


def email(c: Case, name: str) -> tuple[str, str]:
    first, last = split(name)
    local = c.pick((f"{first}.{last}", f"{first[0]}{last}", f"{last}.{first[0]}"))
    return (re.sub(r"[^a-z.]", "", local.lower()) + "@" + domain(c), "CONTACT:EMAIL")


def url(c: Case) -> tuple[str, str]:
    path = c.pick(("/portal", "/mychart", "/patients", "", "/discharge-instructions"))
    host = c.pick(("www.", "myhealth.", "portal.", ""))
    return (c.pick(("https://", "https://", "http://", "")) + host + domain(c) + path, "CONTACT:URL")


def ip(c: Case) -> tuple[str, str]:
    first = c.pick((10, 172, 192, c.rng.randint(23, 210)))
    return (".".join(str(x) for x in (first, c.rng.randint(0, 254), c.rng.randint(0, 254), c.rng.randint(1, 254))),
            "CONTACT:IPADDR")


def code(c: Case, category: str) -> tuple[str, str]:
    return (draw_code(c.rng, category), category)


def plan(c: Case) -> list:
    return [(c.pick(_PLANS), "LOCATION:ORGANIZATION"), ", member ID ", code(c, "ID:HEALTHPLAN")]


def device(c: Case) -> list:
    kind, brand = c.pick(_DEVICES)
    return [f"{brand} {kind}, serial number ", code(c, "ID:DEVICE")]


def room(c: Case) -> tuple[str, str]:
    return (places.room(c.rng), "LOCATION:ROOM")


def room_ref(c: Case) -> list:
    """A room or bed in running text, its word mostly part of the value as annotators mark it ("Rm 12", "Bed 3"),
    sometimes not ("room 412")."""
    number = places.room(c.rng)
    if c.chance(0.7):
        return [(f"{c.pick(('Room', 'Rm', 'rm', 'room', 'Bed', 'bed', 'Bay', 'RM'))} {number}", "LOCATION:ROOM")]
    return [c.pick(("room ", "bed ", "Rm ")), (number, "LOCATION:ROOM")]


def department(c: Case) -> tuple[str, str]:
    return (places.unit(c.rng), "LOCATION:DEPARTMENT")


def state_zip(c: Case) -> list:
    """The patient's state and ZIP, as an address line ends: "MA 02115", "Massachusetts 02115-1234"."""
    return [(places.state(c.rng, c.person.state), "LOCATION:STATE"), " ",
            (places.zip_code(c.rng, c.person.zip), "LOCATION:ZIP")]


def place(c: Case) -> tuple[str, str]:
    name = c.pick((c.fake.last_name(), c.person.city, c.pick(places.PLACE_WORDS)))
    return (c.pick((f"{name} Park", f"{name} Shopping Center", f"{name} Beach", f"{name} State Forest", f"{name} Mall",
                    f"{name} YMCA", f"{name} Public Library")), "LOCATION:LOCATION-OTHER")
