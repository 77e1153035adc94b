"""Medications, disposition, diagnosis, condition, instructions and follow-up."""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

from medgen.data.identity import doctor_name
from medgen.data.phi import places
from medgen.data.synthetic import people
from medgen.data.synthetic.case import WHOLE, Case, body_date, fmt_date, phone
from medgen.data.synthetic.clinical import DISPOSITIONS, Med, icd10_description, med
from medgen.data.synthetic.phrases import days, join, lower_first, upper_first
from medgen.data.synthetic.text import Doc

_FREQ_WORDS = {"daily": "once a day", "BID": "twice a day", "TID": "three times a day", "QID": "four times a day",
               "QHS": "at bedtime", "QPM": "every evening", "Q4H": "every 4 hours", "Q6H": "every 6 hours",
               "Q8H": "every 8 hours", "Q12H": "every 12 hours", "weekly": "once a week"}
_ROUTE_WORDS = {"PO": "by mouth", "SC": "subcutaneously", "IH": "inhaled", "IV": "intravenously",
                "SL": "under the tongue",
                "TD": "on the skin", "TP": "on the skin", "OU": "in both eyes", "NAS": "in the nose", "PR": "rectally",
                "IM": "into the muscle", "NU": "nebulized", "VG": "vaginally"}


def _rx_line(c: Case, m: Med) -> str:
    """The prescription line MIMIC prints under a new medication."""
    head, _, rest = m.freq.partition(" ")
    freq = _FREQ_WORDS.get(head, head.lower()) + (f" {rest}" if rest else "")
    return (f"RX *{m.drug.lower()} {m.dose} {c.pick(('1 tablet(s)', '1 capsule(s)', 'as directed'))} "
            f"{_ROUTE_WORDS.get(m.route, m.route)} {freq} Disp #*{c.pick(('14', '28', '30', '60', '90'))} "
            f"{c.pick(('Tablet', 'Capsule', 'Each'))} Refills:*{c.rng.randint(0, 3)}")


def _med_list(d: Doc, c: Case, meds: list[str], rx: Sequence[str] = ()) -> None:
    for i, m in enumerate(meds, 1):
        d.line(f"{c.bullets}{m}" if c.bullets and c.full else f"{i}. {m}")
        if m in rx:
            d.line(_rx_line(c, med(m)))


def admission_meds(d: Doc, c: Case) -> None:
    meds = c.home if c.full else c.home[:1]
    if c.full and c.chance(0.5):
        d.line(c.pick(("The Preadmission Medication list is accurate and complete.",
                       "Preadmission medications listed are correct and complete. Information was obtained from "
                       "Patient.", "Information was obtained from the patient and pharmacy records.")))
    if not meds:
        d.line(c.pick(("None.", "None", "No home medications.")) if c.full else "None")
    _med_list(d, c, meds)


def _discharge_lists(c: Case) -> tuple[list[str], list[str], list[str]]:
    """(new, continued, stopped) at discharge: the condition's medications replace home ones of the same drug."""
    new = list(c.cond.meds if c.full else c.cond.meds[:2])
    new_names = {med(m).name for m in new}
    continued = [m for m in c.home if med(m).name not in new_names and med(m).name not in c.cond.hold]
    stopped = [m for m in c.home if med(m).name in c.cond.hold]
    return new, continued, stopped


def discharge_meds(d: Doc, c: Case) -> None:
    new, continued, stopped = _discharge_lists(c)
    if not c.full:
        _med_list(d, c, new + continued[:1])
        return
    style = c.rng.random()
    if style < 0.2 + 0.3 * c.detail:  # MIMIC: one list, each new drug with its prescription
        _med_list(d, c, new + continued, rx=new)
        if new and c.chance(0.3):
            d.line("Prescriptions signed by ", *people.doctor(c, c.person.attending), " (DEA ",
                   people.code(c, "ID:LICENSE"), ")")
    elif style < 0.85:
        _med_list(d, c, new + continued)
    else:
        for label, meds in (("NEW MEDICATIONS:", new), ("CONTINUE:", continued), ("STOP:", stopped)):
            if meds:
                d.line(label)
                for m in meds:
                    d.line(f"- {m}")


def med_table(d: Doc, c: Case) -> None:
    """Discharge medications as a table: drug, dose, route, how often, and whether it is new."""
    new, continued, stopped = _discharge_lists(c)
    d.line(f"{'Medication':<24}{'Dose':<12}{'Route':<7}{'Frequency':<14}Status")
    for meds, status in ((new, "NEW"), (continued, "continue"), (stopped, "STOP")):
        for m in meds:
            x = med(m)
            d.line(f"{x.drug:<24}{x.dose:<12}{x.route:<7}{x.freq:<14}{status}")


# --- discharge -----------------------------------------------------------------------------------------------

def disposition(d: Doc, c: Case) -> None:
    if not c.full:
        d.line(c.rng.choice(DISPOSITIONS))
        return
    p = c.person
    extended = p.age >= 75 and p.los >= 5 or c.chance(0.08)
    if extended:
        d.line("Extended Care")
        if c.chance(0.7):
            d.line("Facility:")
            d.line((f"{c.pick(places.PLACE_WORDS)} "
                    + c.pick(("Rehabilitation Center", "Nursing and Rehab", "Skilled Nursing Facility",
                              "Senior Living")),
                    "LOCATION:HOSPITAL"))
    else:
        home = c.pick(("Home", "Home", "Home With Service"))
        d.line(home)
        if home == "Home With Service" and c.chance(0.7):
            d.line("Facility:")
            d.line((places.organization(c.rng) if c.chance(0.5) else
                    f"{c.pick(places.PLACE_WORDS)} {c.pick(('VNA', 'Home Health', 'Visiting Nurse Services'))}",
                    "LOCATION:ORGANIZATION"))
    if c.chance(0.15):
        d.line("Insurance: ", *people.plan(c))
    if c.chance(0.2):
        d.line(c.pick(("Length of stay: ", "LOS: ", "Total length of stay: ")), f"{days(p.los)}.")
    if c.chance(0.03):
        d.line("Social work assisted with disability paperwork (SSN ", people.code(c, "ID:SSN"), ").")


def diagnosis(d: Doc, c: Case) -> None:
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


def condition(d: Doc, c: Case) -> None:
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


def instructions(d: Doc, c: Case) -> None:
    p, title, cond = c.person, c.words.title, c.cond
    if not c.full:
        d.line("Dear ", *people.patient(c), ", call ", (p.phone, "CONTACT:PHONE"), " with concerns.")
        return
    d.line(*c.pick((["Dear ", *people.patient(c)], [f"Dear {title} ", (p.last, "NAME:PATIENT")],
                    ["Dear ", (p.first, "NAME:PATIENT")])), ",")
    d.add("\n")
    dx = lower_first(cond.diagnosis)
    if c.terse:
        d.line(*c.fill(c.pick(_WHY), complaint=lower_first(c.complaint), dx=dx), " Call ",
               (p.phone, "CONTACT:PHONE"), " with questions.")
        return
    summary = lower_first(c.course[min(1, len(c.course) - 1)].rstrip("."))
    summary = summary.replace(c.words.pr.capitalize() + " ", "you ").replace(f" {c.words.pr} ", " you ")
    summary = re.sub(rf"\b{c.words.pos}\b", "your", re.sub(rf"^{c.words.pr}\b", "you", summary))
    summary = re.sub(r"\byou was\b", "you were", re.sub(r"\byou has\b", "you have", summary))
    x = c.detail
    headed = c.chance(0.2 + 0.4 * x)
    why = c.fill(c.pick(_WHY), complaint=lower_first(c.complaint), dx=dx)
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
               + join(warn, "or") + ", or any other symptom that concerns you.")
    elif warn_style < 0.6 + 0.4 * x:
        d.line(c.text("{Call your doctor or go to the ER for|Return to the hospital for|Warning signs to watch for}:"))
        for w in warn:
            d.line(f"- {upper_first(w)}")
    if c.chance(0.5 * x):
        d.line(*c.fill("{Your prescriptions were sent to|New prescriptions went to|Please pick up your medications at} "
                       "{pharmacy} ({phone}).", pharmacy=(f"{c.pick(places.PLACE_WORDS)} Pharmacy", "LOCATION:ORGANIZATION"),
                       phone=(phone(c), "CONTACT:PHONE")))
    if c.chance(0.2 + 0.6 * x):
        fu = body_date(c, c.followup)
        d.line(*c.fill(c.pick(_NEXT_VISIT), doc=people.after_title(c, p.attending), date=(fu, "DATE")))
    d.line(*c.fill("{Questions|Questions or concerns|If you have questions}? {Call|Please call} "),
           (p.phone, "CONTACT:PHONE"), ".")
    if c.chance(0.1):
        d.line("You can also email the clinic at ", people.email(c, p.attending), ".")
    if c.chance(0.12):
        d.line(c.pick(("Your results and instructions are on the patient portal: ", "Patient portal: ")), people.url(c))
    if c.chance(0.03):
        d.line("Your home monitoring hub is registered to our network (IP ", people.ip(c), ").")
    if c.chance(0.02):
        d.line("Your genetic testing sample (", people.code(c, "ID:BIOID"), ") was sent; results take 4-6 weeks.")
    if c.chance(0.3 + 0.7 * x):
        d.line(*c.fill(c.pick(_SIGNOFF)))
        team = c.pick((c.service.title(), "Medicine", "Surgery"))
        d.line(f"Your {team} Care Team" if c.chance(0.7) else "Your Care Team")


_DEPARTMENTS = ("PRIMARY CARE", "CARDIOLOGY", "NEUROLOGY", "SURGICAL SPECIALTIES", "ORTHOPEDICS", "UROLOGY",
                "HEMATOLOGY/ONCOLOGY", "GASTROENTEROLOGY", "VASCULAR SURGERY", "BEHAVIORAL HEALTH", "OB/GYN")


def _appointment_time(c: Case, twelve_hour: bool = False) -> str:
    hour = c.rng.randint(8, 16)
    minute = c.pick(('00', '15', '30', '45'))
    if twelve_hour:
        return f"{(hour - 1) % 12 + 1}:{minute} {'AM' if hour < 12 else 'PM'}"
    return f"{hour}:{minute}"


def followup(d: Doc, c: Case) -> None:
    p, rng, fake, fu = c.person, c.rng, c.fake, c.followup
    if not c.full:
        d.line("Dr. ", (p.attending, "NAME:DOCTOR"), " on ", (body_date(c, fu, WHOLE), "DATE"),
               f" at {_appointment_time(c)}")
        return
    x = c.detail
    if c.terse:
        d.line("Dr. ", people.after_title(c, p.attending), " on ", (body_date(c, fu), "DATE"),
               f" at {_appointment_time(c)}")
        _footer(d, c)
        return
    mimic = c.chance(0.1 + 0.5 * x)
    visits = [(p.attending, fu)] + [(doctor_name(fake), fu + dt.timedelta(days=rng.randint(1, 45)))
                                    for _ in range(round((0.8 + 5 * x) * rng.random()))]
    for i, (doc, when) in enumerate(visits):
        if i:
            d.add("\n")
        if mimic:
            d.line(f"Department: {c.service if i == 0 else c.pick(_DEPARTMENTS)}")
            d.line("When: ", (f"{when:%A}".upper() if c.chance(0.5) else f"{when:%A}", "DATE"), " ",
                   (fmt_date(when), "DATE"), f" at {_appointment_time(c, True)}")
            d.line("With: ", (doc, "NAME:DOCTOR"), ", MD ", (phone(c), "CONTACT:PHONE"))
            if c.chance(0.5):
                d.line(f"Building: {c.pick(('SC', 'LM', 'CC'))} {fake.last_name()} Building, "
                       f"{c.pick(('1st', '2nd', '3rd', '5th', '8th'))} Fl")
                d.line("Campus: ", c.pick(("EAST", "WEST")),
                       f"     Best Parking: {c.pick(('Main Garage', 'Lot B', 'Street parking'))}")
        else:
            weekday = [(f"{when:%A}", "DATE"), ", "] if c.chance(0.3) else []
            d.line("Dr. ", people.after_title(c, doc), " on ", *weekday, (body_date(c, when), "DATE"),
                   f" at {_appointment_time(c)}")
            if c.chance(0.15 + 0.75 * x):
                line = ["Location: ", (places.street(c.rng), "LOCATION:STREET"), ", ", (p.city, "LOCATION:CITY"), ", ",
                        *people.state_zip(c), "  Phone: ", (p.phone if i == 0 else phone(c),
                                                                        "CONTACT:PHONE")]
                if c.chance(0.3):
                    line += ["  Fax: ", (phone(c), "CONTACT:FAX")]
                d.line(*line)
    if c.chance(0.1 + 0.3 * x):
        d.line(c.pick(("Please call to schedule a follow-up appointment with your primary care physician within 1 "
                       "week.",
                       "Please follow up with your PCP within 1-2 weeks of discharge.")))
    _footer(d, c)


def _footer(d: Doc, c: Case) -> None:
    """What the record system prints under the note: who signed it and when, account and record numbers."""
    p = c.person
    lines = []
    if c.chance(0.3):
        lines.append(["Electronically signed by ", *people.doctor(c, p.attending), " on ",
                      (body_date(c, p.discharge, WHOLE), "DATE"), *([" (", people.username(c, p.attending), ")"]
                                                                     if c.chance(0.6) else [])])
    if c.chance(0.15):
        lines.append(["Patient: ", people.listed(c, p.name), "   MRN: ", (p.mrn, "ID:MEDICALRECORD"), "   Account #: ",
                      people.code(c, "ID:ACCOUNT")])
    if c.chance(0.12):
        first, last = people.split(p.attending)
        lines.append(["Dictated by: ", (c.pick((f"{first[0]}{last[0]}", f"{first[0]}.{last[0]}.")), "NAME:DOCTOR"),
                      *(["; transcribed by: ", people.username(c, doctor_name(c.fake))] if c.chance(0.7) else [])])
    if lines:
        d.add("\n")
        for line in lines:
            d.line(*line)
