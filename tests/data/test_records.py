"""Synthetic records: reproducible, every PHI value a matching span, each layout's header and headings, one
consistent patient (identity, stay, condition, history, medications, allergies) per record, and real variety."""

import datetime as dt
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
import simple_icd_10_cm as icd

from medgen.data import card
from medgen.data.phi import dates as D
from medgen.data.record_format import BY_NAME, header_value, parse, person_name
from medgen.data.synthetic import Record, records
from medgen.data.synthetic.clinical import (
    ALLERGIES,
    COMPLICATIONS,
    HISTORY,
    LABS,
    SERVICES,
    Condition,
    icd10_description,
    med,
)
from medgen.evaluate import metrics

# Every record names its patient, doctor and hospital, and gives an MRN, dates, an age and a phone.
IDENTITY_CATEGORIES = {"NAME:PATIENT", "NAME:DOCTOR", "ID:MEDICALRECORD", "DATE", "AGE", "LOCATION:HOSPITAL",
                       "CONTACT:PHONE"}
CONDITIONS = [(service, c) for service, conditions in SERVICES.items() for c in conditions]
_FIELD = re.compile(r"\{([^{}]+)\}")


@pytest.fixture(scope="module", params=["compact", "full"])
def sample(request):
    return list(records(150, seed=7, profile=request.param))


@pytest.fixture(scope="module")
def full_sample():
    return list(records(150, seed=7, profile="full"))


# --- the clinical tables -------------------------------------------------------------------------------------

def test_every_service_has_eight_conditions_and_a_hundred_in_all():
    counts = {service: len(conditions) for service, conditions in SERVICES.items()}
    assert min(counts.values()) >= 8, counts
    assert sum(counts.values()) >= 100
    diagnoses = [c.diagnosis.lower() for _, c in CONDITIONS]
    assert len(set(diagnoses)) == len(diagnoses)


@pytest.mark.parametrize("what, code", [(c.diagnosis, c.icd10) for _, c in CONDITIONS]
                         + [(h.name, h.icd10) for h in HISTORY.values()]
                         + [(x.name, x.icd10) for x in COMPLICATIONS])
def test_every_code_is_a_billable_icd10cm_code(what, code):
    assert icd.is_valid_item(code) and icd.is_leaf(code), (what, code)
    assert icd10_description(code) == icd.get_description(code)


@pytest.mark.parametrize("service, cond", CONDITIONS, ids=[c.icd10 for _, c in CONDITIONS])
def test_every_condition_is_complete_and_well_formed(service, cond: Condition):
    assert cond.complaints and cond.meds and cond.course and cond.exam
    assert cond.min_age <= cond.max_age and cond.sex in (None, "Male", "Female")
    for m in cond.meds:
        med(m)  # raises on a medication that does not read "Drug dose unit ROUTE frequency"
    names = [spec.split(" ")[0] for spec in cond.labs]
    assert set(names) <= set(LABS), set(names) - set(LABS)
    for text in (*cond.course, cond.exam, cond.imaging):
        for f in _FIELD.findall(text):
            assert f in ("Pr", "pr", "pos", "dwt") or f in names or re.fullmatch(r"[\d.]+-[\d.]+", f), (text, f)
    assert set(cond.history) | set(cond.needs) <= set(HISTORY)


def test_comorbidity_regimens_read_as_medications():
    for h in HISTORY.values():
        for regimen in h.regimens:
            for m in regimen:
                med(m)


# --- records -------------------------------------------------------------------------------------------------

def test_same_seed_same_records():
    for profile in ("compact", "full"):
        a = [(r.text, r.spans) for r in records(5, seed=3, profile=profile)]
        b = [(r.text, r.spans) for r in records(5, seed=3, profile=profile)]
        c = [r.text for r in records(5, seed=4, profile=profile)]
        assert a == b and [t for t, _ in a] != c


def test_records_are_drawn_among_the_named_layouts_only():
    from medgen.core.constants import LAYOUTS
    from medgen.data.record_format import STYLES
    from medgen.data.synthetic.layouts import BY_LAYOUT

    assert LAYOUTS == tuple(s.name for s in STYLES) == tuple(BY_LAYOUT)  # configs name the layouts the engine writes
    for profile in ("compact", "full"):
        drawn = Counter(r.layout for r in records(60, seed=2, profile=profile, layout=["letter", "va"]))
        assert set(drawn) == {"letter", "va"}, drawn
        assert {r.layout for r in records(10, seed=2, profile=profile, layout="tabular")} == {"tabular"}
        assert set(Counter(r.layout for r in records(200, seed=2, profile=profile))) == set(LAYOUTS)


def test_same_seed_same_records_in_another_process():
    # String hashing differs per process: a draw that iterates a set would give each process other records.
    code = ("import hashlib; from medgen.data.synthetic import records; print(hashlib.sha256(''.join("
            "r.text for p in ('compact', 'full') for r in records(60, seed=5, profile=p)).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert len(digests) == 1


def test_every_span_matches_the_text(sample):
    for r in sample:
        assert "{" not in r.text and "}" not in r.text  # a template field left unfilled
        assert {s.category for s in r.spans} >= IDENTITY_CATEGORIES
        for s in r.spans:
            assert r.text[s.start:s.end] == s.text, (s, r.text[s.start:s.end])
            assert s.text and "\n" not in s.text
        ordered = sorted(r.spans, key=lambda s: s.start)
        assert all(a.end <= b.start for a, b in zip(ordered, ordered[1:]))


def test_layout_has_every_header_and_heading(sample):
    for r in sample:
        layout = parse(r.text)
        assert layout.missing_fields == [] and set(layout.sections) >= set(BY_NAME[r.layout].headings), r.layout
        assert layout.section_fraction == 1.0


def test_every_layout_is_written_in_both_profiles(sample):
    layouts = Counter(r.layout for r in sample)
    assert set(layouts) == set(BY_NAME) and min(layouts.values()) >= 5, layouts


def test_every_record_passes_the_evaluate_consistency_checks(sample):
    diagnoses = metrics.diagnosis_services(r.text for r in sample)
    for r in sample:
        checks = metrics.consistency(r.text, diagnoses)
        assert False not in checks.values(), checks


def test_full_notes_say_enough_for_every_check(full_sample):
    # A compact record may leave pronouns out; a full note gives every check something to check.
    diagnoses = metrics.diagnosis_services(r.text for r in full_sample)
    results = [metrics.consistency(r.text, diagnoses) for r in full_sample]
    # A weekday beside a date, or a stated length of stay, is in some notes only, as in real ones.
    some = {"weekday_matches_date", "stay_length_matches_dates"}
    # A letter or a short summary may never put a title before the surname.
    most = {"title_matches_sex"}
    for check in metrics.CHECKS:
        checked = [r[check] for r in results if r[check] is not None]
        assert all(checked) and len(checked) >= (0.05 if check in some else 0.7 if check in most else 0.8) * \
            len(results), \
            (check, len(checked), len(results))


def _date(text: str, field: str) -> dt.date:
    return D.resolve(D.parse(header_value(text, field)), dt.date(2000, 1, 1))


def _condition(r: Record) -> Condition:
    """The condition of the record's service whose diagnosis the Discharge Diagnosis states."""
    body = metrics.sections(r.text)["Discharge Diagnosis"].lower()
    found = [c for c in SERVICES[r.service] if c.diagnosis.lower() in body]
    assert found, f"no {r.service} diagnosis in {body!r}"
    return max(found, key=lambda c: len(c.diagnosis))


def test_identity_stay_and_condition_agree(sample):
    for r in sample:
        assert header_value(r.text, "Sex")[0] == r.sex[0] and header_value(r.text, "Service").upper() == r.service
        assert header_value(r.text, "Unit No") == r.patient_id
        other = "Ms." if r.sex == "Male" else "Mr."
        admit, discharge, dob = (_date(r.text, k) for k in ("Admission Date", "Discharge Date", "Date of Birth"))
        assert admit < discharge
        age = int(next(s.text for s in r.spans if s.category == "AGE"))
        assert admit.year - dob.year - ((admit.month, admit.day) < (dob.month, dob.day)) == age
        cond = _condition(r)
        assert cond.min_age <= age <= cond.max_age and cond.sex in (None, r.sex)
        full_name = next(s for s in r.spans if s.category == "NAME:PATIENT")
        first, last = person_name(full_name.text)
        assert (first.lower(), last.lower()) == tuple(w.lower() for w in person_name(header_value(r.text, "Name")))
        dear = re.search(r"Dear (?:(?:Mr|Mrs|Ms|Miss)\.? )?(\S+)(?: (\S+))?,", r.text)
        assert dear is None or {w.lower() for w in dear.groups() if w} & {first.lower(), last.lower()} or \
            r.layout == "letter", dear
        assert not re.search(rf"\b{re.escape(other)} {re.escape(last)}\b", r.text)
        # No diagnosis of another service anywhere, so the service check cannot be fooled by a comorbidity.
        low = r.text.lower()
        assert not [c.diagnosis for s, c in CONDITIONS if s != r.service and c.diagnosis.lower() in low]
        for s in r.spans:
            if s.category == "DATE" and re.fullmatch(r"\d\d/\d\d/\d{4}", s.text):
                assert dob <= dt.datetime.strptime(s.text, "%m/%d/%Y").date()


def test_the_patient_is_named_in_the_forms_notes_use(sample):
    """Past the header the patient is a surname after a title, a first name, the full name, a listed or capitalised
    name, lower case or with a middle initial; any other NAME:PATIENT span is a relative or friend."""
    forms = Counter()
    for r in sample:
        first, last = person_name(header_value(r.text, "Name"))
        for s in r.spans[1:]:
            if s.category == "NAME:PATIENT" and {w.lower().strip(",.") for w in s.text.split()} & {first.lower(),
                                                                                              last.lower()}:
                forms["upper" if s.text.isupper() else "lower" if s.text.islower() else
                      "listed" if "," in s.text else "one word" if " " not in s.text else "full"] += 1
    assert len(forms) >= 3, forms


def _section_lines(r: Record, heading: str) -> list[str]:
    return [line.strip() for line in metrics.sections(r.text)[heading].splitlines() if line.strip()]


def _listed_meds(r: Record, heading: str) -> list[str]:
    """The medication lines of a section, without list marks, prescriptions and other prose."""
    lines = [re.sub(r"^(\d+\.|[-*]) ", "", line) for line in _section_lines(r, heading)]
    out = []
    for line in lines:
        try:
            med(line)
            out.append(line)
        except ValueError:
            pass
    return out


def _sent_home(r: Record) -> list[str]:
    """The discharge medication lines, less any listed under STOP:."""
    out, label = [], ""
    for line in _section_lines(r, "Discharge Medications"):
        if line.endswith(":"):
            label = line
        elif label != "STOP:" and not line.startswith("RX *"):
            out.append(re.sub(r"^(\d+\.|[-*]) ", "", line))
    return out


def test_history_medications_and_allergies_agree(full_sample):
    for r in full_sample:
        if not {"Medications on Admission", "Past Medical History", "Allergies"} <= set(metrics.sections(r.text)):
            continue  # a layout without a home medication list or history (letters, short summaries)
        cond = _condition(r)
        home = {med(m).name for m in _listed_meds(r, "Medications on Admission")}
        discharge = " ".join(_section_lines(r, "Discharge Medications"))
        for m in cond.meds:
            assert m in discharge, (m, cond.diagnosis)
        # Every comorbidity the note lists brings its home regimen, and a held drug is not sent home.
        pmh = " ".join(_section_lines(r, "Past Medical History"))
        for h in HISTORY.values():
            if re.search(rf"(?m)(^|[-*. ]){re.escape(h.name)}\b", pmh) and any(h.regimens):
                assert any({med(m).name for m in regimen} <= home for regimen in h.regimens), (h.name, home)
        sent_home = _sent_home(r)
        for drug in cond.hold:
            assert not [m for m in sent_home if m.lower().startswith(drug)], (drug, sent_home)
        # Nothing the patient is allergic to is given anywhere in the note.
        allergies = metrics.sections(r.text)["Allergies"]
        rest = r.text.lower().replace(allergies.lower(), "")
        for allergy, drugs in ALLERGIES.items():
            if allergy in allergies:
                assert not [d for d in drugs if re.search(rf"\b{re.escape(d)}\b", rest)], (allergy, r.service)


def test_every_condition_of_every_service_is_generated():
    # The rarest pairs (a sex-specific condition of a ten-condition service) come up about once in 260 records.
    seen = {(r.service, _condition(r).diagnosis) for r in records(4000, seed=11)}
    expected = {(service, c.diagnosis) for service, c in CONDITIONS}
    assert seen == expected, sorted(expected - seen)


# --- variety -------------------------------------------------------------------------------------------------

def test_full_notes_vary_in_length_and_compact_ones_stay_short():
    full = sorted(len(r.text) for r in records(300, seed=21, profile="full"))
    compact = [len(r.text) for r in records(300, seed=21, profile="compact")]
    # MIMIC-IV discharge notes run from a few hundred to several thousand tokens; compact records are what the
    # embedded default trains on, and its time grows with their length.
    assert full[int(0.95 * len(full))] > 3.5 * full[int(0.05 * len(full))]
    assert sum(compact) / len(compact) < 1500 and max(compact) < 2200


def _masked(r: Record) -> str:
    """The record with each PHI value replaced by its category and every digit by #: what is left is wording."""
    text = r.text
    for s in sorted(r.spans, key=lambda s: -s.start):
        text = text[:s.start] + s.category + text[s.end:]
    return re.sub(r"\d", "#", text)


def test_sections_are_written_more_than_one_way(full_sample):
    masked = [(r, metrics.sections(_masked(r))) for r in full_sample]
    for heading in ("History of Present Illness", "Social History", "Physical Exam", "Brief Hospital Course",
                    "Discharge Diagnosis", "Discharge Instructions", "Followup Instructions"):
        openings = Counter(" ".join(bodies[heading].split()[:4]) for _, bodies in masked if heading in bodies)
        assert len(openings) >= 5, (heading, openings.most_common(3))


@pytest.mark.parametrize("profile", ["full", "compact"])
def test_diversity_beats_the_engine_baseline(profile):
    # The card's figures (evaluate-stage definitions) against the old engine's at the same size and profile.
    n = min(card.ENGINE_BASELINE[profile])
    ours = card.diversity([r.text for r in records(n, seed=0, profile=profile)])
    base = card.ENGINE_BASELINE[profile][n]
    assert ours["near_duplicate_rate"] < 0.01
    assert ours["distinct_3"] > (2.0 if profile == "full" else 1.2) * base["distinct_3"], (ours, base)
    assert ours["compression_ratio"] > base["compression_ratio"]


def test_a_thousand_full_records_cover_the_i2b2_categories_in_many_forms():
    from medgen.data.phi.categories import I2B2
    from medgen.data.phi.forms import count_forms

    recs = list(records(1000, seed=0, profile="full"))
    forms = count_forms((r.text, [{"start": s.start, "end": s.end, "category": s.category, "text": s.text}
                                  for s in r.spans]) for r in recs)
    present = [c.name for c in I2B2 if c.name in forms]
    assert len(present) >= 25, sorted(set(c.name for c in I2B2) - set(present))
    assert len(forms["DATE"]) >= 6
    assert len(forms["NAME:PATIENT"]) >= 4 and len(forms["NAME:DOCTOR"]) >= 4
    assert len(forms["AGE"]) >= 3
    contacts = {f for c in ("CONTACT:PHONE", "CONTACT:FAX", "CONTACT:EMAIL", "CONTACT:URL") for f in forms[c]}
    assert len(contacts) >= 4 and any("x" in f or "ext" in f for f in contacts)
    # Realistic rates: the rare identifiers stay rare, the common ones are in nearly every record.
    share = {c: sum(any(s.category == c for s in r.spans) for r in recs) / len(recs) for c in present}
    assert share["DATE"] == share["NAME:PATIENT"] == 1.0 and share["ID:BIOID"] < 0.1 and share["ID:SSN"] < 0.1
