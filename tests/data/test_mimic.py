"""MIMIC-IV-Note import: the rule table, surrogates that read naturally and keep clinical order on a
fabricated MIMIC-style corpus (tests/fixtures/mimic), and the reader's handling of bad files."""

import csv
import datetime as dt
import gzip
import io
import itertools
import json
import os
import random
import re
import zipfile
from pathlib import Path

import pytest
from faker import Faker

from medgen.core.constants import SPLITS
from medgen.core.errors import DataError
from medgen.data import markup
from medgen.data.mimic.fixups import fill
from medgen.data.mimic.reader import CSV_FIELD_LIMIT, read_notes
from medgen.data.mimic.rules import NON_PHI, RULES, context_at, match, window
from medgen.data.mimic.surrogates import Identity
from medgen.data.phi.forms import wants_an
from medgen.data.record_format import header_value
from medgen.evaluate import metrics

CORPUS = Path(__file__).parents[1] / "fixtures" / "mimic"
DOCS = Path(__file__).parents[2] / "docs" / "MIMIC_RULES.md"


def _marked(text: str, section: str = ""):
    """The context of the mask group marked «like this» in `text` (the markers removed)."""
    i = text.index("«")
    j = text.index("»") - 1
    plain = text.replace("«", "").replace("»", "")
    return context_at(plain, i, j, section)


# One context per rule, in the shape MIMIC-IV-Note discharge notes write it; «» marks the mask group.
RULE_CASES = [
    ("facility", "Discharge Disposition:\nExtended Care\n \nFacility:\n«___»\n \nDischarge Diagnosis:", "facility"),
    ("followup-section", "Followup Instructions:\n«___»\n", "followup instructions"),
    ("masked-section", "Social History:\n«___»\nFamily History:\nNoncontributory.", "social history"),
    ("name-field", "Name:  «___»                 Unit No:   ___", ""),
    ("unit-no", "Name:  ___                 Unit No:   «___»", ""),
    ("admission-date", "Admission Date:  «___»              Discharge Date:   ___", ""),
    ("discharge-date", "Admission Date:  ___              Discharge Date:   «___»", ""),
    ("date-of-birth", "Date of Birth:  «___»             Sex:   F", ""),
    ("attending", "Attending: «___».", ""),
    ("lab-line", "«___» 07:45AM BLOOD WBC-7.1 RBC-4.2", "pertinent results"),
    ("report-date", "   URINE CULTURE (Final «___»: \n      NO GROWTH.", "pertinent results"),
    ("micro-source", "___ 10:39 pm URINE      Source: «___». ", "pertinent results"),
    ("lab-values", "___ 08:27AM BLOOD «___» PTT-28.6 ___", "pertinent results"),
    ("building", "Building: «___» Building (___ Campus) 3rd floor", "followup instructions"),
    ("building-named", "Campus: EAST     Best Parking: «___» Garage", "followup instructions"),
    ("bracket-phone", "With: DEVICE CLINIC [«___»]", "followup instructions"),
    ("organization", "The «___» VNA will visit you at home.", "discharge instructions"),
    ("hospital-named", "EMS brought her to the «___» ED where a code stroke was called.", "history of present illness"),
    ("clinician-suffix", "With: «___ ___», NP [___]", "followup instructions"),
    ("doctor-title", "Seen by Dr. «___» in clinic", "brief hospital course"),
    ("clinician-role", "Her pulmonologist, «___», started a prednisone taper", "history of present illness"),
    ("patient-title", "Mr. «___» is a pleasant gentleman", "history of present illness"),
    ("dear", "Dear «___»,", "discharge instructions"),
    ("pleasure", "Dear Ms. ___,\n\n«___» was a pleasure to take care of you", "discharge instructions"),
    ("patient-subject", "- «___» needs more frequent paracentesis", "brief hospital course"),
    ("study-date-lead", "IMAGING:\n«___» CXR- No acute cardiopulmonary process.", "pertinent results"),
    ("results-date", "Video swallow «___»: Penetration with thin liquids.", "pertinent results"),
    ("age-at", "- Bipolar I disorder, first manic episode at age «___»", "past medical history"),
    ("age-words", "Age: «___»", "history of present illness"),
    ("age-suffix", "The patient is a «___» y.o. male", "history of present illness"),
    ("age-sex", "Ms. ___ is a «___» with history of GERD who presents", "brief hospital course"),
    ("age-lead", "History of Present Illness:\n«___» healthy man presenting with 1 day of pain",
     "history of present illness"),
    ("quantity", "exertional chest pressure over the past «___» weeks", "history of present illness"),
    ("dose", "4. Allopurinol «___» mg PO DAILY", "medications on admission"),
    ("eponym", "biopsied to exclude \n«___»'s sarcoma, benign.", "past medical history"),
    ("child-pugh", "MELD 10 and Child's «___» class B", "brief hospital course"),
    ("exam-term", "EXT: no «___» edema, 2+ DP and ___ pulses", "physical exam"),
    ("date-range", "Delirium during admission for hip fracture, «___-___»", "past medical history"),
    ("street", "aspiration events who lives at «___» with his wife", "history of present illness"),
    ("address-city", "Address: ___, «___», ___ ___", "followup instructions"),
    ("route", "MVC vs tree on ___ Route «___», with prolonged extrication", "history of present illness"),
    ("street-name", "lives alone in an apartment on «___» Street, presenting after", "history of present illness"),
    ("city-state", "She moved here from «___», MA in 2140.", "social history"),
    ("state-zip", "Address: ___, ___, «___ ___»\nPhone: ___", "followup instructions"),
    ("state", "She grew up in Springfield, «___».", "history of present illness"),
    ("contact-name", "HCP: «___ ___»", "brief hospital course"),
    ("contact-phone", "Her HCP is her daughter, ___ ___ («___»).", "brief hospital course"),
    ("relative", "when her daughter «___» found her unable to speak", "history of present illness"),
    ("relative-after", "Collateral obtained from «___» (sister), who reports", "history of present illness"),
    ("followup-when", "When: «___» at 10:30 AM", "followup instructions"),
    ("time", "Last known well was the prior evening at «___» PM.", "history of present illness"),
    ("time-words", "Time: «___»\n", "history of present illness"),
    ("weekday", "The first occurred on a «___» at church", "history of present illness"),
    ("weekday-part", "increased confusion since «___» morning", "history of present illness"),
    ("month", "during a hospitalization in «___» of this year", "history of present illness"),
    ("timeline-date", "ONCOLOGIC HISTORY:\n- «___»: Tamoxifen x5 years.", "past medical history"),
    ("by-date", "Mental status cleared by «___».", "brief hospital course"),
    ("procedure-date", "Major Surgical or Invasive Procedure:\nLaparoscopic appendectomy «___»\n",
     "major surgical or invasive procedure"),
    ("study-date", "He underwent cardiac catheterization on «___» which showed", "history of present illness"),
    ("ward", "He was called out to «___» on ___.", "brief hospital course"),
    ("ward-number", "admitted to the «___» NICU for prematurity", "brief hospital course"),
    ("zip", "Springfield, MA «___»", "followup instructions"),
    ("country", "She emigrated from «___» in 2130.", "social history"),
    ("city", "She has two sisters, one of whom lives in «___».", "family history"),
    ("fax", "Phone: ___    Fax: «___»", "followup instructions"),
    ("phone", "please call «___» with questions", "discharge instructions"),
    ("hospital", "transferred from «___» for evaluation", "history of present illness"),
    ("year-in", "Neurogenic bladder with chronic Foley since «___»\nHypertension", "past medical history"),
    ("date-words", "Her diuretics were recently decreased on «___» due to worsening", "history of present illness"),
    ("dose-paren", "1. Carbidopa-Levodopa («___») 1 TAB PO TID", "medications on admission"),
    ("year", "Osteoporosis with L1 compression fracture («___»)", "past medical history"),
    ("history-date", "CAD s/p DES to LAD «___»\nHypertension", "past medical history"),
    ("drug-name", "2. «___» (Truvada) 1 TAB PO DAILY", "discharge medications"),
    # nothing in the context says what it hid: the fallback, counted against the figure
    ("fallback", "Social history is significant for «___».", "social history"),
]


@pytest.mark.parametrize("rule, text, section", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_each_rule_reads_its_context(rule, text, section):
    assert match(_marked(text, section))[0].name == rule


def test_every_rule_has_a_case_and_a_row_in_the_docs():
    names = [r.name for r in RULES]
    assert set(names) <= {c[0] for c in RULE_CASES}
    docs = DOCS.read_text()
    assert [n for n in names + ["fallback"] if f"| `{n}` |" not in docs] == []


@pytest.mark.parametrize(
    "text, section, expected",
    [
        ("She is scheduled for repeat paracentesis as an outpatient on «___».", "brief hospital course", "followup"),
        ("Her diuretics were recently decreased on «___» due to hyponatremia.", "history of present illness",
         "recent"),
        ("Please continue the antibiotic through «___».", "discharge instructions", "course"),
        ("You were admitted on «___» with chest pain.", "discharge instructions", "admit"),
        ("He was discharged on «___» to rehab.", "brief hospital course", "discharge"),
        ("She had a colonoscopy on «___» that was normal.", "past medical history", "past"),
        ("Compared with the prior study from «___», the effusion is smaller.", "pertinent results", "past"),
        ("You had a paracentesis on «___».", "discharge instructions", "stay"),
        ("Lisinopril was held for AKI, restarted on «___».", "brief hospital course", "stay"),
        ("Your INR will be checked on «___».", "discharge instructions", "followup"),
        ("Warfarin may be restarted on «___» if no further bleeding.", "brief hospital course", "followup"),
    ],
)
def test_a_date_falls_where_its_sentence_and_section_put_it(text, section, expected):
    assert window(_marked(text, section)) == expected


@pytest.mark.parametrize(
    "word, an",
    [("81", True), ("86M", True), ("11", True), ("18", True), ("8", True), ("93", False), ("1", False), ("MRI", True),
     ("ED", True),
     ("CT", False), ("outside", True), ("unit", False), ("uncle", True), ("Mercy", False), ("one", False)],
)
def test_a_or_an_goes_by_sound(word, an):
    assert wants_an(word) is an


def _identity(text, seed=1, sex="Female"):
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return Identity.make(fake, random.Random(seed), sex, text)


def _calendar_age(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(
    "text, ages",
    [
        ("Ms. ___ is a 67 year old woman", (67, 67)),  # an age left unmasked is kept
        ("Ms. ___ is a ___ year old woman", (90, 99)),  # a masked age is over 89 (HIPAA Safe Harbor)
        ("Ms. ___ is a ___ with CHF", (25, 89)),  # an age-and-sex phrase ("52F") hides any age
        ("episode at age ___; Ms. ___ is a ___ with CHF", (25, 89)),  # an age at an earlier event is not hers
    ],
    ids=["stated", "masked", "age-sex", "earlier-age"],
)
def test_dob_gives_the_age_on_admission(text, ages, seed):
    p = _identity(text, seed).person
    assert ages[0] <= p.age <= ages[1] and _calendar_age(p.dob, p.admit) == p.age


@pytest.mark.parametrize(
    "text, pattern",
    [
        # the article before a place is kept once, never doubled
        ("EMS brought her to the ___ ED where", r"brought her to the (?!the )[A-Z][\w.' ]+ ED where"),
        ("on a ___ at church", r"on a (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) at church"),
        # the article before a person's name is dropped
        ("and the ___ said", r"and [A-Z][\w'-]+ said"),
        # "a"/"an" follows the surrogate's sound
        ("She is an ___ with CHF.", r"She is an? (\d+)"),
        # a filler that starts a sentence is capitalised; one inside a wrapped line is not
        ("No black stools. No \n___ pain or swelling.", r"No \n[a-z]+ pain or swelling"),
        ("Dear Ms. ___,\n\n___ was a pleasure", r"\n\nIt was a pleasure"),
        # PHI in a line written in capitals is written in capitals
        ("TRANSFERRED FROM ___ FOR CARE", r"TRANSFERRED FROM [A-Z .']+ FOR CARE"),
    ],
)
def test_surrogates_read_naturally(text, pattern):
    for seed in range(10):
        out = fill(text, _identity(text, seed)).text
        m = re.search(pattern, out)
        assert m, out
        if m.groups() and m.group(1).isdigit():
            assert out.startswith("She is an " if wants_an(m.group(1)) else "She is a "), out


# ------------------------------------------------------------------------------------- the fabricated corpus

@pytest.fixture(scope="module")
def corpus():
    notes, report = read_notes(CORPUS / "discharge.csv", seed=0, patients=CORPUS / "patients.csv",
                               services=CORPUS / "services.csv")
    with open(CORPUS / "discharge.csv", newline="") as f:
        sources = {r["note_id"]: r["text"] for r in csv.DictReader(f)}
    return notes, report.as_dict(), sources


def test_corpus_is_imported_whole(corpus):
    notes, report, sources = corpus
    assert len(notes) >= 30 and report["notes"] == len(notes) == len(sources) and not report["skipped"]
    # every mask of the source is counted once, under one rule, and none is left
    assert report["masks"] == sum(len(re.findall(r"_{3,}", t)) for t in sources.values()) == \
        sum(report["rules"].values())
    assert all("___" not in n.text for n in notes)
    # tables win over the header: services.csv gives curr_service codes, the header the rest
    assert {n.service for n in notes} >= {"MED", "CSURG", "MEDICINE"}


def test_at_least_90_percent_of_masks_are_typed_by_a_specific_rule(corpus):
    _, report, _ = corpus
    assert report["resolved_by_specific_rule"] >= 0.90, report["rules"]
    assert report["fallback_masks"] == report["rules"].get("fallback", 0)
    assert set(report["rules"]) <= {r.name for r in RULES} | {"fallback"}


def test_spans_are_exact_and_survive_the_training_markup(corpus):
    notes, report, _ = corpus
    for n in notes:
        for s in n.spans:
            assert n.text[s["start"]:s["end"]] == s["text"] and s["category"] in markup.CODES
        assert markup.strip(markup.markup(n.text, n.spans)) == (n.text, [
            {k: s[k] for k in ("start", "end", "category", "text")} for s in sorted(n.spans, key=lambda s: s["start"])])
    assert sum(len(n.spans) for n in notes) == sum(report["categories"].values())


_ARTICLE = r"\b(the|a|an|The|A|An)\s+"


def _an(word: str) -> bool:
    """The test's own reading of a/an: vowel letters, and numbers said eighty/eight/eleven/eighteen."""
    if word[:1].isdigit():
        return bool(re.match(r"(8\d?|11|18)(?!\d)", word))
    if word.isupper() and len(word) <= 4:
        return word[0] in "AEFHILMNORSX"
    return word[:1].lower() in "aeiou" and not re.match(r"(?i)(one|uni|use|eu)", word)


def test_no_doubled_or_mismatched_article_anywhere(corpus):
    notes, _, _ = corpus
    problems = []
    for n in notes:
        problems += [(n.note_id, m.group()) for m in re.finditer(r"(?i)\b(the|an?)\s+(the|an?)\b", n.text)]
        for s in n.spans + n.non_phi:
            value = n.text[s["start"]:s["end"]]
            m = re.search(_ARTICLE + r"\Z", n.text[:s["start"]])
            if not m or not value[:1].isalnum():
                continue
            if s.get("category", "").startswith("NAME") or s.get("category") == "OTHER":
                problems.append((n.note_id, f"{m.group()}{value}"))  # no article before a person's name
            elif m.group(1).lower() in ("a", "an") and (m.group(1).lower() == "an") != _an(value):
                problems.append((n.note_id, f"{m.group()}{value}"))
    assert problems == []


def test_fills_that_start_a_sentence_are_capitalised(corpus):
    notes, _, _ = corpus
    starts = re.compile(r"(?:\A|[.!?]\s+|\n[ \t]*\n\s*|:[ \t]*\n[ \t]*|\n[ \t]*[-*][ \t]*)\Z")
    low = [(n.note_id, n.text[f["start"]:f["end"]]) for n in notes for f in n.non_phi + n.spans
           if starts.search(n.text[:f["start"]]) and n.text[f["start"]].islower()]
    assert low == []


def _date(value: str) -> dt.date | None:
    return metrics.parse_date(value)  # any whole form the import writes


def _section(text: str, start: int) -> str:
    """The last top-level heading (a known MIMIC section) above `start`, read from the output."""
    heads = [m for m in re.finditer(r"(?m)^([A-Z][A-Za-z /]+):[ \t]*$", text[:start])
             if m.group(1) in ("Past Medical History", "Pertinent Results", "Followup Instructions",
                               "History of Present Illness", "Brief Hospital Course", "Discharge Instructions",
                               "Physical Exam", "Discharge Medications", "Social History", "Family History",
                               "Medications on Admission", "Discharge Disposition", "Discharge Diagnosis",
                               "Major Surgical or Invasive Procedure", "Past Surgical History", "Chief Complaint",
                               "Discharge Condition", "Facility")]
    return heads[-1].group(1) if heads else ""


def test_dates_keep_clinical_order(corpus):
    """Past history before admission, results and events within the stay, follow-ups after discharge, and
    a DOB that gives every age the note states; read from the filled text, against its own header."""
    notes, _, _ = corpus
    problems = []
    for n in notes:
        admit = _date(header_value(n.text, "Admission Date"))
        discharge = _date(header_value(n.text, "Discharge Date"))
        dob = _date(header_value(n.text, "Date of Birth"))
        assert dob < admit <= discharge, n.note_id
        age = _calendar_age(dob, admit)
        lab_dates: list[dt.date] = []
        for s in n.spans:
            section = _section(n.text, s["start"])
            if s["category"] == "AGE" and s["rule"] != "age-at" and int(s["text"]) != age:
                problems.append((n.note_id, "age", s["text"], age))
            if s["category"] != "DATE":
                continue
            when, value = s.get("when", ""), s["text"]
            d = _date(value)
            year = int(value) if re.fullmatch(r"\d{4}", value) else None
            ok = {
                "birth": d == dob, "admit": d == admit, "discharge": d == discharge,
                "past": d is not None and dob < d < admit, "recent": d is not None and d <= admit,
                "stay": d is not None and admit <= d <= discharge, "course": d is not None and d > discharge,
                "followup": d is not None and d > discharge or not d and not re.match(r"\d", value),
                "past-year": year is not None and dob.year <= year <= admit.year,
                "recent-year": year == admit.year or year == admit.year - 1,
                "stay-year": year in (admit.year, discharge.year),
                "followup-year": year is not None and year >= discharge.year,
                "course-year": year is not None and year >= discharge.year,
                "": d is None and year is None,  # a weekday or a month name
            }.get(when, False)
            # the section alone must agree, whatever rule typed the date
            if d and section == "Followup Instructions":
                ok = ok and d > discharge
            if d and section in ("Past Medical History", "Past Surgical History"):
                ok = ok and d < admit
            if d and section == "Pertinent Results" and s["rule"] == "lab-line":
                ok = ok and admit <= d <= discharge and (not lab_dates or d >= lab_dates[-1])
                lab_dates.append(d)
            if not ok:
                problems.append((n.note_id, s["rule"], when, value, section))
    assert problems == []


def test_non_phi_masks_are_filled_but_never_spans(corpus):
    notes, report, _ = corpus
    non_phi_rules = {r.name for r in RULES if r.category == NON_PHI}
    assert report["non_phi_masks"] > 0 and report["non_phi_treatment"] == "filler"
    for n in notes:
        assert {f["rule"] for f in n.non_phi} <= non_phi_rules
        assert not {s["rule"] for s in n.spans} & non_phi_rules
        for f in n.non_phi:
            assert not any(s["start"] < f["end"] and f["start"] < s["end"] for s in n.spans)
    social = [n.text[f["start"]:f["end"]] for n in notes for f in n.non_phi if f["rule"] == "masked-section"]
    assert len(social) >= 30 and all(s[0].isupper() and "<" not in s for s in social)


def test_placeholder_treatment_types_non_phi_masks_and_keeps_the_phi(corpus):
    notes, report, _ = corpus
    typed, typed_report = read_notes(CORPUS / "discharge.csv", seed=0, patients=CORPUS / "patients.csv",
                                     services=CORPUS / "services.csv", non_phi="placeholder")
    assert typed_report.as_dict()["non_phi_treatment"] == "placeholder"
    assert typed_report.as_dict()["rules"] == report["rules"]
    for a, b in zip(notes, typed):
        assert [(s["category"], s["text"]) for s in a.spans] == [(s["category"], s["text"]) for s in b.spans]
        values = [b.text[f["start"]:f["end"]] for f in b.non_phi]
        assert all(re.fullmatch(r"<[A-Z][A-Z_]*>", v) for v in values), values
    assert "<SOCIAL_HISTORY>" in typed[0].text


def test_same_seed_same_surrogates(corpus):
    notes, _, _ = corpus
    again, _ = read_notes(CORPUS / "discharge.csv", seed=0, patients=CORPUS / "patients.csv",
                          services=CORPUS / "services.csv", limit=3)
    other, _ = read_notes(CORPUS / "discharge.csv", seed=1, limit=3)
    assert [n.text for n in again] == [n.text for n in notes[:3]] != [n.text for n in other]


# ------------------------------------------------------------------------------------------- the reader

def _first_note() -> str:
    with open(CORPUS / "discharge.csv", newline="") as f:
        return next(csv.DictReader(f))["text"]


NOTE = _first_note()


def _csv(rows, header=("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text")):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _row(i, text=NOTE, subject=None):
    return [f"{i}-DS-1", str(subject or 1000 + i), str(2000 + i), "DS", "1", "", "", text]


def test_reader_fills_counts_and_skips_with_line_numbers(tmp_path):
    src = tmp_path / "discharge.csv.gz"
    body = _csv([_row(1), _row(2, text="   "), _row(3, text="no header at all ___"), _row(4)])
    src.write_bytes(gzip.compress(body.encode()))
    notes, report = read_notes(src, seed=0)
    assert [n.note_id for n in notes] == ["1-DS-1", "4-DS-1"]
    assert notes[0].sex == "Female" and notes[0].service == "MEDICINE"
    r = report.as_dict()
    # the reported line is where the skipped row starts in the file, past the multi-line note before it
    lines = body.splitlines()
    skipped = {reason: [lines[n - 1].split(",")[0] for n in v["lines"]] for reason, v in r["skipped"].items()}
    assert skipped == {"empty note": ["2-DS-1"], "no Sex/Service in the header or tables": ["3-DS-1"]}
    assert r["resolved_by_specific_rule"] > 0.9 and r["categories"]["NAME:PATIENT"] >= 2


def test_tables_override_the_header(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text(_csv([_row(1)]))
    patients = tmp_path / "patients.csv"
    patients.write_text("subject_id,gender,anchor_age\n1001,M,60\n")
    services = tmp_path / "services.csv"
    services.write_text("subject_id,hadm_id,transfertime,prev_service,curr_service\n1001,2001,,,CSURG\n")
    notes, _ = read_notes(src, patients=patients, services=services)
    assert (notes[0].sex, notes[0].service) == ("Male", "CSURG")


SECRET = "Zebediah-Quartermaine"  # note text that must never reach an error message


def _good(tmp_path, name="discharge.csv"):
    path = tmp_path / name
    path.write_text(_csv([_row(1, text=NOTE + SECRET)]))
    return path


def _truncated_gz(path: Path, body: bytes) -> Path:
    data = gzip.compress(body)
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_gz(path: Path, body: bytes) -> Path:
    data = bytearray(gzip.compress(body))
    data[-8] ^= 0xFF  # the CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("discharge.csv", _csv([_row(1)]))
    return path


def _notes_case(make):
    """A bad discharge file; the tables are absent."""
    def build(tmp_path):
        return {"notes": make(tmp_path)}
    return build


def _table_case(table, make):
    """Good notes and one bad table."""
    def build(tmp_path):
        return {"notes": _good(tmp_path), table: make(tmp_path)}
    return build


_BODY = _csv([_row(1, text=NOTE + SECRET), _row(2), _row(3)]).encode()
_PATIENTS = b"subject_id,gender,anchor_age\n1001,F,60\n"
_SERVICES = b"subject_id,hadm_id,transfertime,prev_service,curr_service\n1001,2001,,,MED\n"

# Each bad input, what the one-line message must say, and (where the fix is not in the message) nothing else.
BAD_INPUTS = [
    ("notes-truncated-gz", _notes_case(lambda d: _truncated_gz(d / "discharge.csv.gz", _BODY)),
     r"discharge\.csv\.gz:\d+: the gzip data is truncated or corrupt .*download or compress the file again"),
    ("notes-corrupt-gz", _notes_case(lambda d: _corrupt_gz(d / "discharge.csv.gz", _BODY)),
     r"discharge\.csv\.gz:\d+: the gzip data is truncated or corrupt"),
    ("notes-directory", _notes_case(lambda d: d),
     r": is a directory; expected MIMIC-IV-Note discharge\.csv"),
    ("notes-missing", _notes_case(lambda d: d / "nope.csv"), r"nope\.csv: no such file; expected MIMIC-IV-Note"),
    ("notes-zip", _notes_case(lambda d: _zip(d / "discharge.zip")),
     r"discharge\.zip: is a ZIP archive .*unzip it"),
    ("notes-not-utf8", _notes_case(lambda d: _write(d / "d.csv", _BODY.replace(b"Percocet", b"Perc\xf6cet"))),
     r"d\.csv:12: not UTF-8 \(byte 0xf6\); re-encode the file as UTF-8"),
    ("notes-unclosed-quote", _notes_case(lambda d: _write(d / "d.csv", _BODY + b'"9-DS-1",1,2,DS,1,,,"x\n')),
     r"d\.csv:\d+: a quoted field opened in the row starting here runs to the end of the file"),
    ("notes-stray-quote", _notes_case(lambda d: _write(d / "d.csv", _BODY + b'9-DS-1,1,2,DS,1,,,"x"y\n')),
     r"d\.csv:\d+: malformed CSV .*check the quoting"),
    ("notes-runaway-quote",
     _notes_case(lambda d: _write(d / "d.csv", _BODY + b'9,1,2,DS,1,,,"' + b"x" * (CSV_FIELD_LIMIT + 1))),
     r"d\.csv:\d+: a field longer than 16,777,216 characters"),
    ("notes-missing-columns", _notes_case(lambda d: _write(d / "d.csv", b"note_id,text\n1,hello\n")),
     r"d\.csv:1: missing column\(s\) \['subject_id'.*found note_id,text$"),
    ("notes-tab-separated", _notes_case(lambda d: _write(d / "d.tsv", _BODY.replace(b",", b"\t"))),
     r"d\.tsv:1: missing column\(s\).*one tab-separated column: save the file as comma-separated"),
    # without a header row the first note would be the header: its text must not reach the message
    ("notes-no-header", _notes_case(lambda d: _write(d / "d.csv", _BODY.split(b"\n", 1)[1])),
     r"d\.csv:1: missing column\(s\).*a first row of 8 value\(s\), not column names: add the header row"),
    ("notes-empty", _notes_case(lambda d: _write(d / "d.csv", b"")), r"d\.csv:1: empty file"),
    ("patients-not-utf8", _table_case("patients", lambda d: _write(d / "patients.csv", _PATIENTS + b"1002,\xe9,7\n")),
     r"patients\.csv:3: not UTF-8"),
    ("patients-unclosed-quote",
     _table_case("patients", lambda d: _write(d / "patients.csv", _PATIENTS + b'"1002,F,7\n')),
     r"patients\.csv:3: a quoted field opened .* runs to the end of the file"),
    ("patients-wrong-width", _table_case("patients", lambda d: _write(d / "patients.csv", _PATIENTS + b"1002,F\n")),
     r"patients\.csv:3: 2 field\(s\), expected 3"),
    ("patients-missing", _table_case("patients", lambda d: d / "patients.csv"),
     r"patients\.csv: no such file; expected MIMIC-IV patients\.csv"),
    ("patients-truncated-gz", _table_case("patients", lambda d: _truncated_gz(d / "patients.csv.gz", _PATIENTS * 500)),
     r"patients\.csv\.gz:\d+: the gzip data is truncated or corrupt"),
    ("services-missing-columns", _table_case("services", lambda d: _write(d / "services.csv", _PATIENTS)),
     r"services\.csv:1: missing column\(s\) \['hadm_id', 'curr_service'\]"),
    ("services-directory", _table_case("services", lambda d: _mkdir(d / "services")),
     r"services: is a directory; expected MIMIC-IV services\.csv"),
    ("services-stray-quote",
     _table_case("services", lambda d: _write(d / "services.csv", _SERVICES + b'1,2,"x"y,,MED\n')),
     r"services\.csv:3: malformed CSV"),
    ("services-not-utf8", _table_case("services", lambda d: _write(d / "services.csv", _SERVICES + b"1,2,,,M\xc9D\n")),
     r"services\.csv:3: not UTF-8"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("build, expected", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_one_clear_line(tmp_path, build, expected):
    paths = build(tmp_path)
    limit = csv.field_size_limit()
    with pytest.raises(DataError) as e:
        read_notes(paths["notes"], patients=paths.get("patients"), services=paths.get("services"))
    [problem] = e.value.problems
    assert re.search(expected, problem), problem
    assert "\n" not in problem and SECRET not in str(e.value) and "Percocet" not in str(e.value)
    assert csv.field_size_limit() == limit  # the reader's raised limit does not outlive it


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_says_how_to_fix_it(tmp_path):
    src = _good(tmp_path)
    src.chmod(0)
    with pytest.raises(DataError, match=r"not readable \(permission denied\); give your user read access"):
        read_notes(src)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_file_that_fails_to_read_is_a_clear_error():
    with pytest.raises(DataError, match=r"/proc/self/mem: cannot be read \(Input/output error\)"):
        read_notes(Path("/proc/self/mem"))


# Inputs that look odd but are valid: each must be read as the plain file is.
ODD_BUT_VALID = [
    ("utf8-bom", lambda d: _write(d / "d.csv", b"\xef\xbb\xbf" + _BODY)),
    ("crlf", lambda d: _write(d / "d.csv", _BODY.replace(b"\n", b"\r\n"))),
    ("gzip-named-csv", lambda d: _write(d / "d.csv", gzip.compress(_BODY))),
    ("plain-named-gz", lambda d: _write(d / "d.csv.gz", _BODY)),
    ("bom-gzip", lambda d: _write(d / "d.csv.gz", gzip.compress(b"\xef\xbb\xbf" + _BODY))),
]


@pytest.mark.parametrize("make", [c[1] for c in ODD_BUT_VALID], ids=[c[0] for c in ODD_BUT_VALID])
def test_odd_but_valid_files_read_like_the_plain_one(tmp_path, make):
    plain = read_notes(_write(tmp_path / "plain.csv", _BODY))[0]
    odd = read_notes(make(tmp_path))[0]
    assert [n.note_id for n in odd] == ["1-DS-1", "2-DS-1", "3-DS-1"]
    assert [n.text for n in odd] == [n.text for n in plain]


def test_a_note_longer_than_csvs_default_field_limit_is_read(tmp_path):
    long_note = NOTE + ("Pt tolerated the procedure well without complication. " * 4000)
    assert len(long_note) > 131072
    src = _write(tmp_path / "d.csv.gz", gzip.compress(_csv([_row(1, text=long_note), _row(2)]).encode()))
    notes, _ = read_notes(src)
    assert [n.note_id for n in notes] == ["1-DS-1", "2-DS-1"] and len(notes[0].text) > 131072




# ------------------------------------------------------------------------------------- through prepare

def test_prepare_from_mimic_splits_by_subject(tmp_path, repo_root):
    from medgen.data import prepare

    from conftest import tiny_config

    src = tmp_path / "discharge.csv"
    # Ten notes from five patients. Each note carries its subject as an unmasked Unit No, so every written
    # record can be traced back to its patient. With val/test at 0.2/0.1, a split by note would put a
    # single note in test and its sibling elsewhere; a split by patient keeps both together.
    subjects = [5000 + i // 2 for i in range(10)]
    src.write_text(_csv([_row(i, text=NOTE.replace("Unit No:   ___", f"Unit No:   {s}"), subject=s)
                         for i, s in enumerate(subjects)]))
    cfg = tiny_config(tmp_path / "run", "data.source=mimic", f"data.notes={src}")
    result = prepare.run(cfg)
    assert result.import_report["notes"] == 10 and result.phi_category_counts["NAME:PATIENT"] > 0
    # the notes differ in their surrogate names, so none is dropped as a duplicate
    assert result.duplicates_removed == {"exact": 0, "near": 0} and sum(result.counts.values()) == 10
    per_split = {split: {header_value(json.loads(line)["output"], "Unit No")
                         for line in Path(result.files[split]).read_text().splitlines()}
                 for split in SPLITS}
    assert all(per_split.values()), per_split
    for a, b in itertools.combinations(SPLITS, 2):
        assert not per_split[a] & per_split[b], f"a patient in both {a} and {b}: {per_split}"
    assert set().union(*per_split.values()) == {str(s) for s in subjects}
    assert (result.out_dir / "DATASET_CARD.md").read_text().count("| MEDICINE |") == 1


def test_prepare_reports_the_rule_figures_in_manifest_and_card(tmp_path, repo_root):
    from medgen.data import prepare

    from conftest import tiny_config

    cfg = tiny_config(tmp_path / "run", "data.source=mimic", f"data.notes={CORPUS / 'discharge.csv'}",
                      f"data.patients={CORPUS / 'patients.csv'}", f"data.services={CORPUS / 'services.csv'}",
                      "data.mimic_non_phi=placeholder")
    result = prepare.run(cfg)
    manifest = json.loads((result.out_dir / "manifest.json").read_text())["import"]
    assert manifest["resolved_by_specific_rule"] >= 0.9 and manifest["non_phi_treatment"] == "placeholder"
    assert manifest["rules"]["masked-section"] >= 30
    card = (result.out_dir / "DATASET_CARD.md").read_text()
    assert "## MIMIC-IV-Note import" in card and f"| masked-section | {manifest['rules']['masked-section']} |" in card
    # non-PHI masks are no PHI spans: the spans the card counts are the PHI surrogates only
    assert "NON-PHI" not in card and sum(result.phi_category_counts.values()) == sum(manifest["categories"].values())


def test_a_bad_file_stops_prepare_with_one_line_and_writes_nothing(tmp_path, repo_root):
    from typer.testing import CliRunner

    from medgen.cli import app

    src = _truncated_gz(tmp_path / "discharge.csv.gz", _BODY)
    out = CliRunner().invoke(app, ["prepare", "--source", "mimic", "--notes", str(src),
                                   "--set", f"run_dir={tmp_path / 'run'}"])
    assert out.exit_code == 2, out.output
    said = " ".join(out.output.split())  # the console wraps long lines
    assert f"{src}:" in said and "gzip data is truncated or corrupt" in said and "Traceback" not in said
    assert SECRET not in out.output and not (tmp_path / "run" / "prepare").exists()


def test_follow_ups_fall_after_the_discharge_day_never_on_it():
    # The edge the fabricated corpus never reaches: across many stays, the first follow-up of a section can be
    # the day after discharge, never the discharge day itself; a course end likewise.
    from faker import Faker

    fake = Faker("en_US")
    earliest = set()
    for seed in range(3000):
        fake.seed_instance(seed)
        ident = Identity.make(fake, random.Random(seed), "Female", "")
        first = ident.date("followup", "followup instructions")
        assert first > ident.person.discharge, seed
        assert ident.date("course", "discharge instructions") > ident.person.discharge, seed
        earliest.add((first - ident.person.discharge).days)
    assert min(earliest) == 1
