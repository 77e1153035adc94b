"""Clinical content of the synthetic records: services, their conditions, labs, histories and stock phrases.

Data only; `medgen.records` turns it into text. A `Condition` is one admission reason within a service,
with everything the record needs to stay clinically consistent (diagnosis, ICD-10 code, procedure,
medications, labs, exam and course, and the ages and sex it applies to).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """One reason for admission. `course` is a template: {Pr}/{pr} for the pronoun, {LAB} for a lab value
    drawn for the record, so that the narrative quotes the same value as the results."""

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

# The panel most conditions' labs start with; what follows it is specific to the condition.
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
    """The conditions of `service` that a patient of `sex` can have."""
    return [c for c in SERVICES[service] if c.sex in (None, sex)]


def services_for(sex: str) -> list[str]:
    """The services with at least one condition for `sex`."""
    return [s for s in SERVICES if conditions_for(s, sex)]
