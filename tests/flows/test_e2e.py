"""The README's run command on the embedded default: prepare → train → merge → export → serve + smoke test.

Minutes on 2 cores; it is the proof that the 135M model learns the record format well enough to pass
the smoke test with the default thresholds.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _sent_to_prefect(api_url: str) -> str:
    """Everything the server holds: flow and task runs with their states, logs, artifacts (all pages)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def dump() -> list:
        out = []
        async with get_client() as client:
            for read in (client.read_flow_runs, client.read_task_runs, client.read_logs, client.read_artifacts):
                offset = 0
                while page := await read(limit=200, offset=offset):
                    out += [item.model_dump(mode="json") for item in page]
                    offset += len(page)
        return out

    with temporary_settings({PREFECT_API_URL: api_url}):
        return json.dumps(asyncio.run(dump()), ensure_ascii=False)


def _needles(run: Path) -> set[str]:
    """The run's own distinctive PHI values (names, MRNs, phones, addresses): in training and generated text."""
    from medgen.core.constants import SPLIT_PHI_FILE

    spans = [s for split in ("train", "val", "test")
             for line in (run / "prepare" / SPLIT_PHI_FILE.format(split=split)).read_text().splitlines()
             for s in json.loads(line)["spans"]]
    spans += [s for line in (run / "generate" / "records.phi.jsonl").read_text().splitlines()
              for s in json.loads(line)["spans"]]
    return {s["text"] for s in spans if len(s["text"]) >= 6
            and s["category"].startswith(("NAME:", "ID:", "CONTACT:", "LOCATION:STREET"))}


def _serving(export_dir: Path) -> list[str]:
    """Processes whose command line names the run's GGUF folder: its model server and the server's supervisor."""
    out = subprocess.run(["pgrep", "-f", str(export_dir)], capture_output=True, text=True)
    return out.stdout.split()


def _closing_lines(stdout: str) -> dict[str, str]:
    """`medgen run`'s closing lines ("what: detail") by what they name."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


@pytest.mark.slow
def test_medgen_run_on_the_embedded_default(repo_root, live_server, tmp_path):
    medgen = Path(sys.executable).parent / "medgen"
    # The run reports to a real server, so that everything it sent there can be searched for PHI below.
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": live_server}
    proc = subprocess.run([str(medgen), "run", "--config", "configs/default.yaml", "--set", f"run_dir={tmp_path}"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    serve = json.loads((tmp_path / "serve" / "manifest.json").read_text())
    assert serve["smoke"]["passed"] and serve["smoke"]["n"] == 3
    assert (tmp_path / "serve" / serve["gguf"]).is_file() and (tmp_path / "serve" / serve["modelfile"]).is_file()
    # It ends by saying what it made: the model, the corpus and its size, the report, the gate's verdict.
    said = _closing_lines(proc.stdout)
    assert said["model"].startswith(f"{tmp_path}/serve/Modelfile (GGUF {tmp_path}/export/model-q8_0.gguf); "
                                    "smoke test 3/3 passed"), said
    train = json.loads((tmp_path / "train" / "manifest.json").read_text())
    # Training taught the format: the loss fell to well under half of the first step's, and validation
    # agrees with training (no divergence).
    assert train["final_train_loss"] < 0.5 * train["train_losses"][0], train["train_losses"]
    assert train["final_val_loss"] < 1.5 * train["final_train_loss"], (train["final_val_loss"], train["final_train_loss"])
    stages = ("prepare", "train", "merge", "export", "serve", "generate", "evaluate")
    for stage in stages:
        assert (tmp_path / stage / "manifest.json").is_file()
    # The corpus: valid records, markup stripped, and gold spans covering every header PHI field.
    gen = json.loads((tmp_path / "generate" / "manifest.json").read_text())
    assert gen["counts"]["planned"] == 20 and gen["counts"]["valid_fraction"] >= 0.9, gen["counts"]
    assert said["corpus"] == (f"{tmp_path}/generate/records.jsonl: {gen['counts']['valid']} records "
                              f"({gen['counts']['valid']}/20 valid), gold PHI spans in {tmp_path}/generate/"
                              "records.phi.jsonl")
    assert said["report"] == f"{tmp_path}/evaluate/REPORT.md (and {tmp_path}/evaluate/report.html)"
    verdict = json.loads((tmp_path / "evaluate" / "manifest.json").read_text())["gate"]
    assert said["gate"] == "PASSED" if verdict["passed"] else said["gate"].startswith(f"FAILED: {verdict['reasons'][0]}")
    # Generate retried what the consistency checks rejected, and the model's own rate is on record.
    assert gen["consistency"]["reject_inconsistent"] and gen["consistency"]["checked_attempts"] >= gen["counts"]["valid"]
    records = [json.loads(x) for x in (tmp_path / "generate" / "records.jsonl").read_text().splitlines()]
    phi = [json.loads(x) for x in (tmp_path / "generate" / "records.phi.jsonl").read_text().splitlines()]
    assert len(records) == len(phi) == gen["counts"]["valid"]
    from medgen.data.record_format import header_value

    for rec, entry in zip(records, phi):
        assert "[[" not in rec["text"] and "]]" not in rec["text"]
        covered = {rec["text"][s["start"]:s["end"]] for s in entry["spans"]}
        for field in ("Name", "Unit No", "Admission Date", "Discharge Date", "Date of Birth"):
            assert header_value(rec["text"], field) in covered, field
    # The evaluation report, every section, figures only; the demo config releases nothing.
    report = (tmp_path / "evaluate" / "REPORT.md").read_text()
    for section in ("Validity", "Fidelity", "Diversity", "Privacy", "Utility", "Gate"):
        assert section in report, section
    assert (tmp_path / "evaluate" / "report.html").read_text().count("data:image/png;base64,") >= 1
    assert all(s["text"] not in report for entry in phi for s in entry["spans"] if len(s["text"]) > 6)
    print(json.dumps({s: json.loads((tmp_path / s / "manifest.json").read_text()).get("wall_s") for s in stages}))
    # Nothing is done twice: the same command again reuses every stage's outputs.
    t0 = time.monotonic()
    again = subprocess.run([str(medgen), "run", "--config", "configs/default.yaml", "--set", f"run_dir={tmp_path}"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _closing_lines(again.stdout)["skipped (made from these inputs)"] == ", ".join(stages), again.stdout
    print(f"no-op rerun: {time.monotonic() - t0:.1f} s")
    # A run folder can move: a copy, run with its own run_dir, skips every stage and names its own files.
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    subprocess.run(["cp", "-a", str(tmp_path), str(copy)], check=True)
    moved = subprocess.run([str(medgen), "run", "--config", "configs/default.yaml", "--set", f"run_dir={copy}"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert moved.returncode == 0, moved.stderr[-3000:]
    said = _closing_lines(moved.stdout)
    assert said["skipped (made from these inputs)"] == ", ".join(stages), moved.stdout
    assert said["corpus"].startswith(f"{copy}/generate/records.jsonl: ") and said["model"].startswith(f"{copy}/serve/")
    # PHI never leaves the run directory: no training or generated PHI value in any artifact, log or state
    # message the run sent to Prefect.
    needles = _needles(tmp_path)
    assert len(needles) > 50, len(needles)
    sent = _sent_to_prefect(live_server)
    assert "medgen-smoke-test" in sent and "medgen-generate" in sent  # the search does see the run's artifacts
    import re

    # Whole values only: a 7-digit MRN may sit inside a run id or a timestamp by chance.
    leaked = sorted(n for n in needles if re.search(rf"(?<![0-9A-Za-z]){re.escape(n)}(?![0-9A-Za-z])", sent))
    assert not leaked, f"{len(leaked)} PHI values reached the Prefect API, e.g. {leaked[:3]}"

    # A SIGKILLed `medgen run` takes its model server with it (medgen/core/watchdog.py), and the next run resumes.
    # Ten records: the kill comes after two, and the resumed run writes the rest (a minute, not the corpus's worth).
    more = ["--set", f"run_dir={tmp_path}", "--set", "generate.n=10"]
    killed = subprocess.Popen([str(medgen), "run", "--config", "configs/default.yaml", *more], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "generate" / "journal.jsonl"
    deadline = time.monotonic() + 600
    while not (journal.is_file() and journal.read_bytes().count(b"\n") >= 3):  # the header and two records
        assert killed.poll() is None and time.monotonic() < deadline, "expected generate to be under way"
        time.sleep(0.1)
    servers = _serving(tmp_path / "export")
    assert servers, "expected a model server serving the run's GGUF"
    killed.kill()
    killed.wait()
    deadline = time.monotonic() + 30
    while _serving(tmp_path / "export") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _serving(tmp_path / "export"), "a model server outlived the SIGKILLed `medgen run`"
    resumed = subprocess.run([str(medgen), "generate", "--config", "configs/default.yaml", *more],
                             capture_output=True, text=True, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = re.search(r"generate: resuming: (\d+) of 10 already done", resumed.stderr)
    assert done and 2 <= int(done.group(1)) < 10, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "generate" / "manifest.json").read_text())["counts"]["planned"] == 10
