"""Synthetic PHI-bearing discharge records in the MIMIC-IV discharge-summary layout.

`records(n, seed, profile)` yields `Record`s: sex, service, text, and every PHI value inserted as a
character span with an i2b2-2014-style category. One consistent identity per record; the same seed
gives the same records.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Iterator

from faker import Faker

from medgen.constants import SEXES


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    category: str
    text: str


@dataclass
class Record:
    sex: str
    service: str
    text: str
    patient_id: str
    spans: list[Span] = field(default_factory=list)


@dataclass(frozen=True)
class Condition:
    complaint: str
    diagnosis: str
    icd10: str
    procedure: str
    meds: tuple[str, ...]
    labs: tuple[str, ...]
    exam: str
    course: str
    min_age: int = 18
    max_age: int = 90
    sex: str | None = None


# Lab panels: name -> (unit, low, high) for a plausible abnormal-leaning value range.
LABS = {
    "WBC": ("K/uL", 4.0, 15.5), "Hgb": ("g/dL", 8.5, 15.5), "Hct": ("%", 26.0, 46.0),
    "Plt": ("K/uL", 120, 420), "Na": ("mEq/L", 131, 145), "K": ("mEq/L", 3.3, 5.4),
    "Cl": ("mEq/L", 96, 108), "HCO3": ("mEq/L", 19, 29), "BUN": ("mg/dL", 8, 42),
    "Creat": ("mg/dL", 0.6, 2.1), "Glucose": ("mg/dL", 78, 260), "cTropnT": ("ng/mL", 0.02, 1.8),
    "CK-MB": ("ng/mL", 2, 48), "NTproBNP": ("pg/mL", 300, 9800), "INR": ("", 0.9, 2.8),
    "ALT": ("IU/L", 12, 160), "AST": ("IU/L", 14, 180), "Lipase": ("IU/L", 20, 900),
    "Lactate": ("mmol/L", 0.8, 4.2), "TSH": ("uIU/mL", 0.4, 6.5), "HbA1c": ("%", 5.2, 10.4),
    "PSA": ("ng/mL", 0.5, 14.0), "hCG": ("mIU/mL", 0, 5), "Ammonia": ("umol/L", 11, 95),
}

BASIC = ("WBC", "Hgb", "Plt", "Na", "K", "Creat", "Glucose")

SERVICES: dict[str, tuple[Condition, ...]] = {
    "MEDICINE": (
        Condition("Fever and productive cough", "Community-acquired pneumonia", "J18.9", "None",
                  ("Ceftriaxone 1 g IV daily", "Azithromycin 500 mg PO daily", "Acetaminophen 650 mg PO Q6H PRN fever"),
                  BASIC + ("Lactate",), "Crackles at the right lung base.",
                  "Chest x-ray showed a right lower lobe consolidation. {Pr} was treated with ceftriaxone and azithromycin, defervesced within 48 hours and was transitioned to oral antibiotics."),
        Condition("Abdominal pain and vomiting", "Acute pancreatitis", "K85.90", "None",
                  ("Oxycodone 5 mg PO Q4H PRN pain", "Ondansetron 4 mg IV Q8H PRN nausea", "Pantoprazole 40 mg PO daily"),
                  BASIC + ("Lipase", "ALT", "AST"), "Epigastric tenderness without rebound.",
                  "Lipase was markedly elevated. {Pr} was managed with bowel rest, aggressive IV fluids and analgesia, and diet was advanced as tolerated."),
    ),
    "CARDIOLOGY": (
        Condition("Chest pain", "Non-ST elevation myocardial infarction", "I21.4", "Cardiac catheterization with drug-eluting stent to the LAD",
                  ("Aspirin 81 mg PO daily", "Atorvastatin 80 mg PO daily", "Metoprolol succinate 50 mg PO daily", "Clopidogrel 75 mg PO daily"),
                  BASIC + ("cTropnT", "CK-MB"), "Regular rate and rhythm, no murmurs.",
                  "Troponins peaked at {cTropnT} ng/mL. {Pr} was started on a heparin drip and underwent cardiac catheterization with a drug-eluting stent to the LAD. Aspirin, high-intensity statin and a beta-blocker were continued."),
        Condition("Dyspnea and leg swelling", "Acute on chronic systolic heart failure", "I50.23", "Transthoracic echocardiogram",
                  ("Furosemide 40 mg PO daily", "Metoprolol succinate 25 mg PO daily", "Lisinopril 10 mg PO daily", "Spironolactone 25 mg PO daily"),
                  BASIC + ("NTproBNP",), "JVP elevated to 12 cm, 2+ pitting edema bilaterally.",
                  "NT-proBNP was {NTproBNP} pg/mL. {Pr} was diuresed with IV furosemide with net negative 4 liters and transitioned to oral diuretics. Echocardiogram showed an ejection fraction of 30%."),
    ),
    "CARDIOTHORACIC": (
        Condition("Exertional angina", "Three-vessel coronary artery disease", "I25.10", "Coronary artery bypass grafting x3",
                  ("Aspirin 81 mg PO daily", "Atorvastatin 80 mg PO daily", "Metoprolol tartrate 25 mg PO BID", "Oxycodone 5 mg PO Q4H PRN pain"),
                  BASIC + ("INR",), "Sternal incision clean, dry and intact.",
                  "{Pr} underwent uncomplicated CABG x3. Chest tubes and pacing wires were removed on postoperative day 3, and {pr} ambulated with physical therapy."),
    ),
    "NEUROLOGY": (
        Condition("Left-sided weakness", "Acute ischemic stroke, right MCA territory", "I63.511", "MRI of the brain",
                  ("Aspirin 81 mg PO daily", "Atorvastatin 80 mg PO daily", "Lisinopril 5 mg PO daily"),
                  BASIC + ("HbA1c",), "Left facial droop, left arm drift, NIHSS 4.",
                  "MRI confirmed a right MCA territory infarct. {Pr} was not a thrombolysis candidate given time from onset. Stroke workup was completed and secondary prevention started."),
        Condition("Witnessed seizure", "Breakthrough seizure", "G40.909", "Electroencephalogram",
                  ("Levetiracetam 1000 mg PO BID", "Lorazepam 1 mg IV PRN seizure"),
                  BASIC, "Alert and oriented, no focal deficits.",
                  "EEG showed no ongoing seizures. Levetiracetam was uptitrated and {pr} remained seizure free for 48 hours before discharge."),
    ),
    "NEUROSURGERY": (
        Condition("Headache after fall", "Subdural hematoma", "S06.5X0A", "Left burr hole evacuation of subdural hematoma",
                  ("Levetiracetam 500 mg PO BID", "Acetaminophen 650 mg PO Q6H PRN pain", "Senna 8.6 mg PO BID"),
                  BASIC + ("INR",), "Incision clean, pupils equal and reactive.",
                  "Head CT showed a left subdural hematoma with midline shift. {Pr} underwent burr hole evacuation; postoperative CT showed good decompression."),
    ),
    "SURGERY": (
        Condition("Right lower quadrant pain", "Acute appendicitis", "K35.80", "Laparoscopic appendectomy",
                  ("Oxycodone 5 mg PO Q4H PRN pain", "Acetaminophen 1000 mg PO Q8H", "Docusate 100 mg PO BID"),
                  BASIC, "Tenderness at McBurney's point.",
                  "CT showed a dilated appendix with periappendiceal stranding. {Pr} underwent an uncomplicated laparoscopic appendectomy and tolerated a regular diet on postoperative day 1."),
        Condition("Right upper quadrant pain", "Acute cholecystitis", "K81.0", "Laparoscopic cholecystectomy",
                  ("Oxycodone 5 mg PO Q4H PRN pain", "Acetaminophen 1000 mg PO Q8H"),
                  BASIC + ("ALT", "AST", "Lipase"), "Positive Murphy's sign.",
                  "Ultrasound showed gallbladder wall thickening and pericholecystic fluid. {Pr} underwent laparoscopic cholecystectomy without complication."),
    ),
    "ORTHOPAEDICS": (
        Condition("Left hip pain after fall", "Left femoral neck fracture", "S72.002A", "Left hip hemiarthroplasty",
                  ("Enoxaparin 40 mg SC daily", "Oxycodone 5 mg PO Q4H PRN pain", "Acetaminophen 1000 mg PO Q8H"),
                  BASIC, "Left leg shortened and externally rotated.",
                  "{Pr} underwent left hip hemiarthroplasty. Weight bearing as tolerated with physical therapy; DVT prophylaxis for four weeks.",
                  min_age=60),
        Condition("Right knee pain", "Primary osteoarthritis of the right knee", "M17.11", "Right total knee arthroplasty",
                  ("Aspirin 325 mg PO BID", "Oxycodone 5 mg PO Q4H PRN pain", "Senna 8.6 mg PO BID"),
                  BASIC, "Incision clean, knee flexion to 90 degrees.",
                  "{Pr} underwent an elective right total knee arthroplasty and progressed well with physical therapy.",
                  min_age=45),
    ),
    "OBSTETRICS/GYNECOLOGY": (
        Condition("Contractions at term", "Spontaneous vaginal delivery", "O80", "Spontaneous vaginal delivery",
                  ("Ibuprofen 600 mg PO Q6H PRN pain", "Prenatal vitamin 1 tab PO daily", "Docusate 100 mg PO BID"),
                  ("WBC", "Hgb", "Plt"), "Fundus firm, lochia appropriate.",
                  "{Pr} had an uncomplicated spontaneous vaginal delivery of a healthy infant. Postpartum course was unremarkable.",
                  min_age=18, max_age=44, sex="Female"),
        Condition("Pelvic pain", "Ovarian torsion", "N83.51", "Laparoscopic detorsion of the right ovary",
                  ("Ibuprofen 600 mg PO Q6H PRN pain", "Oxycodone 5 mg PO Q4H PRN pain"),
                  ("WBC", "Hgb", "hCG"), "Right adnexal tenderness.",
                  "Pelvic ultrasound showed absent flow to the right ovary. {Pr} underwent laparoscopic detorsion with preservation of the ovary.",
                  min_age=18, max_age=50, sex="Female"),
    ),
    "PSYCHIATRY": (
        Condition("Suicidal ideation", "Major depressive disorder, recurrent, severe", "F33.2", "None",
                  ("Sertraline 100 mg PO daily", "Trazodone 50 mg PO QHS PRN insomnia"),
                  BASIC + ("TSH",), "Depressed mood, constricted affect, no psychosis.",
                  "{Pr} was admitted on a voluntary basis. Sertraline was titrated, {pr} engaged in group and individual therapy, and denied suicidal ideation for several days before discharge."),
        Condition("Agitation and paranoia", "Bipolar I disorder, current episode manic", "F31.2", "None",
                  ("Lithium 600 mg PO BID", "Olanzapine 10 mg PO QHS"),
                  BASIC + ("TSH",), "Pressured speech, grandiose, poor insight.",
                  "{Pr} was started on lithium with therapeutic levels and olanzapine. Mood stabilized and sleep normalized over the admission."),
    ),
    "UROLOGY": (
        Condition("Flank pain and hematuria", "Obstructing right ureteral stone", "N20.1", "Cystoscopy with right ureteral stent placement",
                  ("Tamsulosin 0.4 mg PO daily", "Oxycodone 5 mg PO Q4H PRN pain", "Ciprofloxacin 500 mg PO BID"),
                  BASIC, "Right costovertebral angle tenderness.",
                  "CT showed a 7 mm obstructing right ureteral stone with hydronephrosis. {Pr} underwent cystoscopy and right ureteral stent placement."),
        Condition("Urinary retention", "Benign prostatic hyperplasia with retention", "N40.1", "Transurethral resection of the prostate",
                  ("Tamsulosin 0.4 mg PO daily", "Finasteride 5 mg PO daily"),
                  BASIC + ("PSA",), "Enlarged smooth prostate.",
                  "{Pr} underwent TURP and passed a voiding trial on postoperative day 2.",
                  min_age=50, sex="Male"),
    ),
    "ONCOLOGY": (
        Condition("Fever after chemotherapy", "Neutropenic fever", "D70.1", "None",
                  ("Cefepime 2 g IV Q8H", "Filgrastim 480 mcg SC daily", "Ondansetron 8 mg PO Q8H PRN nausea"),
                  BASIC + ("Lactate",), "Port site clean, no mucositis.",
                  "{Pr} was started on cefepime. Cultures remained negative, counts recovered with filgrastim and {pr} was afebrile for 48 hours."),
    ),
    "VASCULAR": (
        Condition("Rest pain in the right foot", "Peripheral arterial disease with rest pain", "I70.221", "Right femoral-popliteal bypass",
                  ("Aspirin 81 mg PO daily", "Clopidogrel 75 mg PO daily", "Atorvastatin 80 mg PO daily"),
                  BASIC + ("INR",), "Diminished right dorsalis pedis pulse.",
                  "{Pr} underwent right femoral-popliteal bypass with a palpable graft pulse postoperatively.",
                  min_age=50),
    ),
    "GASTROENTEROLOGY": (
        Condition("Black stools", "Upper gastrointestinal bleed from duodenal ulcer", "K26.4", "Esophagogastroduodenoscopy with clip placement",
                  ("Pantoprazole 40 mg PO BID", "Sucralfate 1 g PO QID"),
                  BASIC + ("INR",), "Melena on rectal exam.",
                  "EGD showed a duodenal ulcer with a visible vessel, treated with clips. Hemoglobin remained stable after one unit of packed red cells."),
    ),
}

# Past history -> the home medication that goes with it.
HISTORY = {
    "hypertension": "Lisinopril 10 mg PO daily",
    "hyperlipidemia": "Simvastatin 20 mg PO QHS",
    "type 2 diabetes mellitus": "Metformin 500 mg PO BID",
    "GERD": "Omeprazole 20 mg PO daily",
    "hypothyroidism": "Levothyroxine 50 mcg PO daily",
    "chronic kidney disease stage 3": "Calcitriol 0.25 mcg PO daily",
    "obstructive sleep apnea": "CPAP at night",
    "asthma": "Albuterol inhaler 2 puffs Q4H PRN wheeze",
    "atrial fibrillation": "Apixaban 5 mg PO BID",
    "osteoarthritis": "Acetaminophen 500 mg PO Q6H PRN pain",
    "anxiety": "Sertraline 50 mg PO daily",
    "COPD": "Tiotropium 18 mcg inhaled daily",
}
ALLERGIES = ("No Known Allergies / Adverse Drug Reactions", "Penicillins", "Sulfa (Sulfonamide Antibiotics)",
             "Codeine", "Iodine", "Lisinopril")
DISPOSITIONS = ("Home", "Home With Service", "Extended Care")
SOCIAL = ("Lives with {rel} in {city}. Former smoker, quit 10 years ago. Drinks alcohol socially.",
          "Lives alone in {city}. Never smoker. No alcohol or illicit drug use.",
          "Lives with {rel} in {city}. Works as a {job}. Denies tobacco use.")
IMAGING = {
    "CARDIOLOGY": "TTE: Mild left ventricular hypertrophy. Regional wall motion abnormality of the anterior wall.",
    "CARDIOTHORACIC": "CXR: Post-sternotomy changes. Small bilateral pleural effusions.",
    "NEUROLOGY": "CT head: No hemorrhage. MRI brain: Restricted diffusion as described.",
    "NEUROSURGERY": "CT head: Postoperative changes with decreased subdural collection.",
    "SURGERY": "CT abdomen/pelvis: Findings as described in the hospital course.",
    "ORTHOPAEDICS": "X-ray: Hardware in good position without complication.",
    "UROLOGY": "CT abdomen/pelvis without contrast: Findings as described.",
    "VASCULAR": "Arterial duplex: Patent graft with triphasic flow.",
}
ROS = ("Denies fevers, chills, night sweats. Denies headache, vision changes. Denies chest pain or palpitations "
       "unless noted above. Denies cough or shortness of breath unless noted above. Denies nausea, vomiting, "
       "diarrhea, constipation. Denies dysuria or hematuria. Denies rashes. All other systems reviewed and negative.")
EXAM_SYSTEMS = (
    "General: Alert, oriented x3, in no acute distress.",
    "HEENT: Normocephalic, atraumatic. Sclera anicteric. Moist mucous membranes, oropharynx clear.",
    "Neck: Supple, JVP not elevated, no lymphadenopathy.",
    "Lungs: Clear to auscultation bilaterally without wheezes, rales or rhonchi.",
    "CV: Regular rate and rhythm, normal S1 and S2, no murmurs, rubs or gallops.",
    "Abdomen: Soft, non-tender, non-distended, bowel sounds present, no organomegaly.",
    "Extremities: Warm, well perfused, 2+ pulses, no clubbing, cyanosis or edema.",
    "Neuro: CN II-XII intact, strength 5/5 throughout, sensation grossly intact, gait deferred.",
    "Skin: No rashes or lesions.",
)
WARNINGS = ("Please call your doctor or return to the emergency department if you experience fevers above 101.5F, "
            "worsening pain, chest pain, shortness of breath, new weakness or numbness, bleeding, inability to "
            "tolerate food or medications, or any other symptom that concerns you.")
FAMILY = ("Mother with hypertension. Father with coronary artery disease.",
          "Father with type 2 diabetes. No family history of cancer.",
          "Non-contributory.")


def conditions_for(service: str, sex: str) -> list[Condition]:
    return [c for c in SERVICES[service] if c.sex in (None, sex)]


def services_for(sex: str) -> list[str]:
    return [s for s in SERVICES if conditions_for(s, sex)]


class _Doc:
    """Text built left to right, recording the span of every PHI value as it is inserted."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def phi(self, value: str, category: str) -> None:
        self.spans.append(Span(self.length, self.length + len(value), category, value))
        self.add(value)

    def line(self, *pieces: tuple[str, str | None] | str) -> None:
        for p in pieces:
            if isinstance(p, tuple):
                self.phi(p[0], p[1]) if p[1] else self.add(p[0])
            else:
                self.add(p)
        self.add("\n")

    def heading(self, name: str) -> None:
        self.add(f" \n{name}:\n")

    def text(self) -> str:
        return "".join(self.parts)


def _fmt_date(d: dt.date) -> str:
    return d.strftime("%m/%d/%Y")


def _lab_value(rng: random.Random, name: str) -> str:
    unit, lo, hi = LABS[name]
    v = rng.uniform(lo, hi)
    return f"{v:.0f}" if hi >= 100 else f"{v:.1f}" if hi >= 10 else f"{v:.2f}"


def build_record(fake: Faker, rng: random.Random, profile: str, sex: str | None = None,
                 service: str | None = None) -> Record:
    """One record with one identity; `compact` keeps every heading but one short line under each."""
    sex = sex or rng.choice(SEXES)
    service = service or rng.choice(services_for(sex))
    cond = rng.choice(conditions_for(service, sex))
    full = profile == "full"

    first = fake.first_name_male() if sex == "Male" else fake.first_name_female()
    last = fake.last_name()
    title, pr, obj, pos, noun = (("Mr.", "he", "him", "his", "man") if sex == "Male"
                                 else ("Ms.", "she", "her", "her", "woman"))
    age = rng.randint(cond.min_age, cond.max_age)
    admit = fake.date_between(dt.date(2015, 1, 1), dt.date(2025, 12, 31))
    los = rng.randint(1, 9 if full else 6)
    discharge = admit + dt.timedelta(days=los)
    dob = admit - dt.timedelta(days=age * 365 + rng.randint(0, 364))
    mrn = str(rng.randint(1_000_000, 9_999_999))
    attending = f"{fake.first_name()} {fake.last_name()}"
    hospital = f"{fake.last_name()} {rng.choice(('Memorial Hospital', 'Medical Center', 'General Hospital'))}"
    city = fake.city()
    phone = fake.numerify("(###) ###-####")
    pmh = rng.sample(sorted(HISTORY), k=rng.randint(1, 4 if full else 2))
    lab_names = cond.labs if full else cond.labs[:2] + cond.labs[len(BASIC):]
    labs = {n: _lab_value(rng, n) for n in cond.labs}
    pron = {"Pr": pr.capitalize(), "pr": pr, **labs}
    home = [HISTORY[h] for h in (pmh if full else pmh[:1])]
    times = ("06:10AM", "07:45AM", "11:20PM", "04:30PM")

    d = _Doc()
    d.line("Name: ", (f"{first} {last}", "NAME:PATIENT"), "    Unit No: ", (mrn, "ID:MRN"))
    d.add(" \n")
    d.line("Admission Date: ", (_fmt_date(admit), "DATE"), "    Discharge Date: ", (_fmt_date(discharge), "DATE"))
    d.add(" \n")
    d.line("Date of Birth: ", (_fmt_date(dob), "DATE"), "    Sex: ", sex[0])
    d.add(" \n")
    d.line(f"Service: {service}")
    d.heading("Allergies")
    d.line(rng.choice(ALLERGIES))
    d.heading("Attending")
    d.line(("Dr. " if not full else ""), (attending, "NAME:DOCTOR"), ", MD" if full else "")
    d.heading("Chief Complaint")
    d.line(cond.complaint)
    d.heading("Major Surgical or Invasive Procedure")
    d.line(cond.procedure)
    d.heading("History of Present Illness")
    d.line(f"{title} ", (last, "NAME:PATIENT"), " is a ", (str(age), "AGE"),
           f" year old {noun} with {', '.join(pmh)} who presented to ", (hospital, "LOCATION:HOSPITAL"),
           f" with {cond.complaint.lower()}.")
    if full:
        pcp = f"{fake.first_name()} {fake.last_name()}"
        d.line(f"{pr.capitalize()} reports symptoms began {rng.randint(1, 5)} days prior to admission and "
               f"progressively worsened. {pr.capitalize()} was seen by {pos} primary care physician, Dr. ",
               (pcp, "NAME:DOCTOR"), f", who referred {obj} to the emergency department. In the ED, initial "
               f"vitals were T 98.6 HR {rng.randint(60, 115)} BP {rng.randint(100, 165)}/{rng.randint(55, 95)} "
               f"RR {rng.randint(12, 24)} O2 sat {rng.randint(90, 100)}% on room air. Labs were notable for "
               + ", ".join(f"{n} {labs[n]}" for n in cond.labs[len(BASIC):] or cond.labs[:2])
               + f". {pr.capitalize()} was admitted to the {service.lower()} service for further management.")
        d.line(f"On arrival to the floor, {pr} reported {cond.complaint.lower()} that was improved from "
               f"presentation. Review of systems: {ROS}")
    d.heading("Past Medical History")
    for h in pmh:
        d.line(f"- {h}")
    d.heading("Social History")
    before, after = rng.choice(SOCIAL).format(rel=rng.choice(("spouse", "daughter", "son")), city="\0",
                                              job=fake.job().lower()).split("\0")
    d.line(before, (city, "LOCATION:CITY"), after if full else ".")
    d.heading("Family History")
    d.line(rng.choice(FAMILY))
    d.heading("Physical Exam")
    if full:
        d.line(f"Vitals: T 98.{rng.randint(0, 9)} HR {rng.randint(58, 110)} BP {rng.randint(100, 160)}/"
               f"{rng.randint(55, 95)} O2 {rng.randint(92, 100)}% RA")
        d.line("ADMISSION EXAM:")
        for line in EXAM_SYSTEMS:
            d.line(line)
    d.line(cond.exam)
    if full:
        d.line("DISCHARGE EXAM:")
        d.line(f"Vitals: T 98.{rng.randint(0, 9)} HR {rng.randint(58, 95)} BP {rng.randint(100, 140)}/"
               f"{rng.randint(55, 85)} O2 {rng.randint(94, 100)}% RA")
        for line in EXAM_SYSTEMS[:7]:
            d.line(line)
    d.heading("Pertinent Results")
    d.line((_fmt_date(admit), "DATE"), f" {rng.choice(times)} " + " ".join(f"{n}-{labs[n]}" for n in lab_names))
    if full:
        lab_day = admit + dt.timedelta(days=rng.randint(1, los))
        d.line((_fmt_date(lab_day), "DATE"), f" {rng.choice(times)} BLOOD "
               + " ".join(f"{n}-{_lab_value(rng, n)}" for n in cond.labs))
        d.line("DISCHARGE LABS:")
        d.line((_fmt_date(discharge), "DATE"), f" {rng.choice(times)} BLOOD "
               + " ".join(f"{n}-{_lab_value(rng, n)}" for n in BASIC))
        d.line("IMAGING:")
        d.line((_fmt_date(admit), "DATE"), " " + IMAGING.get(service, "CXR: No acute cardiopulmonary process."))
    d.heading("Brief Hospital Course")
    if full:
        d.line(f"{title} ", (last, "NAME:PATIENT"), " is a ", (str(age), "AGE"),
               f" year old {noun} admitted with {cond.diagnosis.lower()}.")
    course = cond.course.format(**pron)
    d.line(course if full else course.split(". ")[0].rstrip(".") + ".")
    if full:
        d.line(f"# {cond.diagnosis}: {pr.capitalize()} improved steadily and was discharged in stable condition "
               f"on hospital day {los + 1} with the medications listed below.")
        for h in pmh:
            d.line(f"# {h.capitalize()}: stable, home regimen ({HISTORY[h]}) continued without changes.")
        d.line("TRANSITIONAL ISSUES:")
        d.line(f"- Follow up with Dr. ", (attending, "NAME:DOCTOR"), " to review symptoms and repeat labs.")
        d.line("- Medication reconciliation performed; new medications are listed below.")
        d.line(f"- Code status: Full code. Contact: {rng.choice(('spouse', 'daughter', 'son'))}, ",
               (phone, "CONTACT:PHONE"))
    d.heading("Medications on Admission")
    for i, m in enumerate(home, 1):
        d.line(f"{i}. {m}")
    d.heading("Discharge Medications")
    for i, m in enumerate(list(cond.meds if full else cond.meds[:2]) + home, 1):
        d.line(f"{i}. {m}")
    d.heading("Discharge Disposition")
    d.line(rng.choice(DISPOSITIONS))
    d.heading("Discharge Diagnosis")
    d.line(f"{cond.diagnosis} ({cond.icd10})")
    d.heading("Discharge Condition")
    d.line("Mental Status: Clear and coherent. Level of Consciousness: Alert and interactive. "
           "Activity Status: Ambulatory - Independent." if full else "Stable, ambulatory.")
    d.heading("Discharge Instructions")
    if full:
        d.line(f"Dear {title} ", (last, "NAME:PATIENT"), ",")
        d.line("You were admitted to ", (hospital, "LOCATION:HOSPITAL"),
               f" for {cond.diagnosis.lower()}. While you were here, {cond.course.format(**pron).split('. ')[0].lower()}"
               ". Please take your medications as prescribed and call ", (phone, "CONTACT:PHONE"),
               " with any concerns.")
        d.line(WARNINGS)
        d.line("It was a pleasure taking care of you.")
        d.line("Your ", rng.choice(("Cardiology", "Medicine", "Surgery")), " Care Team")
    else:
        d.line(f"Dear {title} ", (last, "NAME:PATIENT"), f", call ", (phone, "CONTACT:PHONE"), " with concerns.")
    d.heading("Followup Instructions")
    fu = discharge + dt.timedelta(days=rng.randint(5, 21))
    d.line("Dr. ", (attending, "NAME:DOCTOR"), " on ", (_fmt_date(fu), "DATE"),
           f" at {rng.randint(8, 16)}:{rng.choice(('00', '15', '30', '45'))}")
    if full:
        d.line("Location: ", (fake.street_address(), "LOCATION:STREET"), ", ", (city, "LOCATION:CITY"), ", ",
               (fake.state_abbr(include_territories=False), "LOCATION:STATE"), " ", (fake.zipcode(), "LOCATION:ZIP"),
               "  Phone: ", (phone, "CONTACT:PHONE"))
        pcp = f"{fake.first_name()} {fake.last_name()}"
        d.line("Primary care: Dr. ", (pcp, "NAME:DOCTOR"), " on ",
               (_fmt_date(fu + dt.timedelta(days=rng.randint(1, 14))), "DATE"),
               f" at {rng.randint(8, 16)}:{rng.choice(('00', '30'))}  Phone: ",
               (fake.numerify("(###) ###-####"), "CONTACT:PHONE"))
    return Record(sex=sex, service=service, text=d.text().rstrip("\n"), patient_id=mrn, spans=d.spans)


def records(n: int, seed: int = 0, profile: str = "compact") -> Iterator[Record]:
    """Yield `n` records; the same (n, seed, profile) always gives the same records."""
    fake = Faker("en_US")
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        fake.seed_instance(seed * 1_000_003 + i)
        yield build_record(fake, rng, profile)
