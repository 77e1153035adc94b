"""Physical exam and pertinent results (labs, microbiology, imaging)."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from medgen.data.synthetic import people
from medgen.data.synthetic.case import WHOLE, Case, body_date, lab_date, lab_names, lab_ranges, lab_value
from medgen.data.synthetic.clinical import BASIC, LABS, PANELS
from medgen.data.synthetic.phrases import upper_first
from medgen.data.synthetic.sections.history import vitals
from medgen.data.synthetic.text import Doc

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


def _exam_line(c: Case, system: str) -> str:
    groups = c.rng.sample(_EXAM[system], min(len(_EXAM[system]), c.rng.randint(1, 4)))
    return upper_first(c.text(", ".join(c.pick(g) for g in groups))) + "."


_EXAM_ORDER = tuple(_EXAM)


_EXAM_CORE = ("General", "Lungs", "CV", "Abdomen")


def _exam_block(d: Doc, c: Case, systems: int, pertinent: bool) -> None:
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


def exam(d: Doc, c: Case) -> None:
    if not c.full:
        d.line(c.exam)
        return
    x = c.detail
    if c.terse:
        d.line(f"VS: {vitals(c, True)}")
        d.line(c.exam)
        return
    systems = 1 + round(8 * x * (0.6 + 0.4 * c.rng.random()))
    if x > 0.25 or c.chance(0.5):
        d.line(c.pick(("ADMISSION PHYSICAL EXAM:", "Admission exam:", "ADMISSION EXAM:", "On admission:",
                       "PHYSICAL EXAM:")))
    d.line(f"{c.pick(('Vitals', 'VS', 'Vital signs'))}: {vitals(c, True)}")
    if c.chance(0.7 * x):
        d.line(c.text("Height: {ht} in  Weight: {wt} kg  BMI: {bmi}"))
    _exam_block(d, c, systems, True)
    if c.chance(0.1 + 0.9 * x):
        d.add("\n")
        d.line(c.pick(("DISCHARGE PHYSICAL EXAM:", "Discharge exam:", "DISCHARGE EXAM:", "On discharge:")))
        d.line(f"{c.pick(('Vitals', 'VS', 'Vital signs'))}: {vitals(c, False)}")
        if c.chance(0.3 - 0.2 * x):
            d.line(c.text("{Unchanged from admission|Improved from admission|Exam as above} except as below."))
            d.line(_exam_line(c, "General"))
        else:
            _exam_block(d, c, max(2, systems - c.rng.randint(1, 4)), False)
        if c.cond.surgical:
            d.line(c.text(c.pick(("Incision: clean, dry and intact{| without erythema}.",
                                  "Wound: c/d/i, no {erythema|drainage|erythema or drainage}.",
                                  "{Incisions|Incision} healing well without signs of infection."))))


def _lab_time(c: Case) -> str:
    """A draw time as MIMIC prints it ("06:10AM"), mostly from the early-morning draw."""
    hour = c.rng.choice((4, 5, 5, 6, 6, 6, 7, 7, 8, 9, 11, 13, 16, 19, 22, 23))
    return f"{(hour - 1) % 12 + 1:02d}:{c.rng.randint(0, 59):02d}{'AM' if hour < 12 else 'PM'}"


def _lab_line(c: Case, day: dt.date, names: Sequence[str], admission: bool, dated: bool = True) -> list:
    """One MIMIC-style lab line: date, time, specimen and NAME-value pairs. Admission values are the case's own;
    later days drift back within the reference range."""
    ranges = lab_ranges(c.cond)
    values = []
    for n in names:
        if admission and n in c.labs:
            values.append(f"{n}-{c.labs[n]}")
        elif admission and n in ranges:
            values.append(f"{n}-{lab_value(c.rng, n, *ranges[n])}")
        else:
            values.append(f"{n}-{lab_value(c.rng, n)}")
    if not dated:  # a line under a dated one, as a results viewer prints a panel
        return ["  " + " ".join(values)]
    return [(lab_date(c, day), "DATE"), f" {_lab_time(c)} BLOOD " + " ".join(values)]


_MICRO = ("BLOOD CULTURE x2: No growth to date.", "URINE CULTURE (Final): NO GROWTH.",
          "MRSA SCREEN: No MRSA isolated.", "C. difficile PCR: Negative.", "SARS-CoV-2 PCR: Negative.")
_EKG = ("EKG: Sinus rhythm at {60-95}, normal axis, no acute ST changes.", "ECG: NSR, normal intervals.",
        "EKG: Sinus tachycardia at {101-118}, no ischemic changes.")


def results(d: Doc, c: Case) -> None:
    p, rng, cond = c.person, c.rng, c.cond
    specific = [n for n in lab_names(cond) if n not in BASIC]
    if not c.full:
        d.line((lab_date(c, p.admit), "DATE"), f" {_lab_time(c)} "
               + " ".join(f"{n}-{c.labs[n]}" for n in (*BASIC[:2], *specific)))
        return
    x = c.detail
    if c.terse:
        d.line(*_lab_line(c, p.admit, specific or BASIC, True))
        return
    panels = (["cbc"] if x > 0.1 or not specific else []) + (["chem"] if x > 0.2 or c.chance(0.15) else []) + \
        [k for k in ("diff", "lft", "minerals", "coag") if c.chance(1.2 * x - 0.2)]
    d.line(c.pick(("ADMISSION LABS:", "Admission labs:", "LABS ON ADMISSION:", "PERTINENT LABS:")))
    # The first line of the draw carries its date; a note either repeats it on every line (MIMIC's printout) or not.
    repeat = c.chance(0.4)
    for i, k in enumerate(panels):
        d.line(*_lab_line(c, p.admit, PANELS[k], True, dated=i == 0 or repeat))
    if specific:
        d.line(*_lab_line(c, p.admit, specific, True, dated=not panels or repeat))
    interval = min(p.los - 1, round(x * x * min(p.los, 7) * rng.uniform(0.7, 1.3)))
    if interval > 0:
        d.add("\n")
        d.line(c.pick(("INTERVAL LABS:", "Trend:", "OTHER LABS:", "LABS DURING ADMISSION:")))
        for day in sorted(rng.sample(range(1, p.los), interval)):
            when = p.admit + dt.timedelta(days=day)
            d.line(*_lab_line(c, when, [*PANELS["cbc"][:3], *specific], False))
            if x > 0.8:
                d.line(*_lab_line(c, when, PANELS["chem"], False, dated=repeat))
    if "cultures" not in " ".join(c.course) and "grew" not in " ".join(c.course) and c.chance(0.7 * x):
        d.add("\n")
        d.line("MICROBIOLOGY:")
        for m in rng.sample(_MICRO, rng.randint(1, 3)):
            d.line((body_date(c, p.admit, WHOLE), "DATE"), f" {m}")
    if cond.imaging and c.chance(0.2 + 0.8 * x) or c.chance(0.3 * x):
        d.add("\n")
        d.line(c.pick(("IMAGING:", "Imaging:", "STUDIES:", "RADIOLOGY:")))
        if cond.imaging:
            accession = [" (accession ", people.code(c, "ID:IDNUM"), ")"] if c.chance(0.3) else []
            d.line((body_date(c, p.admit + dt.timedelta(days=min(p.los, rng.randint(0, 1))), WHOLE), "DATE"),
                   " " + c.imaging, *accession)
        if c.service != "CARDIOLOGY" and c.chance(0.5 * x + 0.1):
            d.line((body_date(c, p.admit, WHOLE), "DATE"), " " + c.text(c.pick(_EKG)))
    if c.chance(0.25 if c.service == "CARDIOLOGY" else 0.04):
        d.add("\n")
        d.line(c.pick(("DEVICE:", "Device interrogation:", "Implanted device:")))
        d.line(*people.device(c), c.pick((": normal function.", ", interrogated and functioning normally.",
                                          "; no events recorded.")))
    if c.chance(x):
        d.add("\n")
        d.line(c.pick(("DISCHARGE LABS:", "Discharge labs:", "LABS ON DISCHARGE:")))
        d.line(*_lab_line(c, p.discharge, PANELS["cbc"] if x > 0.5 else BASIC[:3], False))
        d.line(*_lab_line(c, p.discharge, PANELS["chem"] if x > 0.5 else BASIC[3:], False, dated=repeat))


def lab_table(d: Doc, c: Case) -> None:
    """Labs as a table: one row per test, one column per draw day (the days without a year, as tables print
    them), the reference range last."""
    p, rng = c.person, c.rng
    names = list(dict.fromkeys([*BASIC[:4], *lab_names(c.cond)]))[:4 if not c.full else 4 + round(6 * c.detail)]
    days = sorted({0, p.los, *rng.sample(range(p.los + 1), min(p.los + 1, 1 + round(2 * c.detail)))})
    days = days if c.full else days[:2]
    ranges = lab_ranges(c.cond)
    d.add(f"{'Test':<10}")
    for k in days:
        d.add("  ")
        d.phi(body_date(c, p.admit + dt.timedelta(days=k), ("M/D",)), "DATE")
    d.add("  Ref range\n")
    for n in names:
        first = c.labs.get(n) or lab_value(rng, n, *ranges.get(n, (None, None)))
        values = [first, *(lab_value(rng, n) for _ in days[1:])]
        lab = LABS[n]
        d.line(f"{n:<10}" + "".join(f"  {v:>5}" for v in values) + f"  {lab.lo:g}-{lab.hi:g}")
