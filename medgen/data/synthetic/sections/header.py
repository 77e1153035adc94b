"""The header fields and the short sections: allergies, attending, chief complaint, procedures."""

from __future__ import annotations

import datetime as dt

from medgen.data.synthetic.case import Case, body_date, fmt_date
from medgen.data.synthetic.clinical import NO_ALLERGIES
from medgen.data.synthetic.phrases import lower_first
from medgen.data.synthetic.text import Doc

# --- header and short sections ---------------------------------------------------------------------------

def header(d: Doc, c: Case) -> None:
    p = c.person
    d.line("Name: ", (p.name, "NAME:PATIENT"), "    Unit No: ", (p.mrn, "ID:MEDICALRECORD"))
    d.add(" \n")
    d.line("Admission Date: ", (fmt_date(p.admit), "DATE"), "    Discharge Date: ", (fmt_date(p.discharge), "DATE"))
    d.add(" \n")
    d.line("Date of Birth: ", (fmt_date(p.dob), "DATE"), "    Sex: ", p.sex[0])
    d.add(" \n")
    d.line(f"Service: {c.service}")


def allergies(d: Doc, c: Case) -> None:
    if c.allergies:
        d.line(" / ".join(c.allergies))
    else:
        d.line(c.pick(NO_ALLERGIES) if c.full else NO_ALLERGIES[0])


def attending(d: Doc, c: Case) -> None:
    name = (c.person.attending, "NAME:DOCTOR")
    if not c.full:
        d.line("Dr. ", name)
    else:
        first, _, last = c.person.attending.partition(" ")
        d.line(*c.pick(((name, ", MD"), (name, ", MD"), (name,), ("Dr. ", name), (name, ", M.D."),
                        ((f"{last}, {first}", "NAME:DOCTOR"), ", MD"), ((f"{first[0]}. {last}", "NAME:DOCTOR"), ", MD"))))


def chief_complaint(d: Doc, c: Case) -> None:
    d.line(lower_first(c.complaint) if c.full and c.chance(0.2) else c.complaint)


def _procedure_dates(c: Case) -> list[dt.date]:
    p = c.person
    first = p.admit + dt.timedelta(days=min(p.los, c.rng.randint(0, 2)))
    return [min(first + dt.timedelta(days=i), p.discharge) for i in range(len(c.cond.procedures))]


def procedure(d: Doc, c: Case) -> None:
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
            d.line(f"{c.bullets or '- '}", (body_date(c, when), "DATE"), f": {proc}")
        else:
            d.line(f"{c.bullets}{proc}" if len(procs) > 1 else proc)
    if c.person.los >= 6 and c.chance(0.3):
        d.line(c.bullets + c.pick(("PICC line placement", "Central venous catheter placement",
                                   "Arterial line placement")))
