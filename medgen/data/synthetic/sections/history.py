"""History of present illness, past medical and surgical history, social and family history."""

from __future__ import annotations

import datetime as dt

from medgen.data.phi import names, places
from medgen.data.synthetic import people
from medgen.data.synthetic.case import PAST, Case, body_date, lab_names, phone, tolerated
from medgen.data.synthetic.clinical import BASIC, LABS
from medgen.data.synthetic.phrases import article, days, join, lower_first
from medgen.data.synthetic.text import Doc

# --- history -----------------------------------------------------------------------------------------------

def pmh_words(c: Case) -> list[str]:
    return [h.short if c.abbrev else h.name for h in c.pmh]


_HPI_OPENERS = (
    "{title} {last} is {art} {age} year old {noun} with {history} who {presents|presented} to {hospital} with "
    "{complaint}.",
    "{title} {last} is {art} {age} year old {noun} with a {past medical history|history|PMH} {of|significant "
    "for|notable for} {history} who presented to {hospital} with {complaint}.",
    "{title} {last} is {art} {age}-year-old {noun} with {history} who was brought to the {hospital} {emergency "
    "department|ED} {with|for} {complaint}.",
    "{age}-year-old {noun} with {history} {presenting|who presents} to {hospital} with {complaint}.",
    "Pt is {art} {age} y/o {letter} w/ {history} who p/w {complaint} to {hospital}.",
    "This is {art} {age} yo {noun} with PMH {notable for|significant for|of} {history} who presented to {hospital} "
    "with {complaint}.",
    "{title} {last} is {art} {age} yo {noun} {with a history of|with|with PMH of} {history}, {referred|sent} to "
    "{hospital} {for|with} {complaint}.",
    "{age}{letter} with {history} who {presents|presented} to {hospital} with {complaint}.",
    "{name} is {art} {age} y.o. {noun} with {history} who {presents|presented} to {hospital} with {complaint}.",
    "{title} {name}, aged {age}, {presents|presented} to {hospital} with {complaint} on a background of {history}.",
)
_COMPACT_HPI = ("{title} {last} is {art} {age} year old {noun} with {history} who presented to {hospital} with "
                "{complaint}.")
_ONSET = (
    "{Pr} {reports|states|says} that {symptoms|this} began {n} prior to admission and "
    "{progressively|steadily|gradually} {worsened|got worse}.",
    "Symptoms started {n} ago and have been {getting worse|worsening|progressive}.",
    "{Pr} was in {pos} usual state of health until {n} before admission, when {pr} {noticed|developed|began having} "
    "{complaint}.",
    "Per {pos} {relative}, {pr} had been {more fatigued|less active|more withdrawn|eating less} for about {n} before "
    "presentation.",
    "Onset was {n} ago; {pr} tried {rest|ibuprofen|acetaminophen|over-the-counter medications} {without|with only "
    "minimal} relief.",
    "{Pr} describes {complaint} that started {n} prior, {intermittent at first and then constant|worse with "
    "activity|waxing and waning}.",
    "{Pr} {first|initially} noticed symptoms {n} ago {while at work|at home|after dinner|on waking|while walking}.",
    "{Pr} was {well|feeling well|at baseline} until {onset}, when {pr} {developed|noticed} {complaint}.",
    "Symptoms began on {onset} {in the morning|in the evening|overnight|around midday}.",
)
_ASSOCIATED = (
    "{Pr} also {endorses|reports|notes} {a} and {b}.", "Associated symptoms include {a} and {b}.",
    "{Pr} {notes|endorses|reports} {a}, but denies {c}.", "{Pr} denies {c} {or|and} {d}.", "+{a}, +{b}, no {c}.",
    "{Review of systems|ROS} is {notable|significant} for {a}; {pr} denies {c} and {d}.",
    "{Pr} {has had|reports} {a} {but|and} no {c} or {d}.",
)
_SYMPTOMS = ("fatigue", "poor appetite", "nausea", "chills", "night sweats", "lightheadedness", "poor sleep",
             "decreased oral intake", "generalized weakness", "myalgias", "a mild headache", "constipation",
             "dyspnea on exertion", "a 5 lb weight loss", "low-grade temperatures at home", "palpitations",
             "anorexia", "diaphoresis", "dizziness on standing", "malaise")
_NEGATIVES = ("fevers", "chest pain", "shortness of breath", "abdominal pain", "dysuria", "diarrhea",
              "melena", "hematochezia", "focal weakness", "vision changes", "cough", "leg swelling",
              "recent travel", "sick contacts", "rash", "syncope", "hemoptysis", "headache")
_REFERRAL = (
    "{Pr} was seen by {pos} primary care physician, Dr. {pcp}, who recommended that {pr} go to the {emergency "
    "department|ED}.",
    "{Pr} called {pos} {PCP|primary care doctor}, Dr. {pcp}, who {recommended|advised} evaluation in the {emergency "
    "department|ED}.",
    "{Pr} was initially evaluated at {other}, where {pr} was found to have {finding}, and was transferred for further "
    "{care|management}.",
    "{Pr} presented first to an urgent care clinic and was {referred|sent} to the ED by Dr. {pcp}.",
    "{Pr} {saw|was seen by} Dr. {pcp} in clinic {earlier that day|the day before|that morning} and was "
    "{referred|sent} in.",
)
_HPI_EXTRA = (
    "Of note, {pr} was {last|most recently} admitted to {other} in {year} for {prior}.",
    "{Pr} had a similar {episode|presentation} in {year}, {managed|treated} as an outpatient.",
    "{Pr} had a similar {episode|presentation} in {year} and was {treated|admitted} at {other}.",
    "{Outpatient|Recent} workup {in|during} {year} {included|was notable for} {workup}.",
    "{Pr} {reports|notes} good adherence to {pos} home medications and follows with {pos} PCP {regularly|every few "
    "months}.",
    "{Pr} {missed|ran out of} several doses of {pos} medications {last week|over the past month|recently}.",
    "{Pr} returned from {a trip|visiting family} {to|in} {country} {2-3} weeks {ago|before admission}.",
    "{Pr} was found {down|confused} at {place} by a passerby{| and EMS was called}.",
)
# Motor vehicle collisions, for the services that see them.
_COLLISION = ("{Pr} was the restrained driver of a {sedan|pickup truck|minivan} (plate {plate}) in a "
              "{low-speed|moderate-speed} collision{| with airbag deployment}.")
_PRIOR = ("a COPD exacerbation", "pneumonia", "a urinary tract infection", "cellulitis", "a fall", "chest pain",
          "syncope", "dehydration", "a GI bleed", "kidney stones", "an elective surgery")
_WORKUP = ("a normal stress test", "an unremarkable colonoscopy", "a CT scan without acute findings",
           "mildly elevated liver enzymes", "a normal echocardiogram", "an abnormal chest x-ray",
           "iron deficiency", "a negative Holter monitor")
_ED = (
    "In the ED, initial vitals were {vitals}.",
    "ED vitals: {vitals}.",
    "Initial VS in the ED: {vitals}.",
    "On arrival, vitals were {notable for|} {vitals}.",
    "In the {ED|emergency department}, {pr} was {afebrile|febrile|tachycardic|hypertensive|comfortable} with {vitals}.",
)
_ED_LABS = ("Labs were {notable|significant} for {labs}.", "Initial labs showed {labs}.", "Labs: {labs}.",
            "Laboratory {evaluation|workup} was {significant|notable} for {labs}.", "{Admission|Initial} labs: {labs}.")
_ED_TREAT = ("{Pr} received {given} and was admitted to the {team} service.",
             "{Pr} was given {given} prior to transfer to the {floor|unit|ICU}.",
             "In the ED {pr} received {given}. {Team} was consulted and {pr} was admitted.",
             "{Pr} was treated with {given} and admitted for further {management|workup and management}.",
             "{Given|Treatment} in the ED {included|consisted of} {given}; {pr} was then admitted.")
_ED_GIVEN = ("1L normal saline", "IV morphine 4 mg", "acetaminophen 1 g", "ondansetron 4 mg IV", "aspirin 324 mg",
             "IV fluids", "hydromorphone 0.5 mg IV", "a dose of ketorolac", "lactated Ringer's 1L",
             "IV pantoprazole", "potassium chloride 40 mEq", "IV magnesium", "2L of crystalloid",
             "a dose of IV antibiotics", "fentanyl 50 mcg IV")
_FLOOR = (
    "On arrival to the {floor|unit|ward}, {pr} {reports|endorsed|describes} {state}.",
    "On the floor, {pr} {is|was} {comfortable|resting comfortably} and {state}.",
    "Upon arrival to the {unit|floor}, {pr} {endorsed|noted} {state}.",
    "{Currently|At the time of evaluation|On interview}, {pr} {reports|notes} {state}.",
)
_FLOOR_STATE = ("improved symptoms", "ongoing but milder symptoms", "that {pos} pain is better controlled",
                "feeling tired but otherwise well", "no new complaints", "some nausea but no vomiting",
                "{mild|moderate} residual discomfort", "that {pos} symptoms are {much|somewhat} improved")
_ROS = (
    "ROS: {10-point|12-point|Full} review of systems {negative|otherwise negative} except as {noted above|per HPI}.",
    "Review of systems: Denies fevers, chills, night sweats. Denies headache, vision changes. Denies chest pain or "
    "palpitations unless noted above. Denies cough or shortness of breath unless noted above. Denies nausea, "
    "vomiting, diarrhea, constipation. Denies dysuria or hematuria. Denies rashes. All other systems reviewed and "
    "negative.",
    "ROS:\n(+) Per HPI\n(-) Denies fever, chills, night sweats, recent weight loss or gain. Denies headache, sinus "
    "tenderness, rhinorrhea or congestion. Denies cough, shortness of breath. Denies chest pain or tightness, "
    "palpitations. Denies nausea, vomiting, diarrhea, constipation or abdominal pain. No recent change in bowel or "
    "bladder habits. No dysuria. Denies arthralgias or myalgias.",
    "All other systems {reviewed|were reviewed} and are negative.",
    "ROS: {Positive|Pos} as per HPI. {Negative|Neg} for {fevers|chills}, {chest pain|palpitations}, "
    "{dysuria|hematuria}, "
    "{rash|joint pain}, and {focal weakness|numbness}.",
)


_ROS_ITEMS = ("fevers", "chills", "night sweats", "weight loss", "headache", "vision changes", "sore throat",
              "rhinorrhea", "chest pain", "palpitations", "orthopnea", "PND", "cough", "wheezing", "hemoptysis",
              "nausea", "vomiting", "diarrhea", "constipation", "melena", "BRBPR", "dysuria", "hematuria",
              "urinary frequency", "arthralgias", "myalgias", "rash", "focal weakness", "numbness", "dizziness",
              "anxiety", "low mood", "easy bruising", "leg swelling", "abdominal pain", "back pain")


def _ros(c: Case) -> str:
    """A review of systems: a fixed phrase, or the negatives the examiner happened to list."""
    if c.chance(0.3):
        return c.text(c.pick(_ROS))
    items = c.rng.sample(_ROS_ITEMS, c.rng.randint(4, 4 + round(14 * c.detail)))
    cut = c.rng.randint(1, len(items) - 1)
    return c.text("{ROS:|Review of systems:|ROS -}") + " " + c.text("{Denies|Negative for|(-)}") + " " + \
        join(items[:cut], "or") + ". " + c.text("{No|Denies|Also denies}") + " " + join(items[cut:], "or") + \
        ". " + c.text("{All other systems negative.|Otherwise negative.|10-point ROS otherwise negative.|}")


def trend(c: Case, name: str) -> str:
    """'Creat 2.1 -> 1.6 -> 1.2': an admission value easing back into the reference range."""
    lab = LABS[name]
    first = float(c.labs[name]) if name in c.labs else c.rng.uniform(lab.lo, lab.hi)
    steps = [first] + sorted((c.rng.uniform(lab.lo, lab.hi) for _ in range(c.rng.randint(1, 3))),
                             reverse=first > (lab.lo + lab.hi) / 2)
    return f"{name} " + " -> ".join(f"{v:.{lab.decimals}f}" for v in steps)


def vitals(c: Case, sick: bool) -> str:
    r = c.rng
    t = f"{r.uniform(98.0, 101.6) if sick else r.uniform(97.4, 99.1):.1f}"
    hr, sbp, dbp = r.randint(62, 128) if sick else r.randint(56, 96), r.randint(92, 178), r.randint(50, 98)
    rr, sat = r.randint(14, 26) if sick else r.randint(12, 20), r.randint(89, 100) if sick else r.randint(93, 100)
    o2 = c.pick(("RA", "RA", "room air", f"{r.randint(2, 4)}L NC"))
    form = 1 if r.random() > 0.3 + c.detail else r.randrange(4)  # terse notes write the bare numbers
    if form == 0:
        out = f"T {t} HR {hr} BP {sbp}/{dbp} RR {rr} O2 sat {sat}% on {o2}"
    elif form == 1:
        out = f"{t} {hr} {sbp}/{dbp} {rr} {sat}% {o2}"
    elif form == 2:
        out = f"Temp {t}F, HR {hr}, BP {sbp}/{dbp}, RR {rr}, SpO2 {sat}% {o2}"
    else:
        out = f"T: {t} BP: {sbp}/{dbp} P: {hr} R: {rr} O2: {sat}% {o2}"
    # Discharge vitals of a detailed note carry the day's extremes, weight and fluid balance.
    if not sick and c.chance(c.detail):
        out += (f" Tmax {r.uniform(98.2, 100.3):.1f} Wt {c.vocab['dwt']} kg "
                f"I/O {r.randint(400, 2400)}/{r.randint(300, 2800)}")
    return out


def _lab_phrase(c: Case) -> str:
    """The admission labs an HPI quotes: the condition's own, and a few basic ones as they came back."""
    names = [n for n in lab_names(c.cond) if n in c.labs]
    names += [n for n in c.rng.sample(BASIC, c.rng.randint(0 if names else 2, 4)) if n not in names]
    return ", ".join(f"{n} {c.labs[n]}" for n in names)


def hpi(d: Doc, c: Case) -> None:
    p, w, cond, rng, x = c.person, c.words, c.cond, c.rng, c.detail
    complaint = lower_first(c.complaint)
    history = join(pmh_words(c)) if c.pmh else c.pick(("no significant past medical history",
                                                         "no past medical history", "no known medical problems"))
    if not c.full:
        d.line(*c.fill(_COMPACT_HPI, history=history, complaint=complaint))
        return
    d.line(*c.fill(c.pick(_HPI_OPENERS), history=history, complaint=complaint, letter=w.letter))
    ago = rng.randint(1, 10)
    onset = (body_date(c, p.admit - dt.timedelta(days=ago)), "DATE")
    story = [c.fill(c.pick(_ONSET), n=days(ago), onset=onset, complaint=complaint,
                    relative=c.pick((w.spouse, "daughter", "son", "partner")))] if c.chance(0.4 + 0.6 * x) else []
    for _ in range(round((0.5 + 2 * x) * rng.random())):
        syms, negs = rng.sample(_SYMPTOMS, 2), rng.sample(_NEGATIVES, 2)
        story.append(c.fill(c.pick(_ASSOCIATED), a=syms[0], b=syms[1], c=negs[0], d=negs[1]))
    other = (places.hospital(rng) if c.chance(0.7) else places.clinic(rng), "LOCATION:HOSPITAL")
    if c.chance(0.1 + 0.8 * x):
        story.append(c.fill(c.pick(_REFERRAL), pcp=(c.pcp, "NAME:DOCTOR"), other=other,
                            finding=lower_first(cond.diagnosis) if c.chance(0.5) else "abnormal labs"))
    for template in rng.sample(_HPI_EXTRA, round(3.5 * x * rng.random())):
        story.append(c.fill(template, year=(str(_past_year(c, 15)), "DATE"), other=other, prior=c.pick(_PRIOR),
                            workup=c.pick(_WORKUP), country=(c.pick(places.COUNTRIES), "LOCATION:COUNTRY"),
                            place=people.place(c)))
    if c.service in ("ORTHOPAEDICS", "NEUROSURGERY", "SURGERY") and c.chance(0.12):
        story.append(c.fill(_COLLISION, plate=people.code(c, "ID:VEHICLE")))
    if story:
        paragraph(d, story, c)
    if c.chance(0.15 + 0.85 * x):
        given = join(rng.sample([g for g in _ED_GIVEN if tolerated(c, [g])], rng.randint(1, 1 + round(3 * x))))
        team = c.service.lower().replace("obstetrics/gynecology", "OB/GYN")
        ed = [c.fill(c.pick(_ED), vitals=vitals(c, True)), c.fill(c.pick(_ED_LABS), labs=_lab_phrase(c))]
        if c.imaging and c.chance(0.6):
            study, _, finding = c.imaging.partition(": ")
            ed.append([f"{study} {c.pick(('showed', 'demonstrated', 'was notable for', 'revealed'))} "
                       f"{lower_first(finding)}"])
        ed.append(c.fill(c.pick(_ED_TREAT), given=given, team=team, Team=c.pick(("Surgery", "Medicine", "Cardiology",
                                                                                  "Neurology", "GI", "Urology"))))
        paragraph(d, ed, c)
    if c.chance(0.1 + 0.7 * x):
        d.line(*c.fill(c.pick(_FLOOR), state=c.text(c.pick(_FLOOR_STATE))))
    if c.chance(0.05 + 0.8 * x):
        d.add("\n")
        d.line(_ros(c))


def paragraph(d: Doc, sentences: list[list], c: Case) -> None:
    """Sentences run together as prose, or one per line in a terser note."""
    sep = " " if c.bullets != "" or c.detail > 0.3 else "\n"
    for i, s in enumerate(sentences):
        if i:
            d.add(sep)
        d.pieces(s)
    d.add("\n")


_SURGERIES = ("appendectomy", "cholecystectomy", "tonsillectomy", "inguinal hernia repair", "cataract surgery",
              "right knee arthroscopy", "left carpal tunnel release", "umbilical hernia repair", "lumbar discectomy",
              "rotator cuff repair", "hemorrhoidectomy", "thyroidectomy", "septoplasty", "colonoscopy with polypectomy")
_FEMALE_SURGERIES = ("cesarean section", "tubal ligation", "breast biopsy (benign)")
# Past operations a current condition rules out (no appendicitis after an appendectomy).
_RULED_OUT_BY = {"appendectomy": ("append",), "cholecystectomy": ("cholecyst", "gallstone", "gallbladder"),
                 "tubal ligation": ("pregnan", "delivery", "labor", "preeclampsia", "hyperemesis", "postpartum")}


def _past(c: Case) -> tuple[str, str]:
    """When something long past happened: a year, or a month and year (or a whole date) in it."""
    year = _past_year(c)
    if c.chance(0.6):
        return (str(year), "DATE")
    return (body_date(c, dt.date(year, c.rng.randint(1, 12), c.rng.randint(1, 28)), PAST), "DATE")


def _past_year(c: Case, within: int = 100) -> int:
    """A year of the patient's adult life before this admission, at most `within` years back."""
    last = c.person.admit.year - 1
    return c.rng.randint(min(max(c.person.dob.year + 18, last - within), last), last)


def pmh(d: Doc, c: Case) -> None:
    names = pmh_words(c)
    if not c.full:
        d.line(f"- {names[0]}" if names else "None")
        return
    if not names:
        d.line(c.pick(("None.", "None", "Denies", "No significant past medical history.")))
    elif c.detail < 0.2 and c.chance(0.5):
        d.line(", ".join(names))
    else:
        for i, n in enumerate(names, 1):
            if c.chance(0.4):  # the year it was diagnosed
                d.line(f"{c.bullets or f'{i}. '}{n} (", *c.fill("{dx |diagnosed |since |}"), _past(c), ")")
            else:
                d.line(f"{c.bullets or f'{i}. '}{n}")
    if c.chance(0.2 + 0.6 * c.detail):
        now = " ".join([c.cond.diagnosis, *c.cond.procedures]).lower()
        pool = [s for s in (*_SURGERIES, *(_FEMALE_SURGERIES if c.person.sex == "Female" else ()))
                if not any(stem in now for stem in _RULED_OUT_BY.get(s, ()))]
        surgeries = c.rng.sample(pool, c.rng.randint(0, 3))
        d.line(c.pick(("PAST SURGICAL HISTORY:", "PSH:", "Past Surgical History:")))
        if not surgeries:
            d.line("None")
        for s in surgeries:
            if c.chance(0.6):
                d.line(f"{c.bullets or '- '}{s} (", _past(c), ")")
            else:
                d.line(f"{c.bullets or '- '}{s}")


_LIVES = ("Lives with {pos} {rel} in {city}.", "Lives alone in an apartment in {city}.",
          "Lives in {city} with {pos} {rel}.", "Resides in {city}; lives with {pos} {rel}.",
          "Lives alone in {city}.", "Lives with {pos} {rel} and {rel2} in a house in {city}.")
_WORK = ("Works as {an} {job}.", "Works as {an} {job} at {company}.", "Retired {job}.",
         "Former {job}, now retired.", "Employed as {an} {job}.", "Occupation: {job}.")
_TOBACCO = ("Never smoker.", "Former smoker, quit {n} years ago.", "Current smoker, {n2} pack-year history.",
            "Denies tobacco use.", "Quit smoking {n} years ago ({n2} pack-years).", "Tobacco: never.",
            "Smokes {n3} cigarettes per day.")
_ALCOHOL = ("Drinks alcohol socially.", "No alcohol use.", "Drinks {n3} glasses of wine per week.",
            "Rare alcohol.", "Denies EtOH.", "Occasional beer on weekends.")
_HEAVY_ALCOHOL = ("Drinks {n3} pints of vodka per day for many years.", "Heavy EtOH use, about {n2} drinks daily.",
                  "Reports drinking a fifth of liquor daily; multiple prior detoxes.")
_DRUGS = ("Denies illicit drug use.", "No IVDU.", "Denies drug use.", "Occasional marijuana.", "No recreational drugs.")
_OPIOIDS = ("Uses intranasal heroin daily, previously on methadone.", "Injects heroin and fentanyl daily.")
_FAMILY_SOCIAL = ("Has {1-4} children and {0-9} grandchildren.", "Married for {5-55} years.",
                  "Completed {10-20} years of education.", "Has {1-3} adult children nearby.",
                  "Walks {1-5} miles most days.", "Drinks {1-4} cups of coffee a day.")
_FUNCTION = ("Independent in ADLs and IADLs.", "Ambulates with a cane.", "Uses a walker at baseline.",
             "Fully independent at baseline.", "Needs help with IADLs; daughter manages medications.")


def social(d: Doc, c: Case) -> None:
    w, rng, cond = c.words, c.rng, c.cond
    rels = [w.spouse, "partner", "daughter", "son", "sister", "brother", "friend"]
    city = (c.person.city, "LOCATION:CITY")
    if not c.full:
        d.line(*c.fill(c.pick(_LIVES[:2]), city=city, rel=c.pick(rels[:4])))
        return
    alcohol = _HEAVY_ALCOHOL if "lcohol" in cond.diagnosis or any("lcohol" in h.name for h in c.pmh) else _ALCOHOL
    drugs = _OPIOIDS if "pioid" in cond.diagnosis else _DRUGS
    smoker = any(h.name == "COPD" for h in c.pmh) or "lung" in cond.diagnosis.lower()
    tobacco = _TOBACCO[1:3] if smoker else _TOBACCO
    nums = {"n": str(rng.randint(2, 30)), "n2": str(rng.randint(10, 60)), "n3": str(rng.randint(2, 6))}
    job = (c.pick(places.PROFESSIONS) if c.chance(0.8) else c.fake.job().split(",")[0].lower(), "PROFESSION")
    nums["an"] = article(job[0])
    items = [("Home", c.fill(c.pick(_LIVES), city=city, rel=c.pick(rels), rel2=c.pick(("a dog", "two cats",
                                                                                     "grandchildren")))),
             ("Occupation", c.fill(c.pick(_WORK), job=job, an=nums["an"],
                                   company=(places.organization(rng) if c.chance(0.6) else c.fake.company(),
                                            "LOCATION:ORGANIZATION"))),
             ("Tobacco", c.fill(c.pick(tobacco), **nums)), ("EtOH", c.fill(c.pick(alcohol), **nums)),
             ("Illicits", c.fill(c.pick(drugs)))]
    if c.chance(0.3 + 0.4 * c.detail):
        items.append(("Function", [c.pick(_FUNCTION)]))
    if c.chance(0.2 + 0.6 * c.detail):
        items.append(("Other", c.fill(c.pick(_FAMILY_SOCIAL))))
    if c.chance(0.15):
        items.append(("Address", ["Home address: ", (places.street(c.rng), "LOCATION:STREET"), ", ", city, ", ",
                                  *people.state_zip(c), "."]))
    if c.chance(0.25):
        rel = c.pick(("daughter", "son", w.spouse, "sister", "niece"))
        relative = f"{names.first_name(c.rng, 'Female' if rel in ('daughter', 'sister', 'niece', 'wife') else 'Male')} " \
                   f"{c.person.last if rel in ('daughter', 'son', 'wife', 'husband') else names.last_name(c.rng)}"
        items.append(("HCP", c.pick((["HCP: ", people.listed(c, relative), f" ({rel}), ", (phone(c), "CONTACT:PHONE")],
                                     [f"Health care proxy is {w.pos} {rel}, ", (relative, "NAME:PATIENT"), " (",
                                      (phone(c), "CONTACT:PHONE"), ")."]))))
    if c.chance(0.1):
        moved = c.fill(", moved to the US in {year}", year=(str(_past_year(c)), "DATE")) if c.chance(0.5) else []
        items.append(("Origin", [*c.fill("{Born in|Emigrated from} {country}", country=(c.pick(places.COUNTRIES),
                                                                                       "LOCATION:COUNTRY")), *moved, "."]))
    keep = [items[0]] + [it for it in items[1:] if c.chance(0.2 + 0.8 * c.detail)]
    if c.chance(0.3):
        rng.shuffle(keep)
    if c.bullets and c.chance(0.5):
        for label, pieces in keep:
            d.line(f"{c.bullets}{label}: ", *pieces)
    else:
        paragraph(d, [pieces for _, pieces in keep], c)


_FAMILY = ("Mother with {a}.", "Father with {a}.", "Mother died of {b} at age {n}.", "Father died of {b} at age {n}.",
           "Brother with {a}.", "Sister with {a}.", "No family history of {a}.", "Maternal grandmother with {a}.")
_FAMILY_A = ("hypertension", "coronary artery disease", "type 2 diabetes", "breast cancer", "colon cancer",
             "hyperlipidemia", "stroke", "dementia", "depression", "thyroid disease", "asthma", "kidney stones")
_FAMILY_B = ("myocardial infarction", "lung cancer", "stroke", "pancreatic cancer", "complications of diabetes",
             "heart failure", "pneumonia")


def family(d: Doc, c: Case) -> None:
    if not c.full:
        d.line(c.pick(("Non-contributory.", "Mother with hypertension. Father with coronary artery disease.")))
        return
    if c.chance(0.6 - 0.55 * c.detail):
        d.line(c.pick(("Non-contributory.", "Noncontributory", "Reviewed and non-contributory.", "Unknown; adopted.")))
        return
    n = c.rng.randint(1, 2 + int(3 * c.detail))
    facts = [c.fill(t, a=c.pick(_FAMILY_A), b=c.pick(_FAMILY_B), n=str(c.rng.randint(52, 94)))
             for t in c.rng.sample(_FAMILY, n)]
    if c.bullets and c.chance(0.5):
        for f in facts:
            d.line(c.bullets, *f)
    else:
        paragraph(d, facts, c)
