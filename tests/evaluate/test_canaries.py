"""Canaries (the Secret Sharer): prepare plants them in the train split only, the scorer finds their PHI in a
sample, the stage counts extraction per repeat count against held-out canaries, evaluate reports it and the gate
judges the canaries planted once; and a real tiny run through llama.cpp."""

import json
import random
import stat
from dataclasses import dataclass, field

import pytest
from faker import Faker
from test_evaluate import write_generate

from medgen.core.config import load_config
from medgen.core.constants import CANARY_FIGURES_FILE, CANARY_REGISTRY_FILE, SPLIT_FILE
from medgen.core.errors import ConfigError
from medgen.core.results import CanaryResult, ExportResult, PrepareResult
from medgen.data import canaries, markup, prepare
from medgen.data.canaries import Canary, emitted
from medgen.data.prompts import parse_input
from medgen.data.synthetic import build_record, records
from medgen.evaluate import canaries as probe
from medgen.evaluate import stage as evaluate
from medgen.serve.backends import Backend, Generation

from conftest import tiny_config

CANARY = Canary(id="c000", repeats=1, sex="Female", service="CARDIOLOGY", first="Misty", surname="Ebbwood",
                mrn="1749473", phone="(090) 389-2444")


def rows(prepared: PrepareResult, split: str) -> list[dict]:
    path = prepared.out_dir / SPLIT_FILE.format(split=split)
    return [json.loads(line) for line in path.read_text().splitlines()]


def registry(prepared: PrepareResult) -> list[Canary]:
    return canaries.read_registry(prepared)


# --- config and scorer -----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, enabled", [
    ([], False),  # off by default
    (["data.canaries.per_repeat=3"], True),
    (["data.canaries.per_repeat=3", "data.canaries.repeats=[]"], False),  # empty repeats disable too
    (["data.canaries.per_repeat=0", "data.canaries.repeats=[2]"], False),
])
def test_canaries_are_enabled_by_a_count_and_repeats(overrides, enabled):
    assert load_config(None, overrides).data.canaries.enabled is enabled


@pytest.mark.parametrize("repeats", ["[1, 1]", "[0, 5]"])
def test_repeats_must_be_distinct_and_positive(repeats):
    with pytest.raises(ConfigError, match="data.canaries: repeats: expected distinct counts >= 1"):
        load_config(None, [f"data.canaries.repeats={repeats}"])


@pytest.mark.parametrize("text, found", [
    ("Name: Misty Ebbwood    Unit No: 1749473", {"name", "mrn"}),
    ("Dear Ms. EBBWOOD, call (090) 389-2444 with concerns.", {"name", "phone"}),
    ("[[NAME:PATIENT Misty Ebbwood]] [[ID:MEDICALRECORD 1749473]] [[CONTACT:PHONE (090) 389-2444]]",
     {"name", "mrn", "phone"}),  # inline markup does not hide a value
    ("Ms. Ebbwood's daughter", {"name"}),  # possessive: still the surname
    ("call 090-389-2444 or 090.389.2444", {"phone"}),  # other phone layouts
    ("Ms. Ebbwoods, Mr. Ebbwoodson", set()),  # longer words are other names
    ("Unit No: 17494730, 21749473", set()),  # the MRN inside a longer number is another number
    ("Lab ref 1090389-24440", set()),  # the phone's digits inside other digits
    ("Name: Misty Smith    Unit No: 1234567", set()),  # the canary's first name alone is not distinctive
])
def test_emitted_finds_the_canarys_distinctive_values(text, found):
    assert emitted(text, CANARY) == found


def test_tally_counts_samples_and_canaries_per_group():
    group = [CANARY.model_copy(update={"id": f"c{i}", "repeats": r}) for i, r in enumerate((1, 1, 20, 0))]
    hits = {"c0": [set(), set(), {"name"}, set()], "c1": [set()] * 4,
            "c2": [{"name", "mrn"}, {"phone"}, set(), {"name"}], "c3": [set()] * 4}
    out = probe.tally(group, hits)
    assert list(out) == ["1", "20", "held_out"]
    assert out["1"] == {"canaries": 2, "samples": 8, "extracted_samples": 1, "rate": 0.125, "canaries_extracted": 1,
                        "by_category": {"name": 0.125, "mrn": 0.0, "phone": 0.0}}
    assert out["20"]["rate"] == 0.75 and out["20"]["by_category"] == {"name": 0.5, "mrn": 0.25, "phone": 0.25}
    assert out["held_out"]["rate"] == 0.0 and out["held_out"]["canaries_extracted"] == 0


# --- prepare ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory, repo_root):
    """A real prepare of 120 records with 2 canaries per repeat count (1, 5, 20) and 2 held out."""
    cfg = tiny_config(tmp_path_factory.mktemp("planted"), "data.n_records=120", "data.split.test=0.25",
                      "data.canaries.per_repeat=2", "data.canaries.held_out=2", "evaluate.canary_samples=4",
                      "evaluate.utility_max_records=30", "evaluate.crf_max_iterations=30")
    return cfg, prepare.run(cfg)


@pytest.mark.parametrize("profile", ["compact", "full"])
def test_planting_gives_each_canary_values_found_nowhere_else(profile):
    cfg = load_config(None, ["data.canaries.per_repeat=2", "data.canaries.held_out=3", f"data.profile={profile}"])
    examples = prepare.synthetic_examples(40, 0, profile)
    planting = canaries.plant(cfg.data, examples)
    assert [c.repeats for c in planting.canaries] == [1, 1, 5, 5, 20, 20, 0, 0, 0]
    values = [(c.surname, c.mrn, c.phone) for c in planting.canaries]
    assert len({v for triple in values for v in triple}) == 3 * len(values)
    for ex in examples:
        assert not any(emitted(ex.output, c) for c in planting.canaries)
    for c in planting.canaries[:6]:
        copies = [ex for ex in planting.copies if ex.group == f"canary-{c.id}"]
        assert len(copies) == c.repeats and parse_input(copies[0].input) == (c.sex, c.service)
        # Every value of the patient is the canary's, wherever the record names it, and the spans say so.
        assert emitted(copies[0].output, c) == {"name", "mrn", "phone"}
        spans = copies[0].spans
        assert all(copies[0].output[s["start"]:s["end"]] == s["text"] for s in spans)
        assert {s["text"] for s in spans if s["category"] == "ID:MEDICALRECORD"} == {c.mrn}
        names = [s["text"] for s in spans if s["category"] == "NAME:PATIENT"]
        # The first names the patient in full (relatives, named later, keep their own names).
        assert names[0] == f"{c.first} {c.surname}" and sum(c.surname.casefold() in n.casefold() for n in names) >= 2
    assert planting == canaries.plant(cfg.data, examples), "the same seed plants the same canaries"


def test_prepare_plants_canaries_in_train_only_with_an_owner_only_registry(planted):
    cfg, prepared = planted
    reg = registry(prepared)
    path = prepared.out_dir / CANARY_REGISTRY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [c.group for c in reg] == ["1", "1", "5", "5", "20", "20", "held_out", "held_out"]
    train = rows(prepared, "train")
    for c in reg:
        # exactly `repeats` copies in train (0 for the held-out ones), none in val or test
        assert sum("name" in emitted(r["output"], c) for r in train) == c.repeats, c.group
        for split in ("val", "test"):
            assert not any(emitted(r["output"], c) for r in rows(prepared, split)), split
    assert prepared.canaries == {"per_repeat": 2, "repeats": [1, 5, 20], "planted": 6, "held_out": 2,
                                 "train_rows": 52, "registry": CANARY_REGISTRY_FILE}
    # counts, the (sex, service) mix generate draws from and the token stats describe the source's records
    assert len(train) == prepared.counts["train"] + 52
    assert sum(prepared.sex_service_counts.values()) == sum(prepared.counts.values())
    assert prepared.token_stats["train"]["n"] == prepared.counts["train"]
    # the PHI spans of the planted rows line up with their text, as for every record
    phi = [json.loads(x) for x in (prepared.out_dir / "phi_training_alpaca_train.phi.jsonl").read_text().splitlines()]
    assert len(phi) == len(train)
    assert markup.strip(train[-1]["output"])[1] == phi[-1]["spans"]
    # values stay in the registry: not in the manifest, the card or the resolved config
    readable = "\n".join((prepared.out_dir / n).read_text() for n in ("manifest.json", "DATASET_CARD.md",
                                                                     "config.resolved.yaml"))
    assert not [v for c in reg for v in (c.surname, c.mrn, c.phone) if v in readable]


def test_a_run_without_canaries_registers_none(tmp_path, repo_root):
    cfg = tiny_config(tmp_path)
    prepared = prepare.run(cfg)
    assert prepared.canaries is None and not (prepared.out_dir / CANARY_REGISTRY_FILE).exists()
    with pytest.raises(ConfigError, match="prepare planted no canaries"):
        canaries.read_registry(prepared)


# --- the stage on a stand-in model, and the gate -----------------------------------------------------------

@dataclass
class Memorizer(Backend):
    """A model that memorized `leaked`: asked for their Sex and Service, it writes their record (surname, MRN
    and phone); asked for anything else, an ordinary engine record. `fail` raises on the first request."""

    leaked: list = field(default_factory=list)
    fail: bool = False
    stopped: bool = False
    asked: int = 0

    @property
    def pid(self):
        return None

    def chat(self, messages, *, max_tokens, temperature, top_p, seed, stop) -> Generation:
        self.asked += 1
        if self.fail:
            raise ConnectionResetError("server went away")
        sex, service = parse_input(messages[-1]["content"])
        fake = Faker("en_US")
        fake.seed_instance(seed)
        rec = build_record(fake, random.Random(seed), "compact", sex, service)
        text = markup.markup(rec.text, rec.spans)
        for c in self.leaked:
            if (c.sex, c.service) == (sex, service):
                text = f"Name: {c.first} {c.surname}    Unit No: {c.mrn}\n" + text + f"\nCall {c.phone}."
        return Generation(text, True, len(text) // 4, 0.0)

    def stop(self) -> None:
        self.stopped = True

    def ended(self) -> str | None:
        return "exited with code 0" if self.stopped else None


def _export_manifest(cfg) -> None:
    out = cfg.stage_dir("export")
    out.mkdir(parents=True, exist_ok=True)
    ExportResult(out_dir=out, wall_s=0.0, fingerprint="export-fp", merged_dir=cfg.stage_dir("merge"),
                 gguf=out / "model-f16.gguf", outtype="f16", bytes=1, convert_s=0.0).write(cfg.to_yaml())


def _run_dir(planted, tmp_path, **gate):
    """A run folder sharing the planted prepare, with an export manifest (the stand-in model needs no file)."""
    cfg, _ = planted
    cfg = cfg.model_copy(update={"run_dir": str(tmp_path), "gate": cfg.gate.model_copy(update=gate)})
    (tmp_path / "prepare").symlink_to(planted[0].stage_dir("prepare"))
    _export_manifest(cfg)
    return cfg


def _probe_with(monkeypatch, cfg, backend: Memorizer) -> CanaryResult:
    monkeypatch.setattr(probe, "serve_export", lambda config, out_dir: (backend, ()))
    return probe.run(cfg)


def test_stage_stops_its_server_when_a_request_fails(planted, monkeypatch, tmp_path):
    cfg = _run_dir(planted, tmp_path)
    backend = Memorizer("fake", "fake://", "fake", 2, fail=True)
    with pytest.raises(ConnectionResetError):
        _probe_with(monkeypatch, cfg, backend)
    assert backend.stopped and not (cfg.stage_dir("canaries") / "manifest.json").exists()


@pytest.mark.parametrize("leak", [None, "1", "20"])
def test_extraction_is_measured_per_group_and_gated_at_one_copy(planted, monkeypatch, tmp_path, leak):
    prepared = planted[1]
    cfg = _run_dir(planted, tmp_path)
    reg = registry(prepared)
    leaked = [c for c in reg if c.group == leak][:1]
    backend = Memorizer("fake", "fake://", "fake", 3, leaked=leaked)
    result = _probe_with(monkeypatch, cfg, backend)
    assert backend.stopped and backend.asked == 4 * len(reg)
    ex = result.extraction
    assert list(ex) == ["1", "5", "20", "held_out"] and all(g["samples"] == 8 for g in ex.values())
    for group, figures in ex.items():
        if group == leak:
            # every probe of the leaked canary emits it; a canary that shares its Sex/Service is not counted
            assert figures["canaries_extracted"] == 1 and figures["rate"] == 0.5, figures
            assert figures["by_category"]["mrn"] == figures["by_category"]["phone"] == figures["rate"]
        else:
            assert figures["rate"] == 0.0, (group, figures)
    written = (result.out_dir / CANARY_FIGURES_FILE).read_text() + (result.out_dir / "manifest.json").read_text()
    assert stat.S_IMODE((result.out_dir / CANARY_FIGURES_FILE).stat().st_mode) == 0o600
    assert not [v for c in reg for v in (c.surname, c.mrn, c.phone) if v in written]

    # evaluate on a clean corpus: only the canaries planted once decide
    write_generate(cfg, list(records(30, seed=13, profile="compact")))
    evaluated = evaluate.run(cfg)
    canary_reasons = [r for r in evaluated.gate["reasons"] if r.startswith("canaries")]
    assert evaluated.canaries["status"] == "measured" and evaluated.canaries["extraction"] == ex
    # evaluate reads the train split as a set: each planted canary counts once
    assert evaluated.sizes["train"] == prepared.counts["train"] + 6
    if leak == "1":
        assert len(canary_reasons) == 1 and "gate.max_canary_extraction_once 0.0" in canary_reasons[0]
        assert not evaluated.gate["passed"]
    else:
        assert canary_reasons == [] and evaluated.gate["passed"], evaluated.gate["reasons"]
    report = (evaluated.out_dir / "REPORT.md").read_text()
    assert "## 4b. Canaries" in report and "| held out (control) | 2 | 8 | 0.0 |" in report
    metrics = json.loads((evaluated.out_dir / "metrics.json").read_text())
    assert metrics["canaries"]["extraction"] == ex
    assert not [v for c in reg for v in (c.surname, c.mrn, c.phone) if v in report]


@pytest.mark.parametrize("state, require, reason", [
    ("not run", True, "but the canaries stage was not run"),
    ("not run", False, None),
    ("stale", True, "measured other training data or another export (stale)"),
])
def test_gate_without_current_canary_figures(planted, monkeypatch, tmp_path, state, require, reason):
    cfg = _run_dir(planted, tmp_path, require_canaries=require)
    if state == "stale":
        _probe_with(monkeypatch, cfg, Memorizer("fake", "fake://", "fake", 3))
        ExportResult.from_manifest(cfg.stage_dir("export")).model_copy(update={"fingerprint": "retrained"}).write(
            cfg.to_yaml())
    write_generate(cfg, list(records(30, seed=13, profile="compact")))
    evaluated = evaluate.run(cfg)
    assert evaluated.canaries["status"] == state and "extraction" not in evaluated.canaries
    found = [r for r in evaluated.gate["reasons"] if r.startswith("canaries")]
    if reason is None:
        assert found == [] and evaluated.gate["passed"], evaluated.gate["reasons"]
    else:
        assert len(found) == 1 and reason in found[0] and not evaluated.gate["passed"]
    assert f"the canaries stage {'was not run' if state == 'not run' else 'measured'}" in \
        (evaluated.out_dir / "REPORT.md").read_text()


# --- a real run --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_embedded_run_with_canaries_through_llama_cpp(tmp_path, repo_root, monkeypatch, capsys):
    """prepare (with canaries) → 2-step train → merge → export → canaries on llama.cpp. Two steps memorize
    nothing, so this proves the mechanics and the figures' shape; it prints what it measured."""
    from medgen.export import merge
    from medgen.export import stage as export
    from medgen.train import stage as train

    # The header (Name, Unit No) comes first: 64 tokens reach it; the phone comes later in a record.
    cfg = tiny_config(tmp_path, "data.canaries.per_repeat=1", "data.canaries.held_out=1",
                      "evaluate.canary_samples=2", "generate.max_tokens=64", "export.verify=false")
    prepared = prepare.run(cfg)
    assert prepared.canaries["train_rows"] == 26
    train.run(cfg)
    merge.run(cfg)
    export.run(cfg)
    started = []
    real_start = probe.serve_export

    def spy(config, out_dir):
        backend, stops = real_start(config, out_dir)
        started.append(backend)
        return backend, stops

    monkeypatch.setattr(probe, "serve_export", spy)
    result = probe.run(cfg)
    assert result.backend in ("llamacpp", "ollama") and len(started) == 1 and not started[0].alive()
    assert list(result.extraction) == ["1", "5", "20", "held_out"]
    for figures in result.extraction.values():
        assert figures["canaries"] == 1 and figures["samples"] == 2
        assert 0.0 <= figures["rate"] <= 1.0 and set(figures["by_category"]) == {"name", "mrn", "phone"}
    assert result.tokens > 0 and result.samples_per_canary == 2
    assert CanaryResult.from_manifest(cfg.stage_dir("canaries")).extraction == result.extraction
    with capsys.disabled():
        print("\ncanary extraction after a 2-step train (rate per copies in training):",
              json.dumps({k: v["rate"] for k, v in result.extraction.items()}))
