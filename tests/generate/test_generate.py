"""Bulk generation on a fake backend: the plan, shards, retries, the corpus files, and a real kill and resume."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from medgen.core.config import GenerateConfig
from medgen.core.errors import DataError
from medgen.generate import plan as planning
from medgen.generate import stage as generate
from medgen.generate.journal import JOURNAL_KIND
from medgen.generate.plan import shard_of
from medgen.serve.backends import attempt_seed
from medgen.generate.shards import merge_shards

from conftest import tiny_config
from fakes import TRAIN_COUNTS, fake, write_prepare_manifest

TESTS_DIR = Path(__file__).resolve().parent
# The interrupted child and the rerun must agree on everything the fingerprint covers.
RESUME_GEN = GenerateConfig(n=40, seed=3)


@pytest.fixture
def cfg(tmp_path, repo_root):
    config = tiny_config(tmp_path / "run")
    write_prepare_manifest(config)
    return config


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def pair_counts(requests) -> Counter:
    return Counter((r.sex, r.service) for r in requests)


def test_train_mix_is_proportional_by_largest_remainder_and_deterministic(cfg):
    gen = GenerateConfig(n=26, seed=1)
    plan = planning.plan(cfg, gen)
    # 26 * (6, 3, 2, 1) / 12 = 13, 6.5, 4.33, 2.17: floors sum to 25, the largest remainder (6.5) gets the last.
    assert pair_counts(plan) == {("Female", "OBSTETRICS/GYNECOLOGY"): 13, ("Male", "CARDIOLOGY"): 7,
                                 ("Female", "PSYCHIATRY"): 4, ("Male", "NEUROLOGY"): 2}
    assert plan == planning.plan(cfg, gen)
    assert [r.id for r in plan] == [f"r{i:06d}" for i in range(26)]
    assert len({r.seed for r in plan}) == 26
    other = planning.plan(cfg, gen.model_copy(update={"seed": 2}))
    assert pair_counts(other) == pair_counts(plan) and other != plan


def test_uniform_mix_covers_the_trained_pairs_evenly(cfg):
    plan = planning.plan(cfg, GenerateConfig(n=10, mix="uniform"))
    # 2.5 each: the two remainders left go to the pairs that sort first.
    assert pair_counts(plan) == {("Female", "OBSTETRICS/GYNECOLOGY"): 3, ("Female", "PSYCHIATRY"): 3,
                                 ("Male", "CARDIOLOGY"): 2, ("Male", "NEUROLOGY"): 2}


def test_csv_mix_gives_exact_counts_and_reports_every_bad_row(cfg, tmp_path):
    good = tmp_path / "mix.csv"
    good.write_text("sex,service,count\nFemale,OBSTETRICS/GYNECOLOGY,2\nMale,UROLOGY,3\nMale,UROLOGY,1\n"
                    "Female,SURGERY,0\n")
    plan = planning.plan(cfg, GenerateConfig(n=99, mix=str(good)))
    assert pair_counts(plan) == {("Female", "OBSTETRICS/GYNECOLOGY"): 2, ("Male", "UROLOGY"): 4}

    bad = tmp_path / "bad.csv"
    bad.write_text("sex,service,count\nMale,CARDIOLOGY,2\nMan,CARDIOLOGY,1\nFemale,,x\n")
    with pytest.raises(DataError) as e:
        planning.plan(cfg, GenerateConfig(mix=str(bad)))
    assert e.value.problems == [
        f"{bad}:3: sex: expected one of Male, Female, got 'Man'",
        f"{bad}:4: service: expected a medical service such as CARDIOLOGY, got an empty value",
        f"{bad}:4: count: expected a whole number >= 0, got 'x'",
    ]
    headless = tmp_path / "headless.csv"
    headless.write_text("sex,count\nMale,1\n")
    with pytest.raises(DataError, match=r"headless.csv:1: expected columns sex,service,count, got sex,count"):
        planning.plan(cfg, GenerateConfig(mix=str(headless)))


def test_shard_must_be_below_shards():
    with pytest.raises(ValueError, match="expected 0..1 .*got 2"):
        GenerateConfig(shards=2, shard=2)


def test_outputs_are_plain_text_with_exact_spans_owner_only_and_reported(cfg):
    gen = GenerateConfig(n=12, seed=5)
    progress: list[tuple[int, int]] = []
    result = generate.run(cfg, gen, fake(), on_progress=lambda done, total: progress.append((done, total)))
    out = cfg.stage_dir("generate")
    assert result.out_dir == out and result.counts == {"planned": 12, "valid": 12, "rejected": 0,
                                                       "valid_fraction": 1.0}
    assert progress == [(i, 12) for i in range(1, 13)]

    records = read_jsonl(out / "records.jsonl")
    phi = read_jsonl(out / "records.phi.jsonl")
    plan = planning.plan(cfg, gen)
    assert [(r["id"], r["sex"], r["service"]) for r in records] == [(p.id, p.sex, p.service) for p in plan]
    assert set(records[0]) == {"id", "sex", "service", "text", "seed", "tokens", "seconds", "attempts"}
    assert [p["index"] for p in phi] == list(range(12)) and [p["id"] for p in phi] == [r["id"] for r in records]
    categories: Counter = Counter()
    for rec, p in zip(records, phi):
        assert "[[" not in rec["text"] and "]]" not in rec["text"]
        assert p["spans"], "every engine record carries PHI"
        for s in p["spans"]:
            assert rec["text"][s["start"]:s["end"]] == s["text"]
            categories[s["category"]] += 1
    assert result.phi_category_counts == dict(categories)
    assert read_jsonl(out / "rejected.jsonl") == []
    assert result.sex_service_counts == {f"{k[0]}/{k[1]}": v for k, v in sorted(pair_counts(plan).items())}
    assert result.tokens == sum(r["tokens"] for r in records) and result.tokens_per_s > 0
    assert result.slots == 3 and result.resumed == 0 and result.torn_lines_dropped == 0

    card = (out / "GENERATION_CARD.md").read_text()
    assert "| OBSTETRICS/GYNECOLOGY | 0 |" in card and "| NAME:PATIENT |" in card and "records/s" in card
    assert not (out / "journal.jsonl").exists()
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    # The model's own records, before the surrogate pass, beside the released ones: same ids, other values.
    raw = read_jsonl(out / "raw" / "records.jsonl")
    assert [r["id"] for r in raw] == [r["id"] for r in records] and result.surrogates == "fresh"
    assert all(a["text"] != b["text"] for a, b in zip(raw, records))
    assert result.surrogate_stats["replaced"]["DATE"] > 0 and result.surrogate_stats["unparsed_dates"] == 0

    # Finished with the same fingerprint: the corpus is returned as is, and nothing is generated again.
    again = fake()
    assert generate.run(cfg, gen, again).fingerprint == result.fingerprint and again.calls == []


def test_invalid_records_are_retried_then_rejected_with_check_names(cfg):
    gen = GenerateConfig(n=12, seed=7, max_attempts=3)
    plan = planning.plan(cfg, gen)
    retried = [r for r in plan if r.service != "PSYCHIATRY"][:3]
    backend = fake(wrong_services=frozenset({"PSYCHIATRY"}), cut_seeds=frozenset(r.seed for r in retried))
    result = generate.run(cfg, gen, backend)

    psychiatry = [r for r in plan if r.service == "PSYCHIATRY"]
    assert psychiatry, "the train mix gives PSYCHIATRY 2 of 12"
    out = cfg.stage_dir("generate")
    rejected = read_jsonl(out / "rejected.jsonl")
    # Check names only: the wrong service the model wrote stays out of the files.
    assert rejected == [{"id": r.id, "sex": r.sex, "service": r.service, "attempts": 3, "reasons": ["wrong service"]}
                        for r in psychiatry]
    assert result.rejections_by_reason == {"wrong service": len(psychiatry)}
    valid = len(plan) - len(psychiatry)
    assert result.counts == {"planned": 12, "valid": valid, "rejected": len(psychiatry),
                             "valid_fraction": round(valid / 12, 4)}
    assert result.failed_attempts == 3 * len(psychiatry) + len(retried)
    records = {r["id"]: r for r in read_jsonl(out / "records.jsonl")}
    for r in retried:
        assert records[r.id]["attempts"] == 2
        assert records[r.id]["seed"] == attempt_seed(r.seed, 1)
    assert "| wrong service | 2 |" in (out / "GENERATION_CARD.md").read_text()


def test_shards_partition_the_plan_and_merge_to_the_unsharded_corpus(cfg):
    gen = GenerateConfig(n=14, seed=11)
    full = planning.plan(cfg, gen)
    parts = [shard_of(full, k, 3) for k in range(3)]
    ids = [r.id for part in parts for r in part]
    assert len(ids) == len(set(ids)) and set(ids) == {r.id for r in full}

    whole = generate.run(cfg, gen, fake())
    whole_records = read_jsonl(whole.out_dir / "records.jsonl")
    sharded = gen.model_copy(update={"shards": 3})
    for k in range(3):
        part = generate.run(cfg, sharded.model_copy(update={"shard": k}), fake())
        assert part.out_dir == cfg.stage_dir("generate") / f"shard-{k}-of-3" and part.counts["planned"] == len(parts[k])
    merged = merge_shards(cfg, sharded)
    merged_records = read_jsonl(cfg.stage_dir("generate") / "records.jsonl")
    assert merged.shard is None and merged.counts == whole.counts and merged.slots == 9
    assert [(r["id"], r["text"], r["seed"]) for r in merged_records] == \
        [(r["id"], r["text"], r["seed"]) for r in whole_records]
    assert [p["index"] for p in read_jsonl(cfg.stage_dir("generate") / "records.phi.jsonl")] == list(range(14))

    (cfg.stage_dir("generate") / "shard-1-of-3" / "manifest.json").unlink()
    with pytest.raises(DataError, match="shard-1-of-3: no finished shard"):
        merge_shards(cfg, sharded)


def test_shards_with_no_valid_record_still_merge_the_raw_corpus_evaluate_reads(cfg):
    from medgen.evaluate.corpus import load_generated

    sharded = GenerateConfig(n=4, seed=2, shards=2, max_attempts=1)
    everything_wrong = frozenset(k.split("/", 1)[1] for k in TRAIN_COUNTS if "/" in k)
    for k in range(2):
        generate.run(cfg, sharded.model_copy(update={"shard": k}), fake(wrong_services=everything_wrong))
    merged = merge_shards(cfg, sharded)
    out = cfg.stage_dir("generate")
    assert merged.counts["valid"] == 0 and merged.surrogates == "fresh"
    assert (out / "raw" / "records.jsonl").read_text() == ""
    released, raw, generation, _ = load_generated(out, labelled=True)
    assert len(released) == len(raw) == 0 and len(generation.rejected) == 4


def test_a_journal_from_another_plan_is_not_resumed(cfg):
    out = cfg.stage_dir("generate")
    out.mkdir(parents=True)
    (out / "journal.jsonl").write_text(
        json.dumps({"kind": JOURNAL_KIND, "fingerprint": "another-plan"}) + "\n"
        + json.dumps({"id": "r000000", "valid": False, "reasons": ["no stop token"]}) + "\n")
    result = generate.run(cfg, GenerateConfig(n=4), fake())
    assert result.resumed == 0 and result.counts["valid"] == 4


def test_an_interrupt_stops_the_server_it_started(cfg, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    server = fake(before_chat=interrupted)
    monkeypatch.setattr(generate, "serve_export", lambda config, out_dir: (server, ()))
    with pytest.raises(KeyboardInterrupt):
        generate.run(cfg, GenerateConfig(n=4))
    assert server.stopped_server
    assert not (cfg.stage_dir("generate") / "records.jsonl").exists()


def test_a_crash_while_publishing_resumes_without_a_server(cfg, monkeypatch):
    gen = GenerateConfig(n=5)

    def crash(*args):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(generate, "write_corpus", crash)
        with pytest.raises(OSError):
            generate.run(cfg, gen, fake())
    assert (cfg.stage_dir("generate") / "journal.jsonl").exists()
    monkeypatch.setattr(generate, "serve_export", lambda *a: pytest.fail("expected no server: all is journaled"))
    result = generate.run(cfg, gen)
    assert result.resumed == 5 and result.counts["valid"] == 5 and result.backend is None


def child_run(run_dir: str) -> None:
    """The interrupted run of test_kill_and_resume, in its own process."""
    generate.run(tiny_config(run_dir), RESUME_GEN, fake(delay=0.15))


def journal_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_and_resume(cfg, repo_root):
    out = cfg.stage_dir("generate")
    journal = out / "journal.jsonl"
    code = f"import sys; sys.path[:0] = [{str(TESTS_DIR)!r}, {str(TESTS_DIR.parent)!r}]; import test_generate; " \
           f"test_generate.child_run({cfg.run_dir!r})"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=repo_root)
    try:
        deadline = time.monotonic() + 60
        while journal_lines(journal) < 7:  # the header and at least 6 finished requests
            assert child.poll() is None, f"expected the child to be still generating, got exit code {child.returncode}"
            assert time.monotonic() < deadline, "expected journal lines within 60 s, got none"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not (out / "records.jsonl").exists() and not (out / "manifest.json").exists()
    complete = journal.read_bytes().split(b"\n")[:-1]
    with journal.open("a") as f:
        f.write('{"id": "r0000')  # a torn write; joins a line the kill may have cut, so one torn line either way
    journaled = {json.loads(line)["id"] for line in complete[1:]}

    def not_published():
        assert not (out / "records.jsonl").exists(), "expected records.jsonl only once the corpus is complete"

    backend = fake(before_chat=not_published)
    result = generate.run(cfg, RESUME_GEN, backend)

    assert result.resumed == len(journaled) and result.torn_lines_dropped == 1
    assert len(backend.calls) == RESUME_GEN.n - len(journaled)
    ids = [r["id"] for r in read_jsonl(out / "records.jsonl")] + [r["id"] for r in read_jsonl(out / "rejected.jsonl")]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == [r.id for r in planning.plan(cfg, RESUME_GEN)]
    assert not journal.exists()


def test_a_server_that_dies_is_restarted_and_no_record_is_lost_or_repeated(cfg):
    gen = GenerateConfig(n=12, restart_backoff_s=0)
    started = []

    def start():
        started.append(fake(dies_after=5 if not started else None))
        return started[-1], ()

    result = generate.run(cfg, gen, start_server=start)
    undisturbed = read_jsonl(cfg.stage_dir("generate") / "records.jsonl")
    assert result.server_restarts == 1 and len(started) == 2 and started[0].stopped_server
    assert result.counts["valid"] == 12 and len(started[0].calls) + len(started[1].calls) == 12
    assert "Model server restarts (it died mid-run): 1" in (cfg.stage_dir("generate") / "GENERATION_CARD.md").read_text()
    other = tiny_config(Path(cfg.run_dir).parent / "again")
    write_prepare_manifest(other)
    generate.run(other, gen, fake())
    again = read_jsonl(other.stage_dir("generate") / "records.jsonl")
    assert [r["text"] for r in undisturbed] == [r["text"] for r in again], "a restart must not change the corpus"


def test_a_server_that_keeps_dying_stops_the_run_resumably_with_one_line(cfg, monkeypatch):
    from typer.testing import CliRunner

    from medgen.cli import app

    servers = []

    def start(*_):
        servers.append(fake(dies_after=2))
        return servers[-1], ()

    monkeypatch.setattr(generate, "serve_export", start)
    out = CliRunner().invoke(app, ["generate", "--set", f"run_dir={cfg.run_dir}", "--set", "generate.n=12",
                                   "--set", "generate.max_server_restarts=2", "--set", "generate.restart_backoff_s=0",
                                   "--set", "serve.parallel=1"])
    lines = out.output.strip().splitlines()
    assert out.exit_code == 75 and len(servers) == 3 and all(s.stopped_server for s in servers), out.output
    assert "the fake server was killed by signal 9 (SIGKILL) after 6/12 records and 2 restart(s)" in lines[-1]
    assert "rerun to resume" in lines[-1] and "Traceback" not in out.output
    journal = cfg.stage_dir("generate") / "journal.jsonl"
    assert journal_lines(journal) == 1 + 6 and not (cfg.stage_dir("generate") / "records.jsonl").exists()
    monkeypatch.setattr(generate, "serve_export", lambda *_: (fake(), ()))
    rerun = CliRunner().invoke(app, ["generate", "--set", f"run_dir={cfg.run_dir}", "--set", "generate.n=12",
                                     "--set", "generate.max_server_restarts=2", "--set", "generate.restart_backoff_s=0",
                                     "--set", "serve.parallel=1"])
    assert rerun.exit_code == 0, rerun.output
    assert "resum" in rerun.output or json.loads((cfg.stage_dir("generate") / "manifest.json").read_text())[
        "resumed"] == 6


def test_a_full_disk_stops_generate_as_storage_and_a_rerun_after_freeing_space_resumes(tmp_path, tiny_disk):
    from medgen.core.errors import FailureKind, failure_kind

    disk, remount = tiny_disk
    cfg = tiny_config(disk / "run")
    write_prepare_manifest(cfg)
    gen = GenerateConfig(n=150)
    with pytest.raises(OSError) as e:
        generate.run(cfg, gen, fake())
    assert failure_kind(e.value) is FailureKind.STORAGE
    out = cfg.stage_dir("generate")
    assert not (out / "records.jsonl").exists() and not list(out.rglob("*.tmp"))
    remount("16m")
    result = generate.run(cfg, gen, fake())
    assert result.resumed > 0 and result.counts["planned"] == 150
    assert result.counts["valid"] + result.counts["rejected"] == 150
