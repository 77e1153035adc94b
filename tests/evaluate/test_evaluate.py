"""evaluate on hand-built run folders of engine records: planted memorization trips the gate, a clean corpus
passes the privacy parts, consistency checks catch planted contradictions, utility scores a CRF tagger, and the
report holds no PHI value."""

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest

from medgen.core.config import load_config
from medgen.core.constants import INSTRUCTION_INLINE_MARKUP, SPLIT_FILE, SPLIT_PHI_FILE
from medgen.core.errors import FailureKind, GateFailed
from medgen.core.results import EvaluateResult, GenerateResult, PrepareResult
from medgen.data import markup
from medgen.data.prompts import make_input
from medgen.data.synthetic import Record, Span, records
from medgen.evaluate import metrics
from medgen.evaluate import stage as evaluate

N_TRAIN, N_TEST, N_GEN = 60, 30, 30
PRIVACY = ("PHI reuse", "verbatim overlap", "near-duplicates of training records")


def config(run_dir: Path, *extra: str):
    # The external gold sets get their own test: the others measure utility on the test split only.
    return load_config(None, [f"run_dir={run_dir}", "evaluate.utility_max_records=30",
                              "evaluate.crf_max_iterations=30", "evaluate.utility_test_sets=[]", *extra])


def spans_of(r: Record) -> list[dict]:
    return [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_prepare(cfg, train: list[Record], test: list[Record]) -> None:
    out = cfg.stage_dir("prepare")
    out.mkdir(parents=True)
    for split, recs in (("train", train), ("test", test)):
        write_jsonl(out / SPLIT_FILE.format(split=split),
                    [{"instruction": INSTRUCTION_INLINE_MARKUP, "input": make_input(r.sex, r.service),
                      "output": markup.markup(r.text, r.spans)} for r in recs])
        write_jsonl(out / SPLIT_PHI_FILE.format(split=split),
                    [{"index": i, "spans": spans_of(r)} for i, r in enumerate(recs)])
    PrepareResult(out_dir=out, wall_s=0.0, fingerprint="prepare-fp", source="synthetic", seed=0, phi_markup="inline",
                  counts={"train": len(train), "test": len(test)}, duplicates_removed={}, sex_service_counts={},
                  phi_category_counts={}, token_stats={}, files={}).write(cfg.to_yaml())


def write_generate(cfg, gen: list[Record], rejected: list[dict] = ()) -> None:
    out = cfg.stage_dir("generate")
    out.mkdir(parents=True)
    ids = [f"r{i:06d}" for i in range(len(gen))]
    write_jsonl(out / "records.jsonl", [{"id": i, "sex": r.sex, "service": r.service, "text": r.text, "seed": 0,
                                         "tokens": 1, "seconds": 0.0, "attempts": 1} for i, r in zip(ids, gen)])
    write_jsonl(out / "records.phi.jsonl", [{"index": n, "id": i, "spans": spans_of(r)}
                                            for n, (i, r) in enumerate(zip(ids, gen))])
    write_jsonl(out / "rejected.jsonl", list(rejected))
    planned = len(gen) + len(rejected)
    reasons: dict[str, int] = {}
    for r in rejected:
        for x in r["reasons"]:
            reasons[x] = reasons.get(x, 0) + 1
    GenerateResult(out_dir=out, wall_s=0.0, fingerprint="generate-fp", mix="train", seed=0, shard=0, shards=1,
                   counts={"planned": planned, "valid": len(gen), "rejected": len(rejected),
                           "valid_fraction": round(len(gen) / planned, 4)},
                   sex_service_counts={}, rejections_by_reason=reasons, failed_attempts=0, phi_category_counts={},
                   tokens=0, generation_s=0.0, tokens_per_s=None, records_per_s=None, slots=1, resumed=0,
                   torn_lines_dropped=0, files={}).write(cfg.to_yaml())


def swap_identity(r: Record, donor: Record) -> Record:
    """`r` with the donor's patient name, MRN and phone in place of its own: reused PHI in fresh text."""
    full = next(s.text for s in donor.spans if s.category == "NAME:PATIENT")
    new = {"ID:MEDICALRECORD": next(s.text for s in donor.spans if s.category == "ID:MEDICALRECORD"),
           "CONTACT:PHONE": next(s.text for s in donor.spans if s.category == "CONTACT:PHONE")}
    parts, spans, pos = [], [], 0
    for s in r.spans:
        if s.category == "NAME:PATIENT":
            value = full if " " in s.text else full.split()[-1]
        else:
            value = new.get(s.category, s.text)
        parts.append(r.text[pos:s.start])
        start = sum(map(len, parts))
        parts.append(value)
        spans.append(Span(start, start + len(value), s.category, value))
        pos = s.end
    parts.append(r.text[pos:])
    return Record(r.sex, r.service, "".join(parts), r.patient_id, spans)


@pytest.fixture(scope="module")
def engine():
    # In MIMIC's layout: the plants below edit its labels (the other layouts are the data tests' concern).
    train = list(records(N_TRAIN, seed=11, profile="compact", layout="mimic"))
    test = list(records(N_TEST, seed=12, profile="compact", layout="mimic"))
    clean = list(records(N_GEN, seed=13, profile="compact", layout="mimic"))
    return train, test, clean


def run_eval(tmp_path: Path, train, test, gen, rejected=()) -> EvaluateResult:
    cfg = config(tmp_path)
    write_prepare(cfg, train, test)
    write_generate(cfg, gen, rejected)
    return evaluate.run(cfg)


def privacy_reasons(result: EvaluateResult) -> list[str]:
    return [r for r in result.gate["reasons"] if r.startswith(PRIVACY)]


@pytest.fixture(scope="module")
def clean_result(engine, tmp_path_factory):
    train, test, clean = engine
    return run_eval(tmp_path_factory.mktemp("clean"), train, test, clean)


def test_clean_corpus_passes_privacy_and_utility(clean_result):
    r = clean_result
    assert privacy_reasons(r) == []
    assert r.gate["passed"], r.gate["reasons"]
    assert r.sizes == {"generated": N_GEN, "train": N_TRAIN, "test": N_TEST}
    assert r.privacy["verbatim"]["excess"]["window_fraction"] <= 0.05
    # A tagger trained on the training split finds the test split's PHI.
    assert r.utility["train"]["micro"]["f1"] > 0.5
    assert r.utility["records_per_tagger"] == 30 and r.utility["test_records"] == N_TEST
    assert set(r.utility["synthetic"]["per_category"]) >= {"NAME:PATIENT", "ID:MEDICALRECORD", "DATE"}
    r.raise_for_gate()


def test_planted_copies_and_reused_phi_trip_the_gate(engine, tmp_path):
    train, test, clean = engine
    copies = train[:10]
    reused = [swap_identity(r, d) for r, d in zip(clean[10:20], train[20:30])]
    r = run_eval(tmp_path, train, test, copies + reused + clean[20:])
    reasons = privacy_reasons(r)
    assert any(x.startswith("PHI reuse (patient_name)") for x in reasons), reasons
    assert any(x.startswith("PHI reuse (mrn)") for x in reasons)
    assert any(x.startswith("PHI reuse (name_dob)") for x in reasons)
    assert any(x.startswith("verbatim overlap") for x in reasons)
    assert any(x.startswith("near-duplicates of training records") for x in reasons)
    assert not r.gate["passed"]
    with pytest.raises(GateFailed) as e:
        r.raise_for_gate()
    assert e.value.kind is FailureKind.GATE and e.value.reasons == r.gate["reasons"]
    # A verbatim record shares its whole length with training.
    assert r.privacy["verbatim"]["generated"]["longest_run_max"] >= max(len(metrics.TOKEN_RE.findall(c.text))
                                                                        for c in copies)
    assert r.privacy["near_duplicates_of_train"]["generated"] == pytest.approx(10 / N_GEN, abs=0.01)


def test_each_memorization_figure_detects_its_plant(engine, tmp_path):
    train, test, clean = engine
    # Reused identities in fresh text: PHI reuse only.
    swapped = [swap_identity(r, d) for r, d in zip(clean, train)]
    r = run_eval(tmp_path / "phi", train, test, swapped)
    assert r.privacy["phi_reuse"]["excess"]["phone"] > 0.9
    assert [x for x in privacy_reasons(r) if not x.startswith("PHI reuse")] == []
    # Training records with a word changed every 80: still near-duplicates and long verbatim runs.
    edited = []
    for t in train[:N_GEN]:
        words = t.text.split(" ")
        edited.append(Record(t.sex, t.service, " ".join(w + "x" if i % 80 == 79 else w for i, w in enumerate(words)),
                             t.patient_id, []))
    r = run_eval(tmp_path / "edited", train, test, edited)
    assert r.privacy["near_duplicates_of_train"]["generated"] > 0.9
    assert r.privacy["near_duplicates_of_train"]["control"] == 0.0
    assert r.privacy["verbatim"]["excess"]["window_fraction"] > 0.2
    verbatim = r.privacy["verbatim"]
    assert verbatim["generated"]["longest_run_median"] > verbatim["control"]["longest_run_median"]


def test_valid_fraction_and_adherence_come_from_generate(engine, tmp_path):
    train, test, clean = engine
    rejected = [{"id": f"x{i}", "sex": "Male", "service": "CARDIOLOGY", "attempts": 3, "reasons": ["wrong sex"]}
                for i in range(5)]
    r = run_eval(tmp_path, train, test, clean[:20], rejected)
    assert r.validity["valid_fraction"] == 0.8
    assert r.validity["rejections_by_reason"] == {"wrong sex": 5}
    cardio = r.validity["adherence"]["generated"]["CARDIOLOGY"]
    assert cardio["sex"] < 1.0 and cardio["service"] == 1.0
    assert any(x.startswith("valid fraction 0.8 < gate.min_valid_fraction 0.9") for x in r.gate["reasons"])
    assert r.validity["markup"]["generated"]["spans_aligned_fraction"] == 1.0


def _replace_date(text: str, label: str, new: dt.date) -> str:
    return re.sub(rf"({label}: )\d\d/\d\d/\d{{4}}", lambda m: m[1] + new.strftime("%m/%d/%Y"), text, count=1)


def test_consistency_checks_catch_planted_contradictions():
    recs = list(records(40, seed=5, profile="full", layout="mimic"))  # the plants edit MIMIC's labels
    diagnoses = metrics.diagnosis_services(r.text for r in recs)
    for r in recs:
        assert all(v is not False for v in metrics.consistency(r.text, diagnoses).values()), r.service
    female = next(r for r in recs if r.sex == "Female" and metrics.consistency(r.text)["title_matches_sex"])
    male = next(r for r in recs if r.sex == "Male")

    dob = metrics.parse_date(re.search(r"Date of Birth: (\S+)", female.text)[1])
    older = _replace_date(female.text, "Date of Birth", dob - dt.timedelta(days=365 * 10))
    assert metrics.consistency(older)["age_matches_dob"] is False

    assert metrics.consistency(re.sub(r"\b(?:Mrs|Ms|Miss)\b\.?", "Mr.", female.text))["title_matches_sex"] is False
    assert metrics.consistency(male.text.replace(" his ", " her ").replace(" he ", " she ").replace("He ", "She "))[
        "pronouns_match_sex"] is False

    discharge = metrics.parse_date(re.search(r"Discharge Date: (\S+)", female.text)[1])
    head, _, follow = female.text.partition("Followup Instructions:")
    early = head + "Followup Instructions:" + re.sub(r"\d\d/\d\d/\d{4}", (discharge - dt.timedelta(days=3))
                                                     .strftime("%m/%d/%Y"), follow, count=1)
    assert metrics.consistency(early)["followups_after_discharge"] is False
    swapped = _replace_date(_replace_date(female.text, "Admission Date", discharge), "Discharge Date",
                            discharge - dt.timedelta(days=4))
    assert metrics.consistency(swapped)["admission_before_discharge"] is False

    cardio = next(r for r in recs if r.service == "CARDIOLOGY")
    assert metrics.consistency(cardio.text, diagnoses)["service_fits_diagnosis"] is True
    assert metrics.consistency(cardio.text.replace("Service: CARDIOLOGY", "Service: UROLOGY"), diagnoses)[
        "service_fits_diagnosis"] is False
    unknown = re.sub(r"(?s)Discharge Diagnosis:.*?Discharge Condition:", "Discharge Condition:", cardio.text)
    assert metrics.consistency(unknown, diagnoses)["service_fits_diagnosis"] is None
    assert metrics.consistency(cardio.text)["service_fits_diagnosis"] is None  # no reference: no verdict

    summary = metrics.consistency_summary([metrics.consistency(t) for t in (female.text, older)])
    assert summary["age_matches_dob"] == {"checked": 2, "failed": 1, "unknown": 0, "failed_fraction": 0.5}


def test_entity_scores_are_exact_span_and_category():
    gold = [["B-NAME:PATIENT", "I-NAME:PATIENT", "O", "B-DATE", "O"]]
    pred = [["B-NAME:PATIENT", "O", "O", "B-DATE", "I-DATE"]]
    s = metrics.entity_scores(gold, pred)
    assert s["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    s = metrics.entity_scores(gold, gold)
    assert s["micro"]["f1"] == 1.0 and s["per_category"]["DATE"]["support"] == 1
    words, labels = metrics.bio("Name: Avery Lopez on 03/14/2021.", [
        {"start": 6, "end": 17, "category": "NAME:PATIENT", "text": "Avery Lopez"},
        {"start": 21, "end": 31, "category": "DATE", "text": "03/14/2021"}])
    assert labels == ["O", "O", "B-NAME:PATIENT", "I-NAME:PATIENT", "O", "B-DATE", "I-DATE", "I-DATE", "I-DATE",
                      "I-DATE", "O"]


def test_longest_run_is_exact():
    texts = ["a b c d e f g h", "x y c d e f q r", "z z z"]
    v = metrics.Vocabulary()
    ref, _ = v.encode(texts[:1])
    query, _ = v.encode(texts[1:] + [""])
    out = metrics.verbatim_overlap(metrics.NgramHashes(query), metrics.NgramHashes(ref), 3)
    assert out["longest_run_max"] == 4  # c d e f
    assert out["window_fraction"] == round(2 / 7, 4)  # "c d e", "d e f" of x..r's six and z z z's one
    assert out["records_with_window_fraction"] == round(1 / 3, 4)


def test_report_holds_figures_but_no_phi(clean_result, engine):
    out = clean_result.out_dir
    for name in ("REPORT.md", "report.html", "metrics.json", "manifest.json", "length_histogram.png",
                 "phi_per_record.png"):
        assert (out / name).is_file(), name
    assert (out / "manifest.json").stat().st_mode & 0o077 == 0
    html_text = (out / "report.html").read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_text)
    assert len(images) == 2
    # One released record closes report.html, its spans marked (the file is owner-only); nothing else holds text.
    figures_html, _, sample = html_text.partition("<h2>A released record, its PHI spans marked</h2>")
    assert sample.count("<mark ") == len(clean_result_spans(out)) and (out / "report.html").stat().st_mode & 0o077 == 0
    # Base64 images could hold any short string by chance; the text around them is what must be clean.
    readable = "\n".join([re.sub(r"base64,[A-Za-z0-9+/=]+", "", figures_html),
                          *((out / n).read_text() for n in ("REPORT.md", "metrics.json", "manifest.json"))])
    assert "## 4. Privacy and memorization" in (out / "REPORT.md").read_text()
    values = {s.text for recs in engine for r in recs for s in r.spans
              if s.category not in ("AGE", "LOCATION:STATE") and len(s.text) >= 5}
    assert values
    leaked = sorted(v for v in values if v in readable)
    assert leaked == []
    assert json.loads((out / "metrics.json").read_text())["canaries"] is None


def clean_result_spans(evaluate_dir: Path) -> list[dict]:
    """The spans of the first released record, which report.html shows."""
    return json.loads((evaluate_dir.parent / "generate" / "records.phi.jsonl").read_text().splitlines()[0])["spans"]


def test_empty_or_unlabelled_corpus_fails_closed(engine, tmp_path):
    train, test, clean = engine
    rejected = [{"id": f"x{i}", "sex": "Female", "service": "MEDICINE", "attempts": 3, "reasons": ["bad markup"]}
                for i in range(4)]
    r = run_eval(tmp_path / "empty", train, test, [], rejected)
    assert r.sizes["generated"] == 0 and r.utility is None
    assert r.validity["markup"]["generated"]["well_formed_fraction"] == 0.0
    assert any(x.startswith("utility not measured") for x in r.gate["reasons"])
    assert any(x.startswith("verbatim overlap not measured") for x in r.gate["reasons"])
    assert (r.out_dir / "report.html").is_file()

    # Without inline markup the model writes no labels: no utility, but names and MRNs still come from headers.
    cfg = config(tmp_path / "unlabelled")
    write_prepare(cfg, train, test)
    manifest = cfg.stage_dir("prepare") / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"phi_markup": "inline"', '"phi_markup": "none"'))
    for split, recs in (("train", train), ("test", test)):
        write_jsonl(cfg.stage_dir("prepare") / SPLIT_FILE.format(split=split),
                    [{"instruction": "i", "input": make_input(x.sex, x.service), "output": x.text} for x in recs])
    write_generate(cfg, train[:10] + clean[10:])
    r = evaluate.run(cfg)
    assert r.utility is None and r.fidelity["phi_per_record"]["DATE"]["generated"] is None
    assert r.privacy["phi_reuse"]["generated"]["mrn"]["fraction"] == pytest.approx(10 / N_GEN, abs=0.001)
    assert r.privacy["phi_reuse"]["generated"]["phone"]["values"] == 0


def _passing_figures() -> dict:
    reuse = {k: {"values": 10, "reused": 0, "fraction": 0.0} for k in metrics.REUSE_KINDS}
    verbatim = {"window": 50, "window_fraction": 0.0}
    return {
        "valid": {"valid_fraction": 1.0, "consistency": {"generated": {
            "records_with_any_failure": 0.0, "age_matches_dob": {"failed": 0}}}},
        "privacy": {"phi_reuse": {"generated": reuse, "control": reuse, "excess": dict.fromkeys(metrics.REUSE_KINDS, 0.0)},
                    "verbatim": {"generated": verbatim, "control": verbatim, "excess": {"window_fraction": 0.0}},
                    "near_duplicates_of_train": {"generated": 0.0, "control": 0.0, "excess": 0.0}},
        "utility": {"synthetic": {"micro": {"f1": 0.8}}, "train": {"micro": {"f1": 0.9}}, "ratio": 0.89},
        "canaries": {"status": "measured", "planted": {"planted": 3},
                     "extraction": {"1": {"rate": 0.0, "extracted_samples": 0, "samples": 10}}},
    }


# (what misses its threshold, the figure set to miss it, the gate key its reason names)
GATE_CASES = [
    ("valid fraction", lambda f: f["valid"].update(valid_fraction=0.5), "gate.min_valid_fraction"),
    ("consistency", lambda f: f["valid"]["consistency"]["generated"].update(
        records_with_any_failure=0.3, age_matches_dob={"failed": 6}), "gate.max_inconsistent_fraction"),
    ("PHI reuse", lambda f: f["privacy"]["phi_reuse"]["excess"].update(mrn=0.4), "gate.max_excess_phi_reuse"),
    ("verbatim windows", lambda f: f["privacy"]["verbatim"]["excess"].update(window_fraction=0.3),
     "gate.max_excess_verbatim_window_fraction"),
    ("near-duplicates", lambda f: f["privacy"]["near_duplicates_of_train"].update(excess=0.3),
     "gate.max_excess_near_duplicate_rate"),
    ("utility ratio", lambda f: f["utility"].update(ratio=0.2), "gate.min_utility_ratio"),
    ("canaries planted once", lambda f: f["canaries"]["extraction"]["1"].update(rate=0.2, extracted_samples=2),
     "gate.max_canary_extraction_once"),
]


@pytest.mark.parametrize("what, miss, key", GATE_CASES, ids=[c[0] for c in GATE_CASES])
def test_the_gate_names_each_threshold_missed(what, miss, key):
    from medgen.core.config import GateConfig
    from medgen.evaluate.gate import judge

    figures = _passing_figures()
    assert judge(figures["valid"], figures["privacy"], figures["utility"], figures["canaries"], GateConfig()) == \
        {"passed": True, "reasons": []}
    miss(figures)
    verdict = judge(figures["valid"], figures["privacy"], figures["utility"], figures["canaries"], GateConfig())
    assert not verdict["passed"] and len(verdict["reasons"]) == 1 and key in verdict["reasons"][0], verdict


def _older_on_paper(r: Record) -> Record:
    """The record with its date of birth 15 years earlier than its stated age says: a model that cannot count."""
    dob = next(s for s in r.spans if s.category == "DATE" and r.text[:s.start].endswith("Date of Birth: "))
    born = dt.datetime.strptime(dob.text, "%m/%d/%Y").date()
    value = born.replace(year=born.year - 15, day=min(born.day, 28)).strftime("%m/%d/%Y")
    spans = [Span(s.start, s.end, s.category, value if s is dob else s.text) for s in r.spans]
    return Record(r.sex, r.service, r.text[:dob.start] + value + r.text[dob.end:], r.patient_id, spans)


def test_released_corpus_repeats_no_training_identity_while_the_raw_figures_flag_it(engine, tmp_path):
    """The model emits training patients' name, MRN and phone (and miscounts every age): the released corpus
    holds none of them and is consistent, while the memorization figures, measured on the model's own output,
    still flag the reuse."""
    from medgen.core.config import GenerateConfig
    from medgen.generate import stage as generate

    from fakes import fake

    train, test, _ = engine
    cfg = config(tmp_path)
    write_prepare(cfg, train, test)
    pairs: dict[str, int] = {}
    for r in train:
        pairs[f"{r.sex}/{r.service}"] = pairs.get(f"{r.sex}/{r.service}", 0) + 1
    prepared = PrepareResult.from_manifest(cfg.stage_dir("prepare"))
    prepared.sex_service_counts = pairs
    prepared.write(cfg.to_yaml())
    backend = fake(rewrite=lambda r, seed: _older_on_paper(swap_identity(r, train[seed % len(train)])), layout="mimic")
    generate.run(cfg, GenerateConfig(n=N_GEN, seed=4), backend)

    out = cfg.stage_dir("generate")
    raw = [json.loads(x)["text"] for x in (out / "raw" / "records.jsonl").read_text().splitlines()]
    released = [json.loads(x)["text"] for x in (out / "records.jsonl").read_text().splitlines()]
    # A training patient's identity: the full name, the MRN, the phone (a common surname alone identifies nobody).
    identities = {(s.category, s.text) for r in train for s in r.spans
                  if s.category in ("ID:MEDICALRECORD", "CONTACT:PHONE")
                  or s.category == "NAME:PATIENT" and len(s.text.split()) >= 2}
    planted = {v for _, v in identities if any(v in t for t in raw)}
    assert len(planted) >= N_GEN  # every raw record carries a training name, MRN and phone
    assert not [v for v in planted if any(v in t for t in released)]

    result = evaluate.run(cfg)
    reuse = result.privacy["phi_reuse"]
    assert reuse["generated"]["mrn"]["fraction"] == 1.0 and reuse["excess"]["mrn"] > 0.9  # the model's memorization
    assert reuse["released"]["mrn"]["fraction"] == 0.0 and reuse["released"]["patient_name"]["fraction"] == 0.0
    assert any(r.startswith("PHI reuse (mrn)") for r in result.gate["reasons"])  # the gate judges the model
    cons = result.validity["consistency"]
    assert cons["raw"]["age_matches_dob"]["failed_fraction"] == 1.0
    assert cons["generated"]["age_matches_dob"]["failed"] == 0 and cons["generated"]["records_with_any_failure"] <= 0.05
    assert not [r for r in result.gate["reasons"] if r.startswith("consistency")]
    report = (cfg.stage_dir("evaluate") / "REPORT.md").read_text()
    assert "model output failed" in report and "Surface forms per PHI category" in report


HEADER = ("Name: Ana Ruiz    Unit No: 1234567\n \nAdmission Date: 03/10/2091    Discharge Date: 03/14/2091\n \n"
          "Date of Birth: 05/02/2030    Sex: F\n \nService: MEDICINE\n \n")
# (the body after the header, the check, what it must say; a contradiction planted, or its absence)
CONSISTENCY_CASES = [
    ("Ms. Ruiz is a 60 year old woman.", "age_matches_dob", True),
    ("Ms. Ruiz is a 45-year-old woman.", "age_matches_dob", False),
    ("60F with asthma who presents.", "age_matches_dob", True),
    ("She is a 90+ year old woman.", "age_matches_dob", False),  # 60, not past 89
    ("Seen on Saturday, 03/10/2091.", "weekday_matches_date", True),
    ("Seen on Monday, 03/10/2091.", "weekday_matches_date", False),
    ("Seen on Sat Mar 10, 2091.", "weekday_matches_date", True),
    ("Length of stay: 4 days.", "stay_length_matches_dates", True),
    ("LOS: 9 days.", "stay_length_matches_dates", False),
    ("Dear Ms. Ruiz,\nCall us.", "one_patient_name", True),
    ("Dear Ana,\nCall us.", "one_patient_name", True),
    ("Dear Ms. Lopez,\nCall us.", "one_patient_name", False),
    ("Ms. Lopez is a 60 year old woman.", "one_patient_name", False),
    ("Patient: RUIZ, ANA   MRN: 1234567", "one_patient_name", True),
    ("Followup Instructions:\nDr. Lee on 3/20 at 10:00", "followups_after_discharge", True),
    ("Followup Instructions:\nDr. Lee on March 2, 2091 at 10:00", "followups_after_discharge", False),
    ("Followup Instructions:\nTake 1/2 tablet daily.", "followups_after_discharge", None),  # a dose is no date
]


@pytest.mark.parametrize("body, check, expected", CONSISTENCY_CASES, ids=[f"{c[1]}-{c[2]}" for c in CONSISTENCY_CASES])
def test_consistency_checks_read_many_forms(body, check, expected):
    assert metrics.consistency(HEADER + body)[check] is expected


def test_utility_on_the_handwritten_notes_is_scored_with_intervals_and_gates(engine, tmp_path):
    """Taggers trained on engine records meet notes the engine never wrote: scores below 1.0, each with its
    interval; the gate reads the external ratio."""
    from medgen.core.config import EvaluateConfig

    train, test, clean = engine
    cfg = config(tmp_path, "evaluate.utility_test_sets=[handwritten]", "evaluate.utility_bootstrap=200")
    write_prepare(cfg, train, test)
    write_generate(cfg, clean)
    result = evaluate.run(cfg)
    ext = result.external_utility
    s = ext["test_sets"]["handwritten"]
    assert s["notes"] >= 40 and s["entities"] > 500 and ext["records_per_tagger"] == 30
    for tagger in ("synthetic", "train", "both"):
        micro = s[tagger]["strict"]["micro"]
        assert 0.0 < micro["f1"] < 1.0 and micro["f1_ci"][0] <= micro["f1"] <= micro["f1_ci"][1]
        assert micro["f2"] != micro["f1"] and s[tagger]["partial"]["micro"]["f1"] >= micro["f1"]
        assert 0.0 < s[tagger]["token_recall"] <= 1.0
        per = s[tagger]["strict"]["per_category"]
        assert len(per) >= 20 and min(c["f1"] for c in per.values()) < 1.0  # not saturated
    assert ext["ratio"] == s["ratio"] == round(s["synthetic"]["strict"]["micro"]["f1"] /
                                               s["train"]["strict"]["micro"]["f1"], 4)
    report = (result.out_dir / "REPORT.md").read_text()
    assert report.index("## Scorecard") < report.index("## Gate") and "Utility on external notes: handwritten" in report
    # A low ratio fails the gate, naming the external set's figures.
    strict = load_config(None, [f"run_dir={tmp_path}", "gate.min_utility_ratio=5"]).gate
    from medgen.evaluate.gate import judge

    verdict = judge(result.validity, result.privacy, ext, None, strict)
    assert any(r.startswith("utility: handwritten: strict F1") and "gate.min_utility_ratio 5" in r
               for r in verdict["reasons"])
    assert EvaluateConfig().utility_test_sets == ["handwritten"]


def test_paired_difference_scores_two_taggers_on_the_same_resampled_notes():
    from medgen.evaluate import utility

    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=(40, 2, 5, 5))
    better = a.copy()
    better[:, :, :, 0] += 2  # two more correct entities per note and category
    f1 = {k: utility.score(c, np.ones((40, 2), dtype=np.int64), 300, 1)["strict"]["micro"]
          for k, c in (("a", a), ("better", better))}
    d = utility.difference(a, better, 300, 1)
    assert d["f1_difference"] == pytest.approx(f1["better"]["f1"] - f1["a"]["f1"], abs=1e-4)
    lo, hi = d["f1_difference_ci"]
    assert 0 < lo <= d["f1_difference"] <= hi
    # Paired: far narrower than either tagger's own interval, whose spread is mostly the notes'.
    assert hi - lo < (f1["a"]["f1_ci"][1] - f1["a"]["f1_ci"][0]) / 2
    assert utility.difference(a, a, 300, 1) == {"f1_difference": 0.0, "f1_difference_ci": [0.0, 0.0]}


def test_difficulty_weighs_the_corpus_against_hand_written_notes_and_gates_where_set(engine, tmp_path, monkeypatch):
    """A CRF trained on the shipped hand-written notes, scored on the corpus and leave-patients-out on the notes;
    the gap is reported in the scorecard and gated only where gate.max_difficulty_gap is set."""
    from medgen.core.config import EvaluateConfig
    from medgen.evaluate import utility
    from medgen.evaluate.gate import judge

    monkeypatch.setenv("MEDGEN_CACHE", str(tmp_path / "cache"))
    _, _, clean = engine
    ev = EvaluateConfig(utility_bootstrap=100)
    corpus = [(r.text, [vars(s) for s in r.spans]) for r in clean]
    d = utility.difficulty(corpus, ev)
    ref, on = d["reference"], d["corpus"]
    assert d["records"] == len(clean) and ref["notes"] == len(utility.handwritten()) >= 40 and ref["folds"] == 5
    assert d["gap"] == round(on["strict"]["micro"]["f1"] - ref["strict"]["micro"]["f1"], 4)
    for s in (on, ref):
        micro = s["strict"]["micro"]
        assert 0.0 < micro["f1"] < 1.0 and micro["f1_ci"][0] <= micro["f1"] <= micro["f1_ci"][1]
    # Every hand-written note is scored once, by a tagger that never saw its patient.
    assert sum(c["support"] for c in ref["strict"]["per_category"].values()) == \
        sum(len(metrics.entities(metrics.bio(n.text, n.spans)[1])) for n in utility.handwritten())
    cached = list((tmp_path / "cache" / "utility").glob("handwritten-patients-out-*.json"))
    assert len(cached) == 1 and utility.difficulty(corpus, ev)["reference"] == ref

    train, test, _ = engine
    result = None
    for gap, expect in ((None, False), (0.0, d["gap"] > 0.0), (1.0, False)):
        cfg = config(tmp_path / f"gap-{gap}", f"gate.max_difficulty_gap={'null' if gap is None else gap}")
        verdict = judge({"valid_fraction": 1.0}, _clean_privacy(), {"ratio": 1.0}, None, cfg.gate, d)
        assert any(r.startswith("difficulty: ") for r in verdict["reasons"]) is expect, (gap, verdict)
    cfg = config(tmp_path / "run", "evaluate.utility_bootstrap=100")
    write_prepare(cfg, train, test)
    write_generate(cfg, clean)
    result = evaluate.run(cfg)
    assert result.difficulty["gap"] == round(result.difficulty["corpus"]["strict"]["micro"]["f1"]
                                             - result.difficulty["reference"]["strict"]["micro"]["f1"], 4)
    report = (result.out_dir / "REPORT.md").read_text()
    assert "difficulty: a CRF trained on the shipped hand-written notes" in report and "7. Difficulty" in report
    assert not [r for r in result.gate["reasons"] if r.startswith("difficulty")]  # off by default


def _clean_privacy() -> dict:
    return {"phi_reuse": {"excess": {"mrn": 0.0}, "generated": {}, "control": {}},
            "verbatim": {"excess": {"window_fraction": 0.0}, "generated": {"window": 50}},
            "near_duplicates_of_train": {"excess": 0.0}}
