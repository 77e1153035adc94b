"""The brief hospital course: the condition's course, complications, chronic issues, transitional issues."""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

from medgen.data.identity import doctor_name
from medgen.data.synthetic import people
from medgen.data.synthetic.case import Case, body_date, lab_names, phone, tolerated
from medgen.data.synthetic.clinical import BASIC, med
from medgen.data.synthetic.phrases import join, lower_first, upper_first, vary
from medgen.data.synthetic.sections.history import paragraph, pmh_words, trend
from medgen.data.synthetic.text import Doc

# --- course ------------------------------------------------------------------------------------------------

_COURSE_OPENERS = (
    "{title} {last} is {art} {age} year old {noun} with {history} who presented with {complaint}, {found to "
    "have|diagnosed with} {dx}.",
    "{title} {last} is {art} {age}-year-old {noun} with {history} admitted {with|for} {dx}.",
    "{age} yo {letter} with {history} admitted to the {team} service {for|with} {dx}.",
    "This is {art} {age} year old {noun} with {history} who was admitted for {dx}.",
    "In brief, {title} {last} is {art} {age} year old {noun} with {history} who presented with {complaint} and was "
    "{found to have|diagnosed with} {dx}.",
    "{Summary|Brief summary}: {age}-year-old {noun} with {history}, {admitted|hospitalized} for {dx}.",
)
_CONNECT = ("", "", "", "Subsequently, ", "Over the following {days|24 hours|48 hours}, ", "Thereafter, ",
            "After that, ", "Then ", "By hospital day {day}, ", "On hospital day {day}, ", "Later, ")
_PROGRESS_MEDICAL = (
    "Physical therapy {evaluated|saw} {pr} and recommended "
    "{pt}.", "Diet was advanced as tolerated{| without difficulty}.",
    "IV fluids were {stopped|discontinued} once {pr} was taking adequate oral intake.",
    "Pain was {controlled|well controlled|adequately controlled} on {oral medications|an oral regimen|acetaminophen "
    "and oxycodone}.",
    "Telemetry {showed no events|was unremarkable}.", "Telemetry was discontinued on hospital day {day}.",
    "Home medications were resumed as appropriate.", "Case management {assisted|helped} with discharge planning.",
    "{Pr} was ambulating the halls {independently|with a walker|with assistance} by hospital day {day}.",
    "Nutrition was consulted and recommended {oral supplements|a liberalized diet|calorie counts}.",
    "Labs were {trended|followed} daily and {remained stable|improved steadily}.",
    "Social work met with {pr} and {pos} {family|daughter|son|spouse} to {discuss|review} {discharge planning|home "
    "supports|coping}.",
    "Occupational therapy recommended {pt}.", "{Lines were|The peripheral IV was} removed prior to discharge.",
    "Oxygen saturation remained {above 92%|in the mid-90s} on room air.",
    "{Pr} was {afebrile|hemodynamically stable} for more than {24|48} hours prior to discharge.",
    "Bowel regimen was {started|continued} {given opioid use|to prevent constipation}.",
    "{Pr} {slept|rested} poorly the first night, {which improved|improving} with {melatonin|a quieter room}.",
    "A {bedside swallow|speech and swallow} evaluation {was passed|recommended a regular diet}.",
    "Orthostatic vital signs were {negative|checked and normal} before discharge.",
    "{Pr} was seen by {the|our} pharmacist for medication teaching.",
    "Fall precautions were maintained throughout the {admission|stay}.",
    "Blood glucose was {monitored|checked} before meals and at bedtime.",
    "Weight was {wt} kg on admission and {dwt} kg at discharge.",
    "{Pr} was {afebrile|without fever} with a Tmax of {98.6-100.3} over the last 24 hours.",
    "Heart rate ranged from the {60-70}s to {80-99}s on telemetry.",
    "Blood pressures ranged {105-125}-{130-165} systolic.",
    "{Pr} ambulated {150-600} feet with physical therapy{| without desaturation}.",
    "Intake was {800-2200} mL and output {900-2600} mL over the final day.",
    "Oral intake improved to about {50-100}% of meals.",
    "{Pr} required {1-4} doses of {oxycodone|hydromorphone|tramadol} in the 24 hours before discharge.",
)
_PROGRESS_SURGICAL = (
    "Postoperatively, {pr} was transferred to the PACU and then to the {floor|surgical floor|SICU} in stable "
    "condition.",
    "The Foley catheter was removed on postoperative day {1-2} and {pr} voided without difficulty.",
    "Pain was initially controlled with {a PCA|IV hydromorphone|an epidural} and then transitioned to oral pain "
    "medication.",
    "Diet was advanced from {sips|clear liquids} to a regular diet, which {pr} tolerated.",
    "{Pr} was passing flatus by postoperative day {2-3}.",
    "{Pr} had a bowel movement on postoperative day {3-4}.",
    "{Pr} received {subcutaneous heparin|enoxaparin} for DVT prophylaxis and used incentive spirometry.",
    "Physical therapy cleared {pr} for {pt}.", "The {incision|wound} was clean, dry and intact at discharge.",
    "{Drains were|The JP drain was} removed prior to discharge.",
    "{Pr} was ambulating {independently|with assistance} by postoperative day {1-3}.",
    "{Pr} was seen by the {acute pain service|pain service} for {multimodal analgesia|optimization of pain control}.",
    "Perioperative antibiotics were {continued for 24 hours|discontinued after 24 hours}.",
    "Hemoglobin was checked on postoperative day {1-2} and was stable.",
    "{Pr} was {afebrile|hemodynamically stable} throughout the postoperative course.",
    "Staples were left in place for removal at follow-up.",
    "Drain output was {20-180} mL on postoperative day {1-2} and {5-40} mL before removal.",
    "Estimated blood loss was {50-600} mL{| and no transfusion was needed}.",
    "Weight was {dwt} kg at discharge.",
    "{Pr} ambulated {100-500} feet on postoperative day {1-2}.",
    "Tmax was {98.6-100.4} on postoperative day {1-3}, without other signs of infection.",
    "Intake and output were {900-2400}/{700-2600} mL on the day before discharge.",
)
_PT = ("discharge home", "home with outpatient PT", "home with services", "short-term rehab", "home with a walker",
       "acute rehab")
_SYSTEMS = (
    ("Neuro", ("Pain was {well|adequately} controlled on {an oral regimen|oral medications}.",
               "Pain was managed with {a PCA|IV medications}, then oral medications.",
               "{Pr} remained neurologically intact.")),
    ("CV", ("Vital signs were {routinely|closely} monitored and {pr} remained hemodynamically stable.",
            "Hemodynamically stable {throughout|postoperatively}.")),
    ("Pulmonary", ("{Good pulmonary toilet|Pulmonary toilet}, early ambulation and incentive spirometry were "
                   "encouraged.",
                   "{Pr} remained stable from a pulmonary standpoint.")),
    ("GI/GU/FEN", ("Diet was advanced as tolerated; intake and output were {monitored|closely monitored}.",
                   "The Foley was removed and {pr} voided spontaneously. Electrolytes were repleted as needed.")),
    ("ID", ("Vital signs were monitored for signs of infection; {pr} remained afebrile.",
            "Perioperative antibiotics were given{| for 24 hours}.")),
    ("Heme", ("Hemoglobin remained stable.", "{Blood counts|The CBC} {were|was} checked daily and remained stable.")),
    ("Prophylaxis", ("{Subcutaneous heparin|SC heparin} and {venodyne boots|SCDs} were used for DVT prophylaxis.",
                     "{Pr} received enoxaparin and was encouraged to ambulate.")),
)
_CHRONIC_GENERIC = ("Stable; home {meds} continued.", "Continued home {meds}.", "No active issues; continued {meds}.",
                    "At baseline, {continued on|maintained on} {meds}.", "Stable throughout the {admission|stay}.",
                    "{Stable|Unchanged}. {Continued|Resumed} {meds}.", "{No changes made|Home regimen unchanged}.")
_CHRONIC_MORE = ("No changes were made to {pos} regimen.", "{Will need|Needs} outpatient follow-up with {pos} PCP.",
                 "{Pr} {tolerated|remained on} {pos} home regimen without "
                 "issue.", "Monitored clinically{| and with daily labs}.",
                 "{Pr} was counseled on adherence.", "Consider {titration|adjustment} as an outpatient.")
_CHRONIC_HEADERS = (("ACUTE ISSUES:", "CHRONIC ISSUES:"), ("ACTIVE ISSUES:", "CHRONIC ISSUES:"),
                    ("#ACUTE", "#CHRONIC"), ("Acute problems:", "Chronic problems:"),
                    ("ACUTE/ACTIVE PROBLEMS:", "CHRONIC/STABLE PROBLEMS:"))
_CONSULTS = (
    "{Palliative care|The palliative care team} met with {pr} and {pos} family to {discuss|clarify} goals of care.",
    "{Geriatrics|The geriatrics team} was consulted for {delirium prevention|medication review|falls risk}.",
    "{Pharmacy|The pharmacist} reviewed {pos} medications for interactions.",
    "{Pr} was seen by {wound care|wound care nursing} for {skin checks|a stage 1 heel pressure area}.",
    "{Physical therapy|PT} worked with {pr} daily on {gait training|transfers|stair climbing}.",
    "{Dietitian|Nutrition} counseling was provided on {a heart-healthy diet|carbohydrate counting|a low-sodium diet}.",
    "{Smoking cessation|Tobacco cessation} counseling was {provided|offered} and {pr} {accepted|declined} a nicotine "
    "patch.",
    "{Pr} was screened for depression{| with the PHQ-9}, which was {negative|mildly positive}.",
)
_CONSULT_TEAMS = ("Cardiology", "Nephrology", "Infectious Disease", "Endocrinology", "Gastroenterology",
                  "Pulmonary", "Hematology", "Neurology", "Physical Medicine and Rehabilitation", "Psychiatry",
                  "Geriatrics", "Palliative Care", "Nutrition", "Pharmacy")
_NAMED_CONSULTS = (
    "{team} (Dr. {doc}) was consulted and recommended {advice}.",
    "{Pr} was seen by {team}, Dr. {doc}, who {recommended|suggested|advised} {advice}.",
    "Case discussed with Dr. {doc} of {team}; {plan was to continue current management|no changes were recommended}.",
    "Per {team} (Dr. {doc}), {advice} {was recommended|is advised}.",
)
_ADVICE = ("outpatient follow-up", "no further inpatient workup", "a repeat echocardiogram in 3 months",
           "renal dosing of medications", "a short course of steroids", "continuing the current regimen",
           "checking a vitamin D level", "a medication taper", "holding nephrotoxins", "an outpatient MRI",
           "repeat labs in 1 week", "starting a statin")
_TRANSITIONAL = (
    "[ ] {Repeat|Check} {CBC|CBC and chemistry panel|BMP} {at follow-up|within 1 week|in 3-5 days}.",
    "[ ] Follow up {pending|final} {pathology|cultures|imaging reads}.",
    "[ ] Titrate {medications|antihypertensives} as blood pressure "
    "allows.", "[ ] Consider outpatient {sleep study|PFTs|echocardiogram}.",
    "[ ] Repeat imaging in {4-8} weeks.", "[ ] Ensure follow-up with {pos} primary care physician.",
    "[ ] Monitor {weight and volume status|electrolytes|renal function}.", "[ ] Check lipid panel in {6|8|12} weeks.",
    "- Medication reconciliation performed; new medications are listed below.",
    "- Follow up final culture data.", "- Outpatient physical therapy referral placed.",
    "- {Started|New}: {see discharge medications|as listed below}.",
    "- {Pr} will need {a|an outpatient} {colonoscopy|age-appropriate cancer screening|vaccination update}.",
)
_CODE_STATUS = ("Full code (confirmed)", "Full code (presumed)", "DNR/DNI", "Full code", "DNR, OK to intubate")


def course(d: Doc, c: Case) -> None:
    cond, x = c.cond, c.detail
    if not c.full:
        d.line(c.course[0])
        return
    dx = lower_first(cond.diagnosis)
    if c.chance(0.3 + 0.6 * x):
        history = join(pmh_words(c)) if c.pmh else "no significant past medical history"
        d.line(*c.fill(c.pick(_COURSE_OPENERS), history=history, dx=dx, letter=c.words.letter,
                       complaint=lower_first(c.complaint), team=c.service.lower()))
    problem = c.chance(0.5)  # problem-based ("# Diagnosis: ...") rather than one narrative
    headers = c.pick(_CHRONIC_HEADERS)
    if problem:
        d.add("\n")
        if c.chance(0.5):
            d.line(headers[0])
        d.add(f"# {cond.diagnosis}: " if c.chance(0.5) else f"#{dx.upper() if c.abbrev else dx}\n")
    _acute_course(d, c, systems=cond.surgical and not problem and c.chance(0.5))
    for comp in c.complications:
        d.add("\n")
        if problem:
            d.add(f"# {upper_first(comp.name)}: ")
        d.line(*c.fill(vary(c, comp.course)))
    held = [m for m in c.home if med(m).name in cond.hold]
    for m in held:
        d.line(*c.fill("Home {drug} was {held|stopped} given {dx} and {is not restarted|was not resumed} at discharge; "
                       "{pos} {outpatient providers|PCP|outpatient team} will decide when to resume it.",
                       drug=med(m).name, dx=dx))
    if c.pmh and not c.terse:
        _chronic_course(d, c, headers[1] if problem else None)
    if c.chance(0.1 + 0.9 * x):
        _transitional(d, c, held)


def _acute_course(d: Doc, c: Case, systems: bool) -> None:
    """The condition's course, then what else happened: daily progress (more for a longer stay and a more
    detailed note), consultants and lab trends; for an operation sometimes by organ system (MIMIC's surgical
    notes)."""
    p, rng, x = c.person, c.rng, c.detail
    course = []
    for i, s in enumerate(c.course):
        if i and c.chance(0.4):  # MIMIC's "On ___, ..." with the date kept
            when = p.admit + dt.timedelta(days=min(p.los, i + rng.randint(0, 1)))
            course.append(["On ", (body_date(c, when), "DATE"), ", " + lower_first(s)])
            continue
        lead = c.text(c.pick(_CONNECT), day=str(rng.randint(2, max(2, p.los)))) if i else ""
        course.append([lead + (lower_first(s) if lead else s)])
    if not re.search(rf"\b{c.words.pr}\b", " ".join(c.course), re.IGNORECASE):
        # Every course says who it is about, as the pronoun check of the evaluate stage expects.
        course.append(c.fill("{Pr} {improved|did well|recovered well} and was {discharged|ready for discharge} "
                             "on hospital day {day}.", day=str(p.los + 1)))
    progress = _PROGRESS_SURGICAL if c.cond.surgical else _PROGRESS_MEDICAL
    n_progress = min(len(progress), round((1 + p.los / 2.5) * (0.1 + 2 * x * x) * rng.uniform(0.6, 1.4)))
    extra = [_dated(c, c.fill(vary(c, s), pt=c.pick(_PT), day=str(rng.randint(2, max(2, p.los)))), 0.4)
             for s in rng.sample(progress, n_progress)]
    extra += [c.fill(vary(c, s)) for s in rng.sample(_CONSULTS, round(6 * x * x * rng.random()))]
    for _ in range(round(4 * x * rng.random())):
        extra.append(c.fill(c.pick(_NAMED_CONSULTS), team=c.pick(_CONSULT_TEAMS),
                            doc=people.after_title(c, doctor_name(c.fake)), advice=c.pick(_ADVICE)))
    if c.chance(0.25):
        where = c.pick((people.room_ref(c), [*people.room_ref(c), " on ", people.department(c)],
                        [people.department(c)]))
        extra.append([*c.fill("{Pr} was {transferred|moved} to "), *where,
                      *c.fill(" on hospital day {day}{| for closer monitoring| as a bed became available}.",
                              day=str(rng.randint(1, max(1, p.los))))])
    extra = [s for s in extra if tolerated(c, s)]
    trended = rng.sample([*lab_names(c.cond), *BASIC], round(6 * x * rng.random()))
    if trended:
        extra.append([c.text("{Labs trended|Lab trends|Trend}: ") + "; ".join(trend(c, n) for n in trended) + "."])
    if systems:
        paragraph(d, course, c)
        for name, options in _SYSTEMS:
            line = c.fill(vary(c, c.pick(options)))
            if c.chance(0.5 + 0.5 * x) and tolerated(c, line):
                d.line(f"{name}: ", *line)
        if extra:
            paragraph(d, extra[:2 + round(4 * x)], c)
    else:
        paragraph(d, course + extra, c)
        if x > 0.5 and p.los >= 4 and c.chance(0.6):
            _by_day(d, c, progress)


def _chronic_course(d: Doc, c: Case, header: str | None) -> None:
    """The comorbidities: one line in a brief note, else one each (under `header` in a problem-based note)."""
    if c.chance(0.6 - 0.6 * c.detail):
        d.line(c.text("{Chronic medical issues|Chronic conditions|Other chronic issues} were {stable|at baseline}; "
                      "home medications were {continued|resumed} {unless noted|as listed below}."))
        return
    d.add("\n")
    if header:
        d.line(header)
    prose = header is None and c.chance(0.5)
    lines = []
    for h in c.pmh:
        own = {med(m).name for regimen in h.regimens for m in regimen}
        drugs = [med(m).drug.lower() for m in c.home if med(m).name in own]
        template = h.course if c.chance(0.6) else c.pick(_CHRONIC_GENERIC)
        if c.chance(c.detail ** 2):
            template += " " + c.pick(_CHRONIC_MORE)
        text = c.fill(vary(c, template), meds=join(drugs) if drugs else "home regimen")
        if prose:
            lines.append([f"{upper_first(h.name)}: ", *text])
        else:
            d.line(f"# {h.short if c.abbrev else upper_first(h.name)}: ", *text)
    if prose:
        paragraph(d, lines, c)


def _transitional(d: Doc, c: Case, held: list[str]) -> None:
    p, w = c.person, c.words
    d.add("\n")
    d.line(c.pick(("TRANSITIONAL ISSUES:", "Transitional issues:", "TRANSITIONAL ISSUES", "Issues for follow-up:")))
    d.line("- Follow up with Dr. ", (p.attending, "NAME:DOCTOR"), f" in {c.rng.randint(1, 4)} weeks.")
    for t in c.rng.sample(_TRANSITIONAL, c.rng.randint(1, 1 + round(6 * c.detail))):
        d.line(*c.fill(t))
    if c.chance(0.7):
        d.line(*c.fill("- {PCP|Primary care}: Dr. {doc}, {phone}{|; please send discharge summary}",
                       doc=people.after_title(c, doctor_name(c.fake)), phone=(phone(c), "CONTACT:PHONE")))
    if held:
        d.line(f"- Held: {', '.join(med(m).name for m in held)}; reassess at follow-up.")
    d.line(f"- Code status: {c.pick(_CODE_STATUS[2:] if p.age >= 85 else _CODE_STATUS)}")
    d.line(f"- Contact: {c.pick((w.spouse, 'daughter', 'son', 'sister', 'partner'))} ",
           (phone(c), "CONTACT:PHONE"))


def _dated(c: Case, pieces: list, p: float) -> list:
    """`pieces` (a sentence), with probability `p` opened by the day of the stay it happened on."""
    if not c.chance(p) or not isinstance(pieces[0], str):
        return pieces
    when = c.person.admit + dt.timedelta(days=c.rng.randint(1, max(1, c.person.los)))
    return [c.pick(("On ", "On ", "By ", "As of ")), (body_date(c, when), "DATE"), ", " + lower_first(pieces[0]),
            *pieces[1:]]


def _by_day(d: Doc, c: Case, progress: Sequence[str]) -> None:
    """A day-by-day account of a longer stay, one line a hospital day."""
    label = c.pick(("HD{n}", "HD #{n}", "Day {n}", "Hospital day {n}"))
    d.line(c.text("{Day-by-day course|Hospital course by day|Daily events}:"))
    r = c.rng
    for n, s in enumerate(r.sample(progress, min(c.person.los, 10, len(progress))), 1):
        vitals = (f"Tmax {r.uniform(98.0, 100.8):.1f}, HR {r.randint(58, 80)}-{r.randint(82, 110)}, "
                  f"SBP {r.randint(95, 120)}-{r.randint(122, 165)}. " if r.random() < 0.5 else "")
        event = c.fill(vary(c, s), pt=c.pick(_PT), day=str(n))
        d.line(f"{label.format(n=n)}: {vitals}", *(event if tolerated(c, event) else ["No events."]))


# --- medications -------------------------------------------------------------------------------------------
