"""MIMIC-IV-Note import: every `___` in a discharge note becomes a typed, realistic surrogate.

A mask's type is read from its context: the text before and after it (across the note's hard line wraps)
and the section it sits in. `RULES` is the table, first match wins; docs/MIMIC_RULES.md documents it.
Masks joined by a space, hyphen or slash ("Dr. ___ ___", "___-___") are one group and get one surrogate.

One identity per note (Faker, seeded by note id and seed). Dates keep clinical order: past history
before admission, results and events within the stay, follow-ups after discharge, and a DOB that gives
the stated age. Surrogates read naturally: an article before a person's name is dropped, "a"/"an" agrees
with the surrogate, and a surrogate that starts a sentence is capitalised.

Masks that hide no PHI in the i2b2 sense (a whole masked section, lab values, an eponym the de-identifier
took for a name, a count) get a non-PHI filler or a typed placeholder (`non_phi`), and no span.
Every PHI surrogate is a span. The report counts masks per rule and the fraction resolved by a specific
rule rather than the fallback.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import io
import random
import re
import zlib
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from faker import Faker

from medgen.constants import SECTION_HEADINGS
from medgen.errors import DataError, is_transient
from medgen.identity import Person, doctor_name, draw_person, phone_number
from medgen.record_format import header_value

NOTE_COLUMNS = ("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text")
FALLBACK = "OTHER"
NON_PHI = "NON-PHI"  # the category of rules whose masks hide no PHI: they get no span
NON_PHI_TREATMENTS = ("filler", "placeholder")
# csv's default field limit (131,072 characters) is below the longest discharge notes; 16 MiB is far above
# them, so only a quote that never closes (swallowing the rest of the file) reaches it.
CSV_FIELD_LIMIT = 1 << 24
_GZIP_MAGIC, _ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it

MASK_RE = re.compile(r"_{3,}")
# A group: masks joined by spaces, a hyphen or a slash on one line; a mask that ends a line and one that
# starts the next and ends a clause (a name or hospital split by the note's hard wrap) join too.
GROUP_RE = re.compile(r"_{3,}(?:(?:[ \t]+|[ \t]*[-/][ \t]*)_{3,})*"
                      r"(?:[ \t]*\n[ \t]*_{3,}(?=[ \t]*(?:[.,;:)]|\n|\Z)))?")
_SEP_RE = re.compile(r"(?<=_)[^_]+(?=_)")

# ---------------------------------------------------------------------------------------------- rules

_KIN_F = "daughter-in-law|granddaughter|stepdaughter|girlfriend|daughter|mother|sister|niece|aunt|wife|mom"
_KIN_M = "son-in-law|grandson|stepson|boyfriend|husband|brother|nephew|father|uncle|son|dad"
_KIN_ANY = ("grandchild|caregiver|roommate|neighbor|sibling|partner|cousin|friend|spouse|child|guardian|coworker|"
            "colleague|landlord")
_KIN = f"{_KIN_F}|{_KIN_M}|{_KIN_ANY}"
_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|"
           "OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
_AGE_SUFFIX = r"[\s-]*(?:years?|yrs?)[\s-]*old\b|\s*(?:y/o|y\.o\.?|yo|YO|Y/O)\b"
_AGE_PREFIX = r"\b(?i:age|aged)\s*:?\s*"
_STUDY = (r"(?:CXR|CTA?|MRI|MRA|MRCP|TTE|TEE|[Ee]cho(?:cardiogram)?|ECHO|EKG|ECG|EGD|ERCP|EUS|US|[Uu]ltrasound|"
          r"X-?ray|XR|KUB|[Cc]ath(?:eterization)?|[Cc]olonoscopy|[Bb]iopsy|[Ss]can|[Ss]tudy|[Ss]urgery|[Pp]rocedure|"
          r"PET|EEG|EMG|PFTs?|[Ss]tress(?: test)?|[Aa]ngiogra(?:m|phy)|Doppler|[Dd]uplex|LENIs?|[Ff]ilms?|[Ii]maging|"
          r"[Pp]athology|[Cc]ulture|[Mm]ammogram|DEXA|[Hh]olter|[Pp]aracentesis|[Tt]horacentesis|[Ee]ndoscopy|"
          r"[Rr]epair|[Rr]eplacement|[Rr]esection|[Ee]xcision|CABG|PCI|ORIF|FINAL REPORT|\(Final|\(Preliminary)s?")
_LAB_LINE = r"(?:^|\n)[ \t]*(?:_{3,}|[\d/-]+)[ \t]+\d{1,2}:\d{2}[ \t]*(?:[AaPp][Mm])?[ \t]+[A-Z][^\n]*?"
_HEADING = r"(?:^|\n)[ \t]*(?P<heading>[A-Z][A-Za-z /&,()'-]{2,60}):[ \t]*\n[ \t]*"
_SECTION_END = r"[ \t]*(?:\n[ \t]*)*(?:\n[ \t]*[A-Z][A-Za-z /&,()'-]{2,60}:|\Z)"
_EPONYM_NOUNS = ("sarcoma|disease|esophagus|sign|syndrome|palsy|lymphoma|ulcer|triad|hernia|fracture|test|maneuver|"
                 "thyroiditis|criteria|node|encephalopathy|phenomenon|contracture|cyst")


@dataclass(frozen=True)
class Rule:
    """A context and the surrogate it gets: `before` must end the text before the mask group, `after` must
    start the text after it (named groups in either reach the maker), `sections` (lower-case headings)
    limit where it applies, `masks` how many masks the group holds and `joined` what joins them. `make`
    names the surrogate maker; `category` is for the report and the docs. `before` is tried on the last
    `reach` characters only (its longest match, with room to spare): scanning the whole window for every
    rule made the import eight times slower."""

    name: str
    category: str
    make: str
    before: str | None = None
    after: str | None = None
    sections: frozenset[str] | None = None
    masks: int | None = None
    joined: str | None = None  # what must join the masks of the group ("-" for a range)
    reach: int = 60


def _r(name: str, category: str, make: str, before: str | None = None, after: str | None = None,
       sections: tuple[str, ...] | None = None, masks: int | None = None, joined: str | None = None,
       reach: int = 60) -> Rule:
    return Rule(name, category, make, before, after, frozenset(sections) if sections else None, masks, joined,
                reach)


RULES: list[Rule] = [
    # Whole sections. A masked Followup Instructions held appointments (PHI); other sections hold none.
    _r("facility", "LOCATION:HOSPITAL", "facility", r"(?:^|\n)[ \t]*Facility:[ \t]*\n?[ \t]*", r"[ \t]*(?:\n|\Z)"),
    _r("followup-section", "DATE", "followup_block", r"(?:^|\n)[ \t]*Followup Instructions:[ \t]*\n?[ \t]*",
       _SECTION_END),
    _r("masked-section", NON_PHI, "section_filler", _HEADING, _SECTION_END, reach=100),
    # The header block
    _r("name-field", "NAME:PATIENT", "patient_full", r"\bName:\s*"),
    _r("unit-no", "ID:MRN", "mrn", r"\bUnit No:\s*"),
    _r("admission-date", "DATE", "admit_date", r"\bAdmission Date:\s*"),
    _r("discharge-date", "DATE", "discharge_date", r"\bDischarge Date:\s*"),
    _r("date-of-birth", "DATE", "birth_date", r"\bDate of Birth:\s*"),
    _r("attending", "NAME:DOCTOR", "doctor_full", r"\bAttending:\s*"),
    # Results: the date that starts a lab or study line is PHI; the values masked with it are not.
    _r("lab-line", "DATE", "lab_date", r"(?:^|\n)[ \t]*", r"[ \t]+\d{1,2}:\d{2}\s*(?:[AaPp][Mm])?\b"),
    _r("report-date", "DATE", "stay_date", r"(?:\((?i:final|preliminary)|(?i:final|preliminary) report)\s*"),
    _r("micro-source", NON_PHI, "specimen", r"\bSource:\s*"),
    _r("lab-values", NON_PHI, "lab_values", _LAB_LINE + r"(?:\n[^\n]*?)?", reach=200),
    # Institutions named by the word after them ("___ ED", "Your ___ Team", "___ VNA")
    _r("building", "LOCATION:DEPARTMENT", "building", r"\bBuilding:\s*",
       None),
    _r("building-named", "LOCATION:DEPARTMENT", "building", None, r"\s+(?:Building|Bldg|Pavilion|Garage|Wing|Tower)\b"),
    _r("bracket-phone", "CONTACT:PHONE", "phone", r"\[\s*", r"\s*\]", sections=("followup instructions",)),
    _r("organization", "LOCATION:ORGANIZATION", "organization", None,
       r"\s+(?:VNA|Visiting Nurses?|Home Health|Home Care|Hospice|Elder Services|Council on Aging)\b"),
    _r("hospital-named", "LOCATION:HOSPITAL", "hospital_short", None,
       r"(?:\s+(?!(?:to|in|at|the|and|or|was|is|for|of|with|from|by|on)\b)[A-Za-z]+){0,2}?"
       r"[ \t\n]+(?:ED|E\.D\.|ER|Emergency\s+(?:Department|Room)|Hospital|Medical\s+Center|Med\s+Center|[Cc]linic|"
       r"[Rr]ehab(?:ilitation)?|Healthcare|Health\s+Care|Cancer\s+Center|Heart\s+Center|Urgent\s+Care|[Tt]eam|"
       r"[Mm]edical\s+[Tt]eam|Center|Campus|Nursing|Transplant|Dialysis|[Ll]ab|Laboratory|[Pp]harmacy)\b"),
    # Clinicians
    _r("clinician-suffix", "NAME:DOCTOR", "doctor_full", None,
       r"\s*,?\s*(?:MD|M\.D\.|DO|NP|PA-C|PA|RN|CNM|FNP|ANP|PhD)\b"),
    _r("doctor-title", "NAME:DOCTOR", "doctor_last", r"\b(?:Drs?|Doctor)\.?\s*"),
    _r("clinician-role", "NAME:DOCTOR", "doctor_full",
       r"(?:\b(?i:PCP|primary care (?:physician|provider|doctor)|(?:cardio|onco|hepato|nephro|neuro|pulmono|"
       r"endocrino|uro|hemato|gastroentero|rheumato|dermato)logist|surgeon|psychiatrist|therapist|provider|"
       r"attending|fellow|resident|social worker|case manager|nurse(?: practitioner)?|nutritionist|dietitian|"
       r"pharmacist|coordinator)(?:\s+(?:is|was))?|\b(?:seen|evaluated|followed|performed|done|read|signed|"
       r"dictated|examined|managed|discussed with) by|\bWith:)\s*[:,]?\s*"),
    # The patient: full name, last name after a title, first name after "Dear"; a sentence's subject
    _r("patient-title", "NAME:PATIENT", "patient_last", r"\b(?:Mr|Ms|Mrs|Miss|Mx)\.?\s*"),
    _r("dear", "NAME:PATIENT", "patient_first", r"\bDear\s*"),
    _r("pleasure", NON_PHI, "it_word", r"(?:^|\n|[.!?]\s)\s*", r"\s+was\s+(?:a\s+|our\s+)?(?:pleasure|privilege)"),
    _r("patient-subject", "NAME:PATIENT", "patient_subject", r"(?:^|\n|[.!?]\s)[ \t]*(?:[-*][ \t]*)?",
       r"\s+(?:is|was|has|had|will|reports|reported|denies|denied|states|stated|underwent|tolerated|needs|remained|"
       r"developed|continues|continued|did|does|should|notes|noted|complains|endorses|lives|returned|received)\b"),
    _r("study-date-lead", "DATE", "stay_date", r"(?:^|\n)[ \t]*(?:[-*][ \t]*)?", r"[ \t]*:?[ \t]+" + _STUDY + r"\b"),
    _r("results-date", "DATE", "stay_date", r"(?:^|\n)[ \t]*(?:[-*][ \t]*)?|[A-Za-z)][ \t]+",
       r"[ \t]*:|[ \t]+[A-Z]{2,}\b", sections=("pertinent results",)),
    # Ages: a masked age is one over 89 (HIPAA Safe Harbor); an age-and-sex phrase ("52F") any age
    _r("age-at", "AGE", "earlier_age",
       r"\b(?i:at|since|from|by|until|before|after|onset|episode|diagnosed|diagnosis)\b[^.\n]{0,25}?\b(?i:age)\s*:?\s*"
       r"|\b(?i:died|passed away|deceased)\b[^.]{0,30}?\bat\s+"),
    _r("age-words", "AGE", "age", _AGE_PREFIX),
    _r("age-suffix", "AGE", "age", None, _AGE_SUFFIX),
    _r("age-sex", "AGE", "age_sex",
       r"(?:\b(?i:is)\s+(?i:an?)|(?:^|\n)[ \t]*(?:[-*][ \t]*)?|[.!?][ \t]+|(?:History|Indication):)[ \t]*",
       r"\s+(?:with|w/|who|h/o|s/p|presenting|presents|presented|p/w|PMH|PMHx|hx|history of|admitted|transferred|"
       r"c/o|complaining|known)\b"),
    _r("age-lead", "AGE", "age_lead", r"(?:^|\n)[ \t]*(?:[-*][ \t]*)?|[.!?][ \t]+|\b(?i:is)\s+(?i:an?)[ \t]+",
       r"\s+(?:(?:previously |otherwise )?healthy|G\d+(?:P\d+)?|man|woman|male|female|gentleman|lady|M|F)\b"),
    # Counts, eponyms and exam words the de-identifier took for PHI
    _r("quantity", NON_PHI, "quantity", None,
       r"[\s-]*(?:years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?|minutes?|mins?|times|x\b|episodes?|BMs?|"
       r"bowel movements|pillows?|blocks?|flights?|steps|drinks?|beers?|glasses|cups|pack[- ]years?|packs?|ppd|"
       r"cigarettes|lbs?|pounds|kg|liters|L\b|cm|units?|tabs?|pills?|doses?|cycles?|stairs|pints|bottles|shots|"
       r"nights|sessions|pads)\b"),
    _r("dose", NON_PHI, "dose", None, r"\s*(?:mg|mcg|g|mL|mEq)\b"),
    _r("eponym", NON_PHI, "eponym", None, rf"'s\s+(?i:{_EPONYM_NOUNS})\b|[\s-]+(?:catheter|Pugh)\b"),
    _r("child-pugh", NON_PHI, "eponym", r"\bChild'?s?[\s-]*"),
    _r("exam-term", NON_PHI, "exam_term", None, r"\s+(?:edema|pulses?|pain or swelling|swelling|pitting|strength)\b"),
    # Addresses
    _r("date-range", "DATE", "date", None, None, masks=2, joined="-"),
    _r("street", "LOCATION:STREET", "street",
       r"\b(?i:address)\b[^._]{0,40}?:?\s*|\b(?i:lives|living|resides|located)\b[^.]{0,40}?\bat\s+"
       r"|\b(?i:home|house|apartment)\s+at\s+", reach=80),
    _r("address-city", "LOCATION:CITY", "city", r"\b(?i:address)\b[^._]{0,40}?:?\s*_{3,},\s*", reach=80),
    _r("route", "LOCATION:STREET", "route", r"\b(?:Route|Rte\.?|Highway|Hwy\.?|I-)\s*"),
    _r("street-name", "LOCATION:STREET", "street_name", None,
       r"\s+(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Lane|Ln|Drive|Way|Court|Ct|Place|Pl|Terrace)\b"),
    _r("city-state", "LOCATION:CITY", "city", None, r"\s*,\s*(?:" + _STATES + r")\b"),
    _r("state-zip", "LOCATION:STATE", "state_zip", r"(?:\b[A-Z][a-z]+|_{3,}),[ \t]*", r"(?![ \t]*\w)",
       masks=2, joined=""),
    _r("state", "LOCATION:STATE", "state", r"(?:\b[A-Z][a-z]+,[ \t]*|\bState:\s*)", r"(?:[ \t]+\d{5}|[ \t]*[.;)])"),
    # Relatives, proxies and other people
    _r("contact-name", "NAME:PATIENT", "contact_full",
       r"\b(?i:HCP|health ?care proxy|proxy|emergency contact|next of kin|NOK|POA|contact person)"
       r"(?:\s+is)?\s*[:,]?\s*"),
    _r("contact-phone", "CONTACT:PHONE", "phone", rf"\b(?i:{_KIN}|HCP|proxy)\b[^.]{{0,30}}?\(\s*", r"\s*\)"),
    _r("relative", "NAME:PATIENT", "relative",
       rf"\b(?P<kin>(?i:{_KIN}))s?\b(?:\s*\((?:HCP|health care proxy)\))?(?:\s*[,:(]\s*|\s+)(?:(?:is|named|who is)\s+)?"
       rf"|\b(?P<kin2>(?i:{_KIN}))s?\b[^.\n]{{0,30}}?_{{3,}}\s*(?:,|and)\s*", reach=80),
    _r("relative-after", "NAME:PATIENT", "relative", None,
       rf"\s*,?\s*\(?\s*(?:(?:her|his|their|the patient's|pt's)\s+)?(?P<kin>(?i:{_KIN}))\b"),
    # Dates and times
    _r("followup-when", "DATE", "followup_date", r"\b(?:When|Date|Appointment):\s*(?:[A-Z]+DAY,?\s+)?"),
    _r("time", "TIME", "time", None, r"\s*(?:am|pm|AM|PM|a\.m\.|p\.m\.)\b"),
    _r("time-words", "TIME", "time", r"\b(?i:time:|at approximately|around)\s*", r"\s*(?:\n|\Z|[.,;])"),
    _r("weekday", "DATE", "weekday", r"\b(?i:on\s+an?|last|this past|next)\s+"),
    _r("weekday-part", "DATE", "weekday", None, r"\s+(?:morning|afternoon|evening|night)\b"),
    _r("month", "DATE", "month", r"\b(?i:in|early|late|mid|since|during|until|by|of)[ -]+",
       r"\s+(?:of\s+)?(?:this|last|next|the following|the previous)\s+year\b|,?\s+2[01]\d\d\b"),
    _r("timeline-date", "DATE", "date", r"(?:^|\n)[ \t]*(?:[-*][ \t]*)?", r"[ \t]*:"),
    _r("by-date", "DATE", "date", r"\b(?i:by)\s+", r"\s*[.,;]"),
    _r("procedure-date", "DATE", "stay_date", sections=("major surgical or invasive procedure",)),
    # "CT head ___", "MRI pelvis on ___", not "stress test at ___" (a place) nor "office at ___" (a phone)
    _r("study-date", "DATE", "date",
       _STUDY + r"(?:\s+(?!(?:at|to|with|by|for|and|or)\b)[A-Za-z0-9/()'-]+){0,3}?\s*:?\s*", reach=100),
    # Places
    _r("ward", "LOCATION:DEPARTMENT", "ward", r"\b(?i:called out to)\s+(?:the\s+)?"),
    _r("ward-number", "LOCATION:DEPARTMENT", "ward", None,
       r"[ \t]+(?:\d{1,2}\b|ICU\b|MICU|SICU|CCU|CVICU|TSICU|NICU|PICU)"),
    _r("zip", "LOCATION:ZIP", "zip", r",\s*(?:" + _STATES + r")\s+|\b(?:Zip|ZIP)(?:\s*[Cc]ode)?:?\s*"),
    _r("country", "LOCATION:COUNTRY", "country",
       r"\b(?i:(?:emigrated|immigrated|moved here|came to the (?:US|United States))\s+from|born in|native of|"
       r"country:)\s*"),
    _r("city", "LOCATION:CITY", "city",
       r"(?:\b(?i:lives|living|resides|residing|staying|stays)\b[^.]{0,60}?\bin|"
       r"\b(?i:moved|moving|relocated|grew up|raised|travel(?:l?ing|l?ed|s)?|trip|vacation(?:ing)?|visiting|"
       r"visited|returned)\b[^\n.]{0,20}?\b(?:in|to|from|at)|\b(?i:house|home|apartment|condo)\s+in"
       r"|\b(?:is|was|originally)\s+from|\bCity:)\s*", reach=100),
    _r("fax", "CONTACT:FAX", "fax", r"\b(?i:fax(?:ed)?(?:\s*(?:number|no\.?|#))?)\s*(?:is|at|to|:)?\s*"),
    _r("phone", "CONTACT:PHONE", "phone",
       r"(?:\b(?i:phone|telephone|tel|ph|cell|mobile|pager|beeper)(?:\s*(?:number|no\.?|#))?\s*(?:is|at|:|#)?|"
       r"\b(?i:call(?:ing)?)\b(?:[^.]|(?<=Dr)\.|(?<=Ms)\.|(?<=Mr)\.){0,80}?\b(?:at|concerns|questions|number)"
       r"|\b(?i:call|reach(?:ed)?(?: at)?|dial)|(?:\bnumber|#)\s*(?:is|:)?)\s*", reach=120),
    _r("hospital", "LOCATION:HOSPITAL", "hospital_full",
       r"(?:\b(?i:(?:transferred|transfer|transported|admitted|readmitted|presented|presenting|presents|"
       r"brought(?: in)?|taken|sent|went|came|seen|evaluated|treated|hospitali[sz]ed|hospitali[sz]ation|admission|"
       r"stay|care|followed|discharged|intubated|delivered|born)\s+(?:from|to|at))\s+|\b(?i:hospitali[sz]ations?):\s*"
       r"|\b(?:OSH|outside hospital)\s*,?\s*|\bat\s+)(?:the\s+)?"),
    _r("year-in", "DATE", "year", r"\b(?i:in|since|circa|around|during|ca\.?)\s+",
       r"\s*(?:[.,;:)]|\n|\Z|\s+(?:and|with|for|at|when|after|but|which|that|s/p|c/b|complicated|while|he|she|"
       r"without|to|-)\b)"),
    _r("date-words", "DATE", "date",
       r"(?:\b(?i:on|since|until|till|through|thru|dated|from|starting|started|beginning|effective|as of|"
       r"prior to|before|after|date(?: of [a-z]+)?:?|DOS:?|today\s*-|(?:planned|scheduled) for|"
       r"(?:morning|afternoon|evening|night) of|LMP|EDC|EDD)|\bfrom\s+_{3,}\s+(?:to|until|through)|\bin)\s+"),
    _r("dose-paren", NON_PHI, "dose", r"\(\s*", r"\s*\)", sections=("medications on admission",
                                                                       "discharge medications")),
    _r("year", "DATE", "year", r"\((?:\s*_{3,}\s*,)*\s*", r"\s*[,)]"),
    _r("history-date", "DATE", "year", r"\S[ \t]+", r"[ \t]*(?:[,;)]|\n|\Z)",
       sections=("past medical history", "past surgical history")),
    _r("drug-name", NON_PHI, "drug", None, r"\s*\((?:[A-Z][A-Za-z-]+)\)"),
]
_COMPILED = [(r, re.compile(f"(?:{r.before})\\Z") if r.before else None,
              re.compile(f"(?:{r.after})") if r.after else None) for r in RULES]
_FALLBACK_RULE = Rule("fallback", FALLBACK, "fallback")
assert len({r.name for r in RULES}) == len(RULES), "rule names are the report's keys: keep them unique"


@dataclass(frozen=True)
class Context:
    before: str  # the note up to the mask group (a window), other masks still as ___
    after: str  # the note after it (a window)
    section: str = ""  # lower-case heading of the section the group is in; "" in the header block
    masks: int = 1
    seps: tuple[str, ...] = ()  # what joins the masks of the group


def match(ctx: Context) -> tuple[Rule, dict[str, str]]:
    """The first rule whose context fits, with its named groups; the fallback when none does."""
    for rule, b, a in _COMPILED:
        if rule.sections is not None and ctx.section not in rule.sections:
            continue
        if rule.masks is not None and ctx.masks != rule.masks:
            continue
        if rule.joined is not None and not (ctx.seps and all(s.strip() == rule.joined for s in ctx.seps)):
            continue
        # `after` is anchored at its start, so it is the cheap test: try it first
        ma = a.match(ctx.after) if a else None
        if a and not ma:
            continue
        mb = b.search(ctx.before, max(0, len(ctx.before) - rule.reach)) if b else None
        if b and not mb:
            continue
        groups = {**(mb.groupdict() if mb else {}), **(ma.groupdict() if ma else {})}
        return rule, {k: v for k, v in groups.items() if v}
    return _FALLBACK_RULE, {}


def context_at(text: str, start: int, end: int, section: str) -> Context:
    """The context of the mask group text[start:end]."""
    group = text[start:end]
    return Context(text[max(0, start - 200):start], text[end:end + 300], section, len(MASK_RE.findall(group)),
                   tuple(_SEP_RE.findall(group)))


# ------------------------------------------------------------------------------------------- sections

# What a date means in each section, unless its sentence says otherwise (see `window`).
SECTION_WINDOWS = {
    "chief complaint": "recent", "history of present illness": "recent",
    "past medical history": "past", "past surgical history": "past", "social history": "past",
    "family history": "past", "medications on admission": "past", "allergies": "past",
    "discharge instructions": "followup", "followup instructions": "followup",
}
_KNOWN_SECTIONS = {h.lower() for h in SECTION_HEADINGS} | set(SECTION_WINDOWS) | {"facility"}
_SECTION_RE = re.compile(r"(?m)^[ \t]*([A-Z][A-Za-z /&]{2,50}):")


def sections(text: str) -> tuple[list[int], list[str]]:
    """Where each known section starts and its lower-case heading; sub-headings ("LABS ON ADMISSION:") are
    not sections, so a mask under one keeps its section's meaning."""
    starts, names = [0], [""]
    for m in _SECTION_RE.finditer(text):
        name = m.group(1).strip().lower()
        if name in _KNOWN_SECTIONS:
            starts.append(m.start())
            names.append(name)
    return starts, names


_SENTENCE_END = re.compile(r"(?:(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bSt)[.!?]\s|\n[ \t]*\n|\n[ \t]*[-*#]|:\s*\n)")
_ADMIT = re.compile(r"(?i)\badmi(?:tted|ssion)\b[^.]{0,30}\bon\s*\Z")
_DISCHARGED = re.compile(r"(?i)\bdischarged?\b[^.]{0,30}\bon\s*\Z")
_UNTIL = re.compile(r"(?i)\b(?:until|through|thru|last dose|end date|to complete|complete (?:the|a|your) course)\b")
_FUTURE = re.compile(r"(?i)\b(?:follow(?:-|\s)?up|f/u|appointment|appt|scheduled|outpatient|next visit|return|"
                     r"come back|will (?:see|call|have|need)|(?:may|can|will|should) be|planned|upcoming|repeat|"
                     r"restart(?!ed)|resume\b)")
_PAST_TENSE = re.compile(r"(?i)\b(?:had|was|were|did|underwent|prior|previous|last|ago)\b")
_PRIOR = re.compile(r"(?i)\b(?:prior|previous|comparison|compared|baseline|in the past)\b")
_DURING = re.compile(r"(?i)\b(?:you had|you underwent|you were|while you|during your|we (?:did|performed|gave|"
                     r"started|found|stopped|changed))\b")


def _sentence(before: str) -> str:
    ends = list(_SENTENCE_END.finditer(before))
    return before[ends[-1].end():] if ends else before


def window(ctx: Context) -> str:
    """When a date falls: past (before admission), recent (the days before it), admit, stay, discharge,
    course (an order running past discharge) or followup (after discharge)."""
    s = _sentence(ctx.before)
    if _ADMIT.search(s):
        return "admit"
    if _DISCHARGED.search(s):
        return "discharge"
    default = SECTION_WINDOWS.get(ctx.section, "stay")
    if default == "past":
        return "past"
    if _UNTIL.search(s):
        return "course"
    if _FUTURE.search(s) and not _PAST_TENSE.search(s):
        return "followup"
    if _PRIOR.search(s):
        return "past"
    if default == "followup" and _DURING.search(s):
        return "stay"
    return default


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
_AGE_MASK_RE = re.compile(r"_{3,}(?:" + _AGE_SUFFIX + r")|\b(?:Age:|aged)\s*_{3,}")
_STATED_AGE_RE = re.compile(r"\b(\d{1,3})(?:" + _AGE_SUFFIX + r")(?!\s+(?:" + _KIN + r"))")
_FEMALE_KIN = re.compile(rf"(?i)\b(?:{_KIN_F})\b")
_MALE_KIN = re.compile(rf"(?i)\b(?:{_KIN_M})\b")
_CLOSE_FAMILY = re.compile(r"(?:daughter|son|wife|husband|mother|father|sister|brother|mom|dad)$")
_OUTSIDE = re.compile(r"(?i)\b(?:OSH|outside|transferr(?:ed|al) from|from an?|another|local|other|previously)\b")
DATE_FORMAT = "%m/%d/%Y"


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

    @classmethod
    def make(cls, fake: Faker, rng: random.Random, sex: str, text: str) -> Identity:
        """`sex` is "Male" or "Female". An age left unmasked in `text` is kept; a masked age is over 89."""
        m = _STATED_AGE_RE.search(text)
        stated = int(m.group(1)) if m and 0 < int(m.group(1)) < 120 else None
        ages = (stated, stated) if stated else (90, 99) if _AGE_MASK_RE.search(text) else (25, 89)
        person = draw_person(fake, rng, sex, ages, ADMITTED, (2, 12), ("Hospital",))
        return cls(person, fake, rng, (person.attending, doctor_name(fake), doctor_name(fake)))

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
        return _parts((d.strftime(DATE_FORMAT), "DATE"), ("-", None), (end.strftime(DATE_FORMAT), "DATE"), when=when)
    if ctx.masks > 1 and "/" in "".join(ctx.seps):  # "___/___": month and year
        return _phi(d.strftime("%m/%Y"), "DATE", when=when)
    return _phi(d.strftime(DATE_FORMAT), "DATE", when=when)


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
                      (doc, "NAME:DOCTOR"), (", MD ", None), (phone_number(f), "CONTACT:PHONE"),
                      ("\nBuilding: ", None), (str(building), "LOCATION:DEPARTMENT"), (" Building, ", None),
                      (ident.hospital(False)[0], "LOCATION:HOSPITAL"), ("\nCampus: ", None),
                      (rng.choice(("EAST", "WEST")), None), ("     Best Parking: ", None),
                      (str(building), "LOCATION:DEPARTMENT"), (" Garage", None)]
        else:
            parts += [(f"{dept.title()} appointment with Dr. ", None), (doc, "NAME:DOCTOR"), (" on ", None),
                      (d.strftime(DATE_FORMAT), "DATE"), (" at ", None), (time, "TIME"),
                      (". If you need to reschedule, please call ", None), (phone_number(f), "CONTACT:PHONE"),
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
    number = phone_number(ident.fake)
    return re.sub(r"\((\d{3})\) ", r"\1-", number) if re.search(r"[(\[]\s*\Z", ctx.before) else number


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
    "mrn": lambda i, c, g: _phi(i.person.mrn, "ID:MRN"),
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
    "hospital_short": lambda i, c, g: _phi(i.hospital(bool(_OUTSIDE.search(_sentence(c.before))))[1],
                                           "LOCATION:HOSPITAL"),
    "hospital_full": lambda i, c, g: _phi(i.hospital(bool(_OUTSIDE.search(_sentence(c.before))) or
                                                     SECTION_WINDOWS.get(c.section) == "past")[0], "LOCATION:HOSPITAL"),
    "facility": lambda i, c, g: _phi(str(i.once("facility", lambda: _facility(i))), "LOCATION:HOSPITAL"),
    "building": lambda i, c, g: _phi(str(i.once("building", i.fake.last_name)), "LOCATION:DEPARTMENT"),
    "organization": lambda i, c, g: _phi(_city(i), "LOCATION:ORGANIZATION"),
    "ward": lambda i, c, g: _ward(i, c),
    "street": lambda i, c, g: _phi(str(i.once("street", i.fake.street_address)), "LOCATION:STREET"),
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


# ------------------------------------------------------------------------------------ reading naturally

_ARTICLE_TAIL = re.compile(r"(?:(?<=\s)|(?<=\A))(the|a|an)[ \t]+\Z", re.IGNORECASE)
# Notes are hard-wrapped, so a line start is a sentence start only after a sentence end, a blank line or
# a bullet.
_SENTENCE_START = re.compile(r"(?:\A|[.!?:][\"')\]]*\s+|\n[ \t]*\n\s*|\n[ \t]*(?:[-*#]+|\d+[.)])[ \t]*)\Z")
_AN_DIGITS = re.compile(r"(?:8|11|18)(?:\d?|\d{3})(?!\d)")


def wants_an(word: str) -> bool:
    """Whether "an" rather than "a" goes before `word` (by its sound: "an 81", "an MRI", "a unit")."""
    if word[:1].isdigit():
        return bool(_AN_DIGITS.match(word))
    first = re.match(r"[A-Za-z]+", word)
    if not first:
        return False
    w = first.group(0)
    if w.isupper() and len(w) <= 4:
        return w[0] in "AEFHILMNORSX"
    return w[0].lower() in "aeiou" and not re.match(r"(?i)u[nrs][aeiou]|eu|one|use", w)


def read_naturally(buf: str, value: str, proper: bool) -> tuple[str, str]:
    """The text so far and the surrogate, adjusted so they read naturally together."""
    tail = max(0, len(buf) - 40)  # the text so far grows to the whole note: searching it all is quadratic
    m = _ARTICLE_TAIL.search(buf, tail)
    if m and value[:1].isalnum():
        article = m.group(1)
        if proper:  # "the Dr. ___" is not written, nor "the Jane Smith"
            buf = buf[:m.start()]
            if article[0].isupper():
                value = value[0].upper() + value[1:]
        elif article.lower() in ("a", "an"):
            want = "an" if wants_an(value) else "a"
            want = want.upper() if article.isupper() else want.capitalize() if article[0].isupper() else want
            buf = buf[:m.start(1)] + want + buf[m.end(1):]
    if value[:1].islower() and _SENTENCE_START.search(buf, max(0, len(buf) - 40)):
        value = value[0].upper() + value[1:]
    return buf, value


def _shout(line: str) -> bool:
    """A line written in capitals (an all-caps heading or label): PHI in it is written in capitals too."""
    letters = re.sub(r"[^A-Za-z]", "", MASK_RE.sub("", line))
    return len(letters) >= 4 and letters.isupper()


@dataclass
class Filled:
    text: str
    spans: list[dict]  # PHI surrogates: start, end, category (i2b2), rule, text; dates also "when"
    non_phi: list[dict]  # non-PHI fills: start, end, rule (no category: they are not PHI)
    rules: Counter  # masks per rule


def fill(text: str, identity: Identity, non_phi: str = "filler") -> Filled:
    """Replace every mask of `text`; `non_phi` is "filler" (realistic text) or "placeholder" (`<KIND>`)."""
    if non_phi not in NON_PHI_TREATMENTS:
        raise ValueError(f"non_phi: expected one of {NON_PHI_TREATMENTS}, got {non_phi!r}")
    starts, names = sections(text)
    buf, pos = "", 0
    spans: list[dict] = []
    fills: list[dict] = []
    rules: Counter = Counter()
    for g in GROUP_RE.finditer(text):
        ctx = context_at(text, g.start(), g.end(), names[bisect_right(starts, g.start()) - 1])
        rule, groups = match(ctx)
        f = MAKERS[rule.make](identity, ctx, groups)
        value = f.placeholder if f.placeholder is not None and non_phi == "placeholder" else f.text
        line_end = text.find("\n", g.end())
        if f.spans and _shout(text[text.rfind("\n", 0, g.start()) + 1:line_end if line_end != -1 else len(text)]):
            value = value.upper()
        buf, value = read_naturally(buf + text[pos:g.start()], value, f.proper)
        start = len(buf)
        if f.placeholder is not None:
            fills.append({"start": start, "end": start + len(value), "rule": rule.name})
        for s, e, category in f.spans:
            span = {"start": start + s, "end": start + e, "category": category, "rule": rule.name,
                    "text": value[s:e]}
            if f.when and category == "DATE":
                span["when"] = f.when
            spans.append(span)
        buf += value
        pos = g.end()
        rules[rule.name] += ctx.masks
    return Filled(buf + text[pos:], spans, fills, rules)


# ---------------------------------------------------------------------------------------------- reading

@dataclass
class Note:
    note_id: str
    subject_id: str
    sex: str
    service: str
    text: str
    spans: list[dict] = field(default_factory=list)
    non_phi: list[dict] = field(default_factory=list)


def _header(text: str, name: str) -> str | None:
    """A header field's value; a masked one counts as absent, so the tables decide or the note is skipped."""
    value = header_value(text, name)
    return value if value and not MASK_RE.search(value) else None


def _open_text(path: Path, what: str) -> io.TextIOWrapper:
    """`path` as UTF-8 text (a BOM is dropped), gunzipped when its first bytes say gzip, whatever its name."""
    if path.is_dir():
        raise DataError([f"{path}: is a directory; expected {what}"])
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        raw = gzip.open(path, "rb") if magic[:2] == _GZIP_MAGIC else open(path, "rb")
    except FileNotFoundError:
        raise DataError([f"{path}: no such file; expected {what}"]) from None
    except PermissionError:
        raise DataError([f"{path}: not readable (permission denied); give your user read access "
                         f"(chmod u+r) or point to a copy you can read"]) from None
    except OSError as e:
        if is_transient(e):  # a flaky file system: the task layer retries these
            raise
        raise DataError([f"{path}: cannot be read ({e.strerror or e}); expected {what}"]) from None
    if magic == _ZIP_MAGIC:
        raw.close()
        raise DataError([f"{path}: is a ZIP archive (or a spreadsheet); expected {what}: unzip it, or export "
                         "the sheet as CSV"])
    # Bad bytes are kept as lone surrogates and reported by the row that holds them: decoding fails a
    # whole read-ahead buffer at once, so a strict decoder would name a line thousands of rows early.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


class _Rows:
    """csv rows; `line` is where the current row starts. A malformed file raises DataError naming
    path:line, what is wrong and the fix."""

    def __init__(self, path: Path, f: io.TextIOWrapper):
        self.path = path
        self.reader = csv.reader(f, strict=True)
        self.line = 1

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        self.line = self.reader.line_num + 1
        where = f"{self.path}:{self.line}"
        try:
            row = next(self.reader)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise DataError([f"{where}: the gzip data is truncated or corrupt ({e}); download or compress the "
                             "file again (gzip -t checks it)"]) from None
        except csv.Error as e:
            if "field limit" in str(e):
                raise DataError([f"{where}: a field longer than {CSV_FIELD_LIMIT:,} characters, so a quote opened "
                                 "in the row starting here probably never closes; check its quoting"]) from None
            if "end of data" in str(e):
                raise DataError([f"{where}: a quoted field opened in the row starting here runs to the end of the "
                                 "file; close its quote (a quote inside a field is written twice: \"\")"]) from None
            raise DataError([f"{where}: malformed CSV ({e}); check the quoting of the row starting here (a quote "
                             "inside a field is written twice: \"\")"]) from None
        for i, value in enumerate(row):
            if bad := _BAD_BYTE.search(value):
                line = self.line + ",".join(row[:i]).count("\n") + value.count("\n", 0, bad.start())
                raise DataError([f"{self.path}:{line}: not UTF-8 (byte 0x{ord(bad.group()) - 0xdc00:02x}); re-encode "
                                 "the file as UTF-8, e.g. iconv -f latin1 -t utf-8"])
        return row


@contextlib.contextmanager
def _csv_rows(path: Path, what: str, columns: tuple[str, ...]) -> Iterator[tuple[_Rows, dict[str, int], int]]:
    """The rows after the header, the index of each of `columns` and the header's width."""
    f = _open_text(path, what)
    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        rows = _Rows(path, f)
        header = next(rows, None)
        if header is None:
            raise DataError([f"{path}:1: empty file; expected a header row {','.join(columns)}"])
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError([f"{path}:1: missing column(s) {missing}; expected a header row {','.join(columns)}, "
                             f"found {_describe_header(header)}"])
        yield rows, {c: header.index(c) for c in columns}, len(header)
    finally:
        csv.field_size_limit(old_limit)
        f.close()


def _describe_header(header: list[str]) -> str:
    """What the first row holds, naming its columns only when they look like column names: a file without
    a header row would otherwise put a note's text (PHI) in the message."""
    if any("\t" in h for h in header):
        return "one tab-separated column: save the file as comma-separated"
    if all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]{0,40}", h) for h in header):
        return ",".join(header)
    return f"a first row of {len(header)} value(s), not column names: add the header row"


def _table(path: Path | None, key: str, value: str, what: str) -> dict[str, str]:
    if path is None:
        return {}
    out = {}
    with _csv_rows(path, what, (key, value)) as (rows, col, width):
        for row in rows:
            if len(row) != width:
                raise DataError([f"{path}:{rows.line}: {len(row)} field(s), expected {width} as in the header; "
                                 "check the quoting of this row"])
            out[row[col[key]]] = row[col[value]]
    return out


@dataclass
class ImportReport:
    notes: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> CSV line numbers
    categories: Counter = field(default_factory=Counter)  # PHI spans per i2b2 category
    rules: Counter = field(default_factory=Counter)  # masks per rule
    non_phi: str = "filler"

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)

    def as_dict(self) -> dict:
        total = sum(self.rules.values())
        fallback = self.rules.get(_FALLBACK_RULE.name, 0)
        non_phi_rules = {r.name for r in RULES if r.category == NON_PHI}
        return {
            "notes": self.notes,
            "skipped": {k: {"count": len(v), "lines": v[:50]} for k, v in self.skipped.items()},
            "masks": total,
            "categories": dict(self.categories.most_common()),
            "rules": dict(self.rules.most_common()),
            "non_phi_masks": sum(n for r, n in self.rules.items() if r in non_phi_rules),
            "non_phi_treatment": self.non_phi,
            "fallback_masks": fallback,
            "resolved_by_specific_rule": round(1 - fallback / total, 4) if total else None,
        }


def read_notes(notes: Path, seed: int = 0, patients: Path | None = None, services: Path | None = None,
               limit: int | None = None, non_phi: str = "filler") -> tuple[list[Note], ImportReport]:
    """Read discharge.csv[.gz], fill every mask; malformed files raise DataError, bad notes are counted skips."""
    sexes = _table(patients, "subject_id", "gender", "MIMIC-IV patients.csv[.gz] (subject_id, gender)")
    svc = _table(services, "hadm_id", "curr_service", "MIMIC-IV services.csv[.gz] (hadm_id, curr_service)")
    report = ImportReport(non_phi=non_phi)
    out: list[Note] = []
    fake = Faker("en_US")
    with _csv_rows(notes, "MIMIC-IV-Note discharge.csv or discharge.csv.gz", NOTE_COLUMNS) as (rows, col, width):
        for row in rows:
            if len(row) != width:
                report.skip("wrong number of fields", rows.line)
                continue
            # A file saved on Windows has CRLF inside its notes too; the rules read the notes' line structure.
            text = row[col["text"]].replace("\r\n", "\n")
            if not text.strip():
                report.skip("empty note", rows.line)
                continue
            sex = sexes.get(row[col["subject_id"]]) or _header(text, "Sex")
            service = svc.get(row[col["hadm_id"]]) or _header(text, "Service")
            if not sex or not service or sex.upper()[:1] not in ("M", "F"):
                report.skip("no Sex/Service in the header or tables", rows.line)
                continue
            sex = "Male" if sex.upper()[0] == "M" else "Female"
            key = int(hashlib.sha256(f"{seed}|{row[col['note_id']]}".encode()).hexdigest()[:12], 16)
            fake.seed_instance(key)
            filled = fill(text, Identity.make(fake, random.Random(key), sex, text), non_phi)
            report.rules.update(filled.rules)
            report.categories.update(s["category"] for s in filled.spans)
            report.notes += 1
            out.append(Note(row[col["note_id"]], row[col["subject_id"]], sex, service.strip().upper(), filled.text,
                            filled.spans, filled.non_phi))
            if limit and len(out) >= limit:
                break
    return out, report
