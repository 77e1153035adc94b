"""The mask rule table: what a `___` hides, read from the text before and after it and the section it is in.

`RULES` is the table, first match wins; docs/MIMIC_RULES.md documents it. Masks joined by a space, hyphen or slash
("Dr. ___ ___", "___-___") are one group and get one surrogate. `window` says where in the stay a date falls."""

from __future__ import annotations

import re
from dataclasses import dataclass

from medgen.core.constants import SECTION_HEADINGS

FALLBACK = "OTHER"
NON_PHI = "NON-PHI"  # the category of rules whose masks hide no PHI: they get no span
NON_PHI_TREATMENTS = ("filler", "placeholder")
MASK_RE = re.compile(r"_{3,}")
# A group: masks joined by spaces, a hyphen or a slash on one line; a mask that ends a line and one that
# starts the next and ends a clause (a name or hospital split by the note's hard wrap) join too.
GROUP_RE = re.compile(r"_{3,}(?:(?:[ \t]+|[ \t]*[-/][ \t]*)_{3,})*"
                      r"(?:[ \t]*\n[ \t]*_{3,}(?=[ \t]*(?:[.,;:)]|\n|\Z)))?")
_SEP_RE = re.compile(r"(?<=_)[^_]+(?=_)")

# ---------------------------------------------------------------------------------------------- rules

KIN_F = "daughter-in-law|granddaughter|stepdaughter|girlfriend|daughter|mother|sister|niece|aunt|wife|mom"
KIN_M = "son-in-law|grandson|stepson|boyfriend|husband|brother|nephew|father|uncle|son|dad"
_KIN_ANY = ("grandchild|caregiver|roommate|neighbor|sibling|partner|cousin|friend|spouse|child|guardian|coworker|"
            "colleague|landlord")
KIN = f"{KIN_F}|{KIN_M}|{_KIN_ANY}"
_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|"
           "OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY")
AGE_SUFFIX = r"[\s-]*(?:years?|yrs?)[\s-]*old\b|\s*(?:y/o|y\.o\.?|yo|YO|Y/O)\b"
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
    _r("unit-no", "ID:MEDICALRECORD", "mrn", r"\bUnit No:\s*"),
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
    _r("age-suffix", "AGE", "age", None, AGE_SUFFIX),
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
    _r("contact-phone", "CONTACT:PHONE", "phone", rf"\b(?i:{KIN}|HCP|proxy)\b[^.]{{0,30}}?\(\s*", r"\s*\)"),
    _r("relative", "NAME:PATIENT", "relative",
       rf"\b(?P<kin>(?i:{KIN}))s?\b(?:\s*\((?:HCP|health care proxy)\))?(?:\s*[,:(]\s*|\s+)(?:(?:is|named|who is)\s+)?"
       rf"|\b(?P<kin2>(?i:{KIN}))s?\b[^.\n]{{0,30}}?_{{3,}}\s*(?:,|and)\s*", reach=80),
    _r("relative-after", "NAME:PATIENT", "relative", None,
       rf"\s*,?\s*\(?\s*(?:(?:her|his|their|the patient's|pt's)\s+)?(?P<kin>(?i:{KIN}))\b"),
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
FALLBACK_RULE = Rule("fallback", FALLBACK, "fallback")
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
    return FALLBACK_RULE, {}


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


def sentence(before: str) -> str:
    ends = list(_SENTENCE_END.finditer(before))
    return before[ends[-1].end():] if ends else before


def window(ctx: Context) -> str:
    """When a date falls: past (before admission), recent (the days before it), admit, stay, discharge,
    course (an order running past discharge) or followup (after discharge)."""
    s = sentence(ctx.before)
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
