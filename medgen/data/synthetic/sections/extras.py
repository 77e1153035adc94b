"""PHI where real notes put it beyond the header and the stock sections: relatives and nurses in the narrative,
pagers and extensions, units and beds, past years, contacts, addenda, signatures and cc lists.

Each writer adds a line or two to the section it follows, in the forms notes use (names lower or upper case or as
initials, ages as "52M" or "52 y/o", dates without a year or beside a weekday, bare years, IDs with letters), and
keeps the record consistent: no relative's age before the patient's, titles only before the patient's own name,
every weekday beside its date, follow-up dates after the discharge.
"""

from __future__ import annotations

import datetime as dt

from medgen.data.identity import doctor_name
from medgen.data.phi import names, places
from medgen.data.synthetic import people
from medgen.data.synthetic.case import DAY, PAST, WHOLE, Case, body_date, phone
from medgen.data.synthetic.phrases import FIELD_RE, article
from medgen.data.synthetic.text import Doc

_RELATIVES = ("daughter", "son", "sister", "brother", "niece", "nephew", "granddaughter", "grandson", "friend",
              "neighbor", "partner")
_FEMALE_KIN = {"daughter", "sister", "niece", "granddaughter", "wife", "mother"}
_MALE_KIN = {"son", "brother", "nephew", "grandson", "husband", "father"}
_CASUAL = {"mother": "mom", "father": "dad"}


def relative(c: Case, rel: str | None = None) -> tuple[str, str]:
    """A relative or friend (`rel`, else drawn): (what they are to the patient, their name), the surname shared where
    kin share one, a first name of the relation's sex."""
    rel = rel or c.pick((*_RELATIVES, c.words.spouse, "mother", "father"))
    first = names.first_name(c.rng, "Female" if rel in _FEMALE_KIN else "Male" if rel in _MALE_KIN else None)
    last = c.person.last if rel in ("son", "daughter", "wife", "husband") and c.chance(0.7) else names.last_name(c.rng)
    if c.chance(0.08):
        last = f"{last}-{names.last_name(c.rng)}"
    return rel, f"{first} {last}"


def _relative_age(c: Case, rel: str) -> int:
    """An age that fits the relation: parents a generation older, children one younger, the rest near the patient's."""
    age = c.person.age
    if rel in ("mother", "father"):
        return min(age + c.rng.randint(18, 40), 104)
    if rel in ("daughter", "son", "niece", "nephew") and age >= 36:
        return c.rng.randint(max(age - 40, 1), age - 18)
    if rel in ("granddaughter", "grandson") and age >= 50:
        return c.rng.randint(1, age - 36)
    return max(age + c.rng.randint(-12, 12), 18)


def _kin_phrase(c: Case, with_age: bool = False) -> list:
    """A relative named the ways notes name them: "her older daughter Ana", "son Tom Baker", "mom (Rita)",
    "Rita (sister)"; with their age where asked ("her sister Rita (58)")."""
    rel, name = relative(c)
    who = _named(c, name)
    sibling = rel in ("sister", "brother", "daughter", "son")
    forms = [[f"{c.words.pos} {c.pick(('older ', 'younger ', '', '')) if sibling else ''}{rel} ", who],
             [f"{rel} ", who], [f"{_CASUAL.get(rel, rel)} (", who, ")"], [who, f" ({rel})"]]
    phrase = c.pick(forms[:2] if with_age else forms)
    return [*phrase, " (", _age(c, _relative_age(c, rel)), ")"] if with_age else phrase


def _demographics(c: Case) -> list:
    """The patient as a header, a banner or a triage line gives them: name, age and sex, the MRN."""
    p = c.person
    label = c.pick(("Pt: ", "Patient: ", "RE: ", "Name: ", "Client: ", "Caller: ", "PATIENT: ", ""))
    name = c.pick(([(p.name, "NAME:PATIENT")], [(f"{p.last}, {p.first}", "NAME:PATIENT")],
                   [(f"{p.last.upper()}, {p.first.upper()}", "NAME:PATIENT")]))
    age = c.pick(([", ", (str(p.age), "AGE"), p.sex[0]], [" (", (str(p.age), "AGE"), ")"],
                  [", ", (str(p.age), "AGE"), " y/o ", c.words.letter], [", age ", (str(p.age), "AGE")],
                  [" ", (str(p.age), "AGE"), p.sex[0]], ["  Age: ", (str(p.age), "AGE"), "  Sex: ", p.sex[0]]))
    mrn = c.pick(([", MRN ", (p.mrn, "ID:MEDICALRECORD")], ["  MRN: ", (p.mrn, "ID:MEDICALRECORD")], []))
    return [label, *name, *age, *mrn]


def pager(c: Case) -> tuple[str, str]:
    """A pager or extension: "4-1234", "31456", "x4567", "ext. 2210"."""
    n = c.rng.randint(1000, 99999)
    return (c.pick((f"{n % 10}-{n % 10000:04d}", str(n), f"x{n % 10000:04d}", f"{c.rng.randint(2, 9)}{n % 1000:03d}")),
            "CONTACT:PHONE")


def _nurse(c: Case) -> list:
    name = names.first_name(c.rng, "Female" if c.chance(0.8) else None)
    last = names.last_name(c.rng)
    return c.pick(([(name, "NAME:DOCTOR"), ", RN"], ["RN ", (name, "NAME:DOCTOR")],
                   [(f"{name} {last}", "NAME:DOCTOR"), " RN"], [(f"{name[0]}. {last}", "NAME:DOCTOR"), ", RN"],
                   ["nurse ", (f"{name} {last[0]}.", "NAME:DOCTOR")]))


def _named(c: Case, name: str, category: str = "NAME:PATIENT") -> tuple[str, str]:
    """A name as a hurried note writes it: as is, first name alone, lower case, capitals, or with an initial."""
    first, last = people.split(name)
    roll = c.rng.random()
    if roll < 0.45:
        return (name, category)
    if roll < 0.65:
        return (first, category)
    if roll < 0.75:
        return (name.lower(), category)
    if roll < 0.85:
        return (name.upper(), category)
    return (f"{first} {c.fake.random_uppercase_letter()}. {last}", category)


# --- mentions: one template bank per section ---------------------------------------------------------------------

def _patient_mention(c: Case) -> list:
    """The patient in running text, in the forms notes use, lower and upper case included."""
    p, roll = c.person, c.rng.random()
    if roll < 0.35:
        return [f"{c.words.title} ", (p.last, "NAME:PATIENT")]
    if roll < 0.55:
        return [(p.first, "NAME:PATIENT")]
    if roll < 0.7:
        return [(p.name, "NAME:PATIENT")]
    if roll < 0.78:
        return [(p.name.upper(), "NAME:PATIENT")]
    if roll < 0.86:
        return [(p.first.lower(), "NAME:PATIENT")]
    if roll < 0.93:
        return [(f"{p.first[0]}. {p.last}", "NAME:PATIENT")]
    return [(f"{p.last}, {p.first}", "NAME:PATIENT")]


def _clinician(c: Case) -> list:
    """Another clinician, with the credentials notes print (a nurse or therapist is a DOCTOR in i2b2's terms)."""
    name = doctor_name(c.fake)
    first, last = people.split(name)
    return c.pick((people.doctor(c, name), ["Dr. ", (last, "NAME:DOCTOR")], ["Dr ", (last, "NAME:DOCTOR")],
                   [(name, "NAME:DOCTOR"), c.pick((", NP", ", PA-C", ", RN", ", LICSW", ", PharmD", " MD", ", DO"))],
                   [(f"{first[0]}. {last}", "NAME:DOCTOR"), ", MD"], [(last.upper(), "NAME:DOCTOR")],
                   ["dr ", (last.lower(), "NAME:DOCTOR")], [(first, "NAME:DOCTOR"), " (", c.pick(("RN", "PT", "SW")),
                                                            ")"]))


def _age(c: Case, years: int) -> tuple[str, str]:
    return (str(years), "AGE")


def _before(c: Case) -> dt.date:
    return c.person.admit - dt.timedelta(days=c.rng.randint(1, 10))


def _during(c: Case) -> dt.date:
    p = c.person
    return p.admit + dt.timedelta(days=c.rng.randint(0, max(p.los, 0)))


def _kid(c: Case) -> list:
    """A child or grandchild young enough to be one, by the patient's age: "granddaughter Maya (18 mo)", "son Leo (7 yo)"."""
    age = c.person.age
    rel = c.pick(("son", "daughter") if age < 45 else ("grandson", "granddaughter"))
    oldest = min(age - (36 if rel.startswith("grand") else 16), 17)
    first = names.first_name(c.rng, "Male" if rel.endswith("son") else "Female")
    name = f"{first} {c.person.last if c.chance(0.6) else names.last_name(c.rng)}"
    if oldest < 1 or c.chance(0.4):
        young = [(str(c.rng.randint(2, 23)), "AGE"), c.pick((" mo", " months", "mo", " wk", " weeks"))]
    else:
        young = [(str(c.rng.randint(1, oldest)), "AGE"), c.pick((" yo", "yo", " y/o", " years"))]
    return [f"{rel} ", _named(c, name), " (", *young, ")"]


def _weekday_date(c: Case) -> list:
    """A day of the stay with its own weekday: "Tues 3/14", "Thu Mar 14"."""
    when = _during(c)
    day = c.pick((f"{when:%a}", f"{when:%A}", {1: "Tues", 3: "Thurs"}.get(when.weekday(), f"{when:%a}")))
    return [(day, "DATE"), " ", (body_date(c, when, ("M/D", "Mon D")), "DATE")]


FACTORIES = {
    "pt": _patient_mention,
    "dr": _clinician,
    "pcp": lambda c: c.pick((people.doctor(c, c.pcp), ["Dr. ", people.after_title(c, c.pcp)])),
    "nurse": _nurse,
    "relname": lambda c: _named(c, relative(c)[1]),
    "phone": lambda c: (phone(c), "CONTACT:PHONE"),
    "fax": lambda c: (phone(c), "CONTACT:FAX"),
    "pager": pager,
    "unit": people.department,
    "room": people.room_ref,
    "org": lambda c: (places.organization(c.rng), "LOCATION:ORGANIZATION"),
    "clinic": lambda c: (places.clinic(c.rng), "LOCATION:HOSPITAL"),
    "otherhosp": lambda c: (places.hospital(c.rng), "LOCATION:HOSPITAL"),
    "city": lambda c: (places.city(c.rng).name, "LOCATION:CITY"),
    "hometown": lambda c: (c.person.city, "LOCATION:CITY"),
    "country": lambda c: (c.pick(places.COUNTRIES), "LOCATION:COUNTRY"),
    "street": lambda c: (places.street(c.rng), "LOCATION:STREET"),
    "job": lambda c: (c.pick(places.PROFESSIONS), "PROFESSION"),
    "mrn": lambda c: (c.person.mrn, "ID:MEDICALRECORD"),
    "idnum": lambda c: people.code(c, "ID:IDNUM"),
    "user": lambda c: people.username(c, doctor_name(c.fake)),
    "day": lambda c: (body_date(c, _during(c), DAY), "DATE"),
    "md": lambda c: (body_date(c, _during(c), ("M/D", "Mon D", "Month Dth")), "DATE"),
    "weekday": lambda c: (f"{_during(c):%A}", "DATE"),
    # Days before the admission, for what the history tells of the days that led to it.
    "mdbefore": lambda c: (body_date(c, _before(c), ("M/D", "Mon D", "Month Dth")), "DATE"),
    "wkbefore": lambda c: (f"{_before(c):%A}", "DATE"),
    "nthbefore": lambda c: (_ordinal(_before(c).day), "DATE"),
    "admitday": lambda c: (body_date(c, c.person.admit, DAY), "DATE"),
    "year": lambda c: (str(c.person.admit.year - c.rng.randint(1, max(min(20, c.person.age - 1), 1))), "DATE"),
    "past": lambda c: (body_date(c, c.person.admit - dt.timedelta(days=c.rng.randint(40, 2000)), PAST), "DATE"),
    "kinage": lambda c: _kin_phrase(c, with_age=True),
    "parentage": lambda c: _age(c, c.rng.randint(45, 98)),
    "sibage": lambda c: _age(c, max(c.person.age + c.rng.randint(-12, 12), 1)),
    "decade": lambda c: (f"{10 * c.rng.randint(4, 8)}s", "AGE"),
    "month": lambda c: (f"{c.person.admit - dt.timedelta(days=c.rng.randint(30, 300)):%B}", "DATE"),
    "nth": lambda c: (_ordinal(_during(c).day), "DATE"),
    "husband": lambda c: [f"{c.words.pos} {c.words.spouse} ", _named(c, relative(c, c.words.spouse)[1])],
    "kin": lambda c: (lambda rel: [f"{rel}, ", _named(c, relative(c, rel)[1]), ","])(
        c.pick(("daughter", "son", "sister", "brother", "mother", "niece"))),
    "ptlabel": lambda c: [c.pick(("Pt: ", "Patient: ", "RE: ", "Name: ", "PATIENT: ")), *_patient_line(c)],
    "mrnlabel": lambda c: [c.pick(("MRN ", "MRN: ", "MRN# ", "MR# ", "Med Rec #: ", "Hosp #: ", "Unit #: ",
                                   "Medical record number ", "MRN ", "mrn ")), (c.person.mrn, "ID:MEDICALRECORD")],
    "dob": lambda c: (body_date(c, c.person.dob, WHOLE + ("MM/DD/YYYY",)), "DATE"),
    "kinname": _kin_phrase,
    "kinname2": _kin_phrase,
    "unit2": people.department,
    "idnum2": lambda c: people.code(c, "ID:IDNUM"),
    "ajob": lambda c: (lambda job: [f"{article(job)} ", (job, "PROFESSION")])(c.pick(places.PROFESSIONS)),
    "acronym": lambda c: (_acronym(places.hospital(c.rng) if c.chance(0.5) else c.person.hospital),
                          "LOCATION:HOSPITAL"),
    "HOSP": lambda c: (c.person.hospital.upper(), "LOCATION:HOSPITAL"),
    "firstname": lambda c: (c.person.first if c.chance(0.8) else c.person.first.lower(), "NAME:PATIENT"),
    "banner": _demographics,
    "wkdmd": _weekday_date,
    "email": lambda c: people.email(c, doctor_name(c.fake) if c.chance(0.7) else c.person.name),
    "ptemail": lambda c: (f"{c.person.first.lower()}{c.pick(('.', '_', ''))}{c.person.last.lower()}"
                          f"{c.pick(('', str(c.rng.randint(1, 99))))}@{c.pick(('gmail.com', 'yahoo.com', 'aol.com', 'comcast.net', 'hotmail.com'))}",
                          "CONTACT:EMAIL"),
    "ip": people.ip,
    "url": people.url,
    "ssn": lambda c: people.code(c, "ID:SSN"),
    "plan": lambda c: people.code(c, "ID:HEALTHPLAN"),
    "acct": lambda c: people.code(c, "ID:ACCOUNT"),
    "ORG": lambda c: (places.organization(c.rng).upper(), "LOCATION:ORGANIZATION"),
    "OTHERHOSP": lambda c: (places.hospital(c.rng).upper(), "LOCATION:HOSPITAL"),
    "kid": _kid,
    "ptage": lambda c: c.pick(([(str(c.person.age), "AGE"), c.words.letter],
                               [(str(c.person.age), "AGE"), c.pick((" yo ", "yo ", " y.o. ", " y/o ")), c.words.letter],
                               ["age ", (str(c.person.age), "AGE")], [(str(c.person.age), "AGE"), "-year-old"])),
    "agesex": lambda c: c.pick(([(str(c.person.age), "AGE"), c.words.letter], [(str(c.person.age), "AGE"), " y/o ",
                                c.words.letter], ["age ", (str(c.person.age), "AGE")],
                               [(str(c.person.age), "AGE"), "/", c.words.letter])),
}


def _acronym(name: str) -> str:
    """What staff call a hospital: its initials ("Lakeshore Community Hospital" -> "LCH")."""
    words = [w for w in name.replace("-", " ").split() if w[0].isalpha() and w.lower() not in ("of", "the", "and")]
    return "".join(w[0].upper() for w in words)


def _ordinal(n: int) -> str:
    return f"the {n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _patient_line(c: Case) -> list:
    p = c.person
    return c.pick(([(p.name, "NAME:PATIENT")], [(f"{p.last.upper()}, {p.first.upper()}", "NAME:PATIENT")],
                   [(f"{p.last}, {p.first}", "NAME:PATIENT")],
                   [(f"{p.first} {c.fake.random_uppercase_letter()}. {p.last}", "NAME:PATIENT")]))
# Sentences each section may carry, with the PHI fields above (and the case's own words: {title}, {last},
# {pr}, {pos}, ...). Ages of relatives only after the history of present illness (its own age comes first).
MENTIONS: dict[str, tuple[str, ...]] = {
    "History of Present Illness": (
        "Initially evaluated at {clinic} on {mdbefore}, then sent to {otherhosp} ED.",
        "{Pr} was at work ({org}) when symptoms began.",
        "Seen at {acronym} ED on {mdbefore} and discharged home.",
        "{Pr} {was last seen|followed up} at {acronym} in {year}; per {dr}'s note, {pr} was stable.",
        "{pt} is a {agesex} who {was in usual health|had been well} until {month}.",
        "{banner}",
        "{banner} presenting with {dyspnea|chest pain|fever|confusion|abdominal pain}.",
        "Accompanied by {kinname}, who {drove|brought} {obj} in.",
        "Collateral from {kinname} by phone; {pt} {agrees|agreed} with the history.",
        "{ptlabel}, {agesex}, {mrnlabel}, seen in the ED on {admitday}.",
        "Symptoms began in {month} and worsened on {nthbefore}.",
        "{pt} and {husband} report no recent travel.",
        "History obtained from {pt} and {kinname}.",
        "{Per|Collateral from} {kinname}, {pr} had been more tired for {2-6} days.",
        "Seen at {clinic} on {past} by {dr}, who {referred|sent} {obj} in.",
        "{Transferred|Sent} from {otherhosp} ({city}) for further management; records reviewed (MRN there {idnum}).",
        "{Pr} was {brought in|BIBA} from home in {hometown} by {pos} neighbor {relname}.",
        "{Pt|Patient} called {pos} PCP {pcp} on {wkbefore}, who advised ED evaluation.",
        "Recent admission to {otherhosp} in {year} for similar symptoms.",
        "In short: {ptage}; reassessed by {dr} on {wkdmd}.",
        "{ptage}; records from {OTHERHOSP} arrived {wkdmd}.",
        "Pain {3-9}/10 on arrival, {2-5}/10 after {morphine|dilaudid|toradol}; {2|3}/6 SEM noted at {acronym}.",
    ),
    "Past Medical History": (
        "{Diabetes|Hypertension|Asthma} since {year}, followed at {acronym}",
        "s/p {appendectomy|cholecystectomy|hernia repair|hysterectomy|TKA|CABG} ({year})",
        "Last {colonoscopy|mammogram|echo|stress test} {past} at {clinic}",
        "Followed by {dr} at {clinic} for this since {year}",
        "{Hospitalized|Admitted} at {otherhosp} in {year}",
    ),
    "Social History": (
        "Employed by {org} as {ajob}; has insurance through work ({org}).",
        "Attends {org} {on weekdays|part time}; {kinname} drives {obj} there.",
        "Stays at {org} shelter intermittently; case manager {dr} ({phone}).",
        "Pharmacy: {org}, {street}.",
        "Retired from {org} in {year}.",
        "Lives with {kinname}; {kinname2} checks in daily.",
        "Close to {kinname}, who lives in {city}.",
        "{Was|Works as} {ajob}; job at {org}.",
        "Referred to {org} for {food|housing|transport} assistance.",
        "Lives with {husband} and {pos} {kin} who helps with meds.",
        "{Insurance|Coverage}: {org}; PCP at {clinic}.",
        "Worked for {org} until {year}.",
        "Works as {ajob} at {org}.",
        "Retired {job}; previously worked for {org} for {10-35} years.",
        "Occupation: {job}",
        "Originally from {country}; moved to {hometown} in {year}.",
        "Lives with {pos} {daughter|son|partner} at {street}, {hometown}.",
        "Emergency contact: {kinname} {phone}",
        "{Insurance|Coverage}: {Medicare|Medicaid|Blue Cross|Aetna|Tufts}, ID {idnum}.",
        "Gets {meds|medications} from {org} (fax {fax}).",
        "Attends day program at {org} {twice|three times} a week.",
        "Services through {ORG} ({phone}); {kinname} helps with rides.",
        "Lives with {pos} {kid} and {kinname}.",
        "SW: insurance {plan}; SSN on file {ssn}; account {acct}.",
        "Email on file: {ptemail}; prefers {text|phone|email} ({phone}).",
    ),
    "Family History": (
        "{kinage} with {diabetes|hypertension|depression}.",
        "Mother died at {parentage} of {stroke|MI|breast cancer|COPD}.",
        "Father: {colon cancer|CAD|diabetes} (onset in {decade}).",
        "{Brother|Sister} ({sibage}) with {hypertension|diabetes|asthma}.",
        "{kinname} works as {ajob} and helps at home.",
    ),
    "Brief Hospital Course": (
        "Outside records from {otherhosp} and {clinic} were reviewed with {dr}.",
        "Home services arranged through {org} (fax {fax}).",
        "d/w {dr} from {acronym} on {wkdmd}; {pr} agreed with the plan.",
        "Per {dr}, repeat labs on {nth} were stable.",
        "Records from {HOSP} ({phone}) were requested on {md}.",
        "{pt} ({agesex}) tolerated the procedure well.",
        "By {weekday}, {pt} was ambulating the halls with {PT|nursing}.",
        "{pt} asked that {kinname} be updated daily.",
        "{banner}",
        "Discussed with {kinname} at the bedside; questions answered.",
        "{kinname} will stay with {obj} for the first week at home.",
        "Pt {pt} MRN {mrn} {unit} {room}.",
        "Labs drawn at {org} today were sent to {clinic}.",
        "{ptlabel} ({mrnlabel}, DOB {dob}) was seen in {unit}, {room}, on {day}.",
        "Echo in {month} showed {preserved|mildly reduced} EF; compared with {year}, no change.",
        "On {nth}, {pr} was moved to {room}.",
        "Specimen {idnum} sent to {org} (order #{idnum2}).",
        "{pt}'s {kin} called the floor on {weekday} at {phone}.",
        "Admitted to {unit} on {day}; transferred to {unit2} later in the stay.",
        "Transferred to {unit} ({room}) on {day} for closer monitoring; HR {52-128}, BP {88-172}/{48-96}.",
        "On {weekday} night {pr} became hypotensive to {80-95}/{40-60}; covering MD {dr} (pager {pager}) saw "
        "{obj} at the bedside.",
        "Moved to {room} on {unit} after {1-3} days in the ICU.",
        "Discussed {pt} with {nurse} at {6-22}:{00|15|30|45}; {250-900} cc out since midnight.",
        "Seen by {PT|OT|SW|case management|nutrition} ({dr}); {pt} cleared for home.",
        "{dr} from {cardiology|GI|renal|ID|psychiatry} {recommended|advised} continuing current tx; page {pager} "
        "with questions.",
        "CT {chest|abdomen/pelvis|head} on {md} (accession {idnum}) was {unremarkable|without acute findings}.",
        "Pathology {idnum} from the {md} biopsy {is pending|returned benign}; {dr} will follow up.",
        "Family meeting held {weekday} with {relname} and the team; goals of care reviewed.",
        "Updated {kinname} (HCP) by phone on {md} at {phone}.",
        "{pt} was seen by {dr} on {md}; plan reviewed with {pt} and {pos} {wife|husband|daughter|son}.",
        "Case discussed with {dr} on {day}, who agreed with the plan.",
        "Strength {3-5}/5 {bilaterally|in the LE}; I/O {800-2400}/{600-2200}; {2-4}/{4-6} blood cx {negative|pending}.",
        "At {0100|0300|0430|2200|2330} {pr} was {agitated|confused|hypoxic to 86%}; {nurse} paged {dr} ({pager}).",
        "Portal message from {ptemail} on {wkdmd} answered by {nurse}.",
        "Results faxed to {OTHERHOSP} at {fax}; confirmation sent to {email}.",
        "Note accessed from {ip} by {user} on {md}.",
    ),
    "Discharge Disposition": (
        "{kinname} to pick {obj} up at {9-17}:00; {pr} will stay with {kinname}.",
        "Transport by {org}; {pr} was discharged from {unit} {room}.",
        "{Home with|Referred to} {org} for {VNA|PT|home infusion}; intake {phone}.",
        "Accepted at {org}; report called to {nurse} at {phone}.",
    ),
    "Discharge Instructions": (
        "Hi {firstname}, here is a summary of your stay at {acronym}.",
        "{firstname}, call {dr}'s office if the swelling returns.",
        "{pt}, it was a pleasure caring for you.",
        "{pt}: please weigh yourself every morning.",
        "{ptlabel}  {mrnlabel}  DOB {dob}",
        "{pt}, please call {dr} at {phone} if you have questions.",
        "Your prescriptions were sent to {org} ({phone}).",
        "Questions after hours: call the {unit} nursing station at {phone}.",
        "If you cannot reach us, page the on-call doctor at {pager}.",
        "Questions about your bill: {url} (account {acct}).",
        "Message your care team at {url} or email {email}.",
    ),
}


def mentions(d: Doc, c: Case, section: str) -> None:
    """Sentences of the section's bank, more of them in a dense note, each with its own PHI."""
    bank = MENTIONS.get(section)
    if not bank:
        return
    k = round((2.5 if c.full else 0.6) * c.density * c.rng.random() + (0.35 if c.full else 0.0))
    for template in c.rng.sample(bank, min(k, len(bank))):
        # Fields in the template's order (a set's order changes per process and would unseed the draws).
        need = dict.fromkeys(f for f in FIELD_RE.findall(template) if f in FACTORIES)
        d.line(*c.fill(template, **{f: FACTORIES[f](c) for f in need}))


# --- after the instructions and follow-up -------------------------------------------------------------------------

def contacts(d: Doc, c: Case) -> None:
    """A contact block: the primary care physician, the pharmacy, the emergency contact."""
    p = c.person
    rel, name = relative(c)
    lines = [
        ["PCP: ", *people.doctor(c, c.pcp), ", ", (places.clinic(c.rng), "LOCATION:HOSPITAL"), ", ",
         (p.city, "LOCATION:CITY"), ", ", (places.state(c.rng, p.state), "LOCATION:STATE"), "  Tel ",
         (phone(c), "CONTACT:PHONE"), "  Fax ", (phone(c), "CONTACT:FAX")],
        ["Pharmacy: ", (places.organization(c.rng) if c.chance(0.3) else
                        f"{c.pick(places.PLACE_WORDS)} Pharmacy", "LOCATION:ORGANIZATION"), ", ",
         (places.street(c.rng), "LOCATION:STREET"), ", ", (p.city, "LOCATION:CITY"), " ", (phone(c), "CONTACT:PHONE")],
        ["Emergency contact: ", _named(c, name), f" ({rel}) ", (phone(c), "CONTACT:PHONE")],
        ["Home health: ", (places.organization(c.rng), "LOCATION:ORGANIZATION"), ", intake ", (phone(c), "CONTACT:PHONE"),
         ", referral #", people.code(c, "ID:IDNUM")],
    ]
    for line in c.rng.sample(lines, k=1 + round((2 if c.full else 0.6) * c.density * c.rng.random())):
        d.line(*line)


def addendum(d: Doc, c: Case) -> None:
    p = c.person
    when = p.discharge + dt.timedelta(days=c.rng.randint(0, 2))
    d.add("\n")
    d.line(*c.pick((
        ["ADDENDUM ", (body_date(c, when, ("M/D", "M/D/YY", "MM/DD/YYYY")), "DATE"), ": Spoke with ",
         (places.organization(c.rng), "LOCATION:ORGANIZATION"), " (", (phone(c), "CONTACT:PHONE"), ") re: prior auth; ",
         "approved, ref #", people.code(c, "ID:IDNUM"), ". -- ", *people.doctor(c, p.attending)],
        ["Addendum: final culture data reviewed with Dr. ", people.after_title(c, doctor_name(c.fake)), " on ",
         (f"{when:%A}", "DATE"), "; no change to antibiotics."],
        ["Late entry ", (body_date(c, when, WHOLE), "DATE"), ": pt called the floor (", people.department(c),
         f") asking about {c.words.pos} meds; questions answered by ", *_nurse(c), "."],
    )))


def signature(d: Doc, c: Case, caps: bool = False) -> None:
    """Who signed, dictated and transcribed the note, and who gets a copy."""
    p = c.person
    first, last = people.split(p.attending)
    signed = p.discharge + dt.timedelta(days=c.rng.randint(0, 3))
    name = (p.attending.upper() if caps else p.attending, "NAME:DOCTOR")
    lines = [c.pick((
        ["Electronically signed by: ", name, ", MD on ", (body_date(c, signed, WHOLE), "DATE"),
         f" {c.rng.randint(7, 21)}:{c.rng.randint(0, 59):02d}"],
        ["/es/ ", name, ", MD", "\n", "Attending Physician, " if not caps else "ATTENDING PHYSICIAN, ",
         people.department(c)],
        ["Dictated by: ", name, ", M.D.", "\n", "D: ", (body_date(c, p.discharge, ("MM/DD/YYYY", "M/D/YY")), "DATE"),
         "  T: ", (body_date(c, signed, ("MM/DD/YYYY", "M/D/YY")), "DATE"), "  Job #: ", people.code(c, "ID:IDNUM")],
        [(f"{first[0]}{last[0]}".upper(), "NAME:DOCTOR"), "/", (c.fake.lexify("??").lower(), "NAME:DOCTOR"),
         "  cosigned ", name, " pager ", pager(c)],
    ))]
    if c.chance((0.5 if c.full else 0.2) + 0.4 * c.density):
        cc = [*people.doctor(c, doctor_name(c.fake))]
        if c.chance(0.6):
            cc += [", ", (places.clinic(c.rng), "LOCATION:HOSPITAL")]
        if c.chance(0.4):
            cc += [", fax ", (phone(c), "CONTACT:FAX")]
        lines.append(["cc: ", *cc])
    d.add("\n")
    for line in lines:
        d.line(*line)
