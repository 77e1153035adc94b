"""MIMIC-IV-Note import: surrogate rules on hand-written MIMIC-style snippets, and the CSV reader."""

import csv
import datetime as dt
import gzip
import io
import itertools
import json
import random
import re
from pathlib import Path

import pytest
from faker import Faker

from medgen.constants import SPLITS
from medgen.errors import DataError
from medgen.mimic import Identity, categorize, fill, read_notes
from medgen.record_format import header_value


@pytest.mark.parametrize(
    "line, category, rule",
    [
        ("Name:  ___                 Unit No:   123", "NAME:PATIENT", "name-field"),
        ("Name:  Jane Roe            Unit No:   ___", "ID:MRN", "unit-no"),
        ("Admission Date:  ___              Discharge Date:   02/03/2150", "DATE:ADMISSION", "admission-date"),
        ("Admission Date:  01/02/2150       Discharge Date:   ___", "DATE:DISCHARGE", "discharge-date"),
        ("Date of Birth:  ___             Sex:   F", "DATE:BIRTH", "date-of-birth"),
        ("Dear Ms. ___,", "NAME:PATIENT", "dear-title"),
        ("Mr. ___ is a pleasant gentleman", "NAME:PATIENT", "title"),
        ("Attending: ___.", "NAME:DOCTOR", "doctor"),
        ("Seen by Dr. ___ in clinic", "NAME:DOCTOR", "doctor"),
        ("___, MD", "NAME:DOCTOR", "md-suffix"),
        ("Phone: ___", "CONTACT:PHONE", "phone"),
        ("please call ___ with questions", "CONTACT:PHONE", "phone"),
        ("___ year old woman with CHF", "AGE", "age"),
        ("The patient is a ___ y.o. male", "AGE", "age"),
        ("Your appointment is at ___ AM", "TIME", "time"),
        ("When: ___ at 10:30 AM", "DATE:FOLLOWUP", "followup-when"),
        ("___ 07:45AM BLOOD WBC-7.1 RBC-4.2", "DATE", "lab-line"),
        ("He underwent cardiac catheterization on ___ which showed", "DATE", "date-words"),
        ("transferred from ___ Hospital for evaluation", "LOCATION:HOSPITAL", "hospital"),
        ("Department: ___", "LOCATION:HOSPITAL", "facility"),
        ("Address: ___", "LOCATION:STREET", "address"),
        # no context: the fallback, counted as such
        ("Social history is significant for ___.", "OTHER", "fallback"),
    ],
)
def test_surrogate_rules(line, category, rule):
    i = line.index("___")
    assert categorize(line[:i], line[i + 3:]) == (category, rule)


NOTE = """ \nName:  ___                 Unit No:   ___\n \nAdmission Date:  ___              Discharge Date:   ___\n \n\
Date of Birth:  ___             Sex:   F\n \nService: MEDICINE\n \nAttending: ___.\n \nHistory of Present Illness:\n\
Ms. ___ is a 67 year old woman admitted on ___ with dyspnea.\n \nPertinent Results:\n___ 07:45AM BLOOD WBC-7.1\n\
___ 06:10AM BLOOD WBC-6.0\n \nDischarge Instructions:\nDear Ms. ___,\nCall ___ with questions.\n \n\
Followup Instructions:\nWhen: ___ at 10:30 AM  With: Dr. ___\n"""


def _identity(seed=1, sex="Female"):
    return Identity.make(Faker("en_US"), random.Random(seed), sex, NOTE)


def test_one_identity_and_consistent_dates_per_note():
    ident = _identity()
    text, spans, rules = fill(NOTE, ident, random.Random(0))
    assert "___" not in text
    for s in spans:
        assert text[s["start"]:s["end"]] == s["text"]
    names = [s["text"] for s in spans if s["category"] == "NAME:PATIENT"]
    assert names[0] == ident.person.name and set(names[1:]) == {ident.person.last}
    assert ident.person.age == 67  # read from the unmasked age
    d = lambda label: dt.datetime.strptime(re.search(label + r":\s*(\S+)", text).group(1), "%m/%d/%Y").date()  # noqa: E731
    admit, discharge, dob = d("Admission Date"), d("Discharge Date"), d("Date of Birth")
    assert dob < admit < discharge and abs((admit - dob).days / 365.25 - 67) < 1.5
    lab_dates = [dt.datetime.strptime(m, "%m/%d/%Y").date() for m in re.findall(r"(\S+) \d\d:\d\dAM BLOOD", text)]
    assert len(lab_dates) == 2 and all(admit <= x <= discharge for x in lab_dates)
    followup = d("When")
    assert followup > discharge
    assert rules["fallback"] == 0


def _csv(rows, header=("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text")):
    buf = io.StringIO()
    w = csv.writer(buf)
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
    assert r["resolved_by_specific_rule"] == 1.0 and r["categories"]["NAME:PATIENT"] == 6
    # same seed, same surrogates; another seed, others
    assert read_notes(src, seed=0)[0][0].text == notes[0].text != read_notes(src, seed=1)[0][0].text


def test_tables_override_the_header(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text(_csv([_row(1)]))
    patients = tmp_path / "patients.csv"
    patients.write_text("subject_id,gender,anchor_age\n1001,M,60\n")
    services = tmp_path / "services.csv"
    services.write_text("subject_id,hadm_id,transfertime,prev_service,curr_service\n1001,2001,,,CSURG\n")
    notes, _ = read_notes(src, patients=patients, services=services)
    assert (notes[0].sex, notes[0].service) == ("Male", "CSURG")


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"note_id,text\n1,hello\n", r":1: missing column\(s\)"),
        (b"", ":1: empty file"),
        (_csv([_row(1)]).encode() + b'"5-DS-1","1","2","DS","1","","","\xff\xfe bad"\n', "not UTF-8"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, content, expected):
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        read_notes(src)


def test_prepare_from_mimic_splits_by_subject(tmp_path, repo_root):
    from conftest import tiny_config
    from medgen import prepare

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
