"""Crash safety: a process killed (SIGKILL) at each stage boundary leaves nothing that a rerun trusts wrongly.

Each point is reached by a fresh process that reruns the chain prepare → train → merge → export on the
same run_dir, as a user would after a crash; the last rerun, uninterrupted, must leave the same outputs as
a run that was never killed, and no temp folders behind.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medgen.core.constants import MANIFEST_FILE
from medgen.core.faults import ENV

from conftest import TINY

pytestmark = pytest.mark.slow  # every test here trains

STAGES = ["prepare", "train", "merge", "export"]
# Right after a stage removed its manifest, and with its outputs written but not its manifest; a kill
# between two stages is the same moment as the next one's start.
POINTS = [f"{stage}:{point}" for stage in STAGES for point in ("start", "manifest")]

CHAIN = """
import json, sys
from medgen.core import skip
from medgen.core.config import load_config

cfg = load_config("configs/default.yaml", json.loads(sys.argv[1]))
print(json.dumps({stage: skip.run(cfg, stage).skipped for stage in json.loads(sys.argv[2])}))
"""


def _chain(run_dir: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if crash_at:
        env[ENV] = crash_at
    # The GGUF parity check is the export tests' business; here it would only triple the time.
    overrides = [f"run_dir={run_dir}", *TINY, "export.verify=false"]
    return subprocess.run([sys.executable, "-c", CHAIN, json.dumps(overrides), json.dumps(STAGES)],
                          env=env, capture_output=True, text=True, timeout=900)


def _outputs(run_dir: Path) -> dict[str, str]:
    """Every output file's hash; manifests and resolved configs hold paths and times, so they are compared
    through their fingerprints instead."""
    hashes = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if not path.is_file() or path.name in ("config.resolved.yaml", ".medgen.lock") or "/checkpoints/" in f"/{rel}":
            continue
        if path.name == MANIFEST_FILE:
            hashes[rel] = json.loads(path.read_text())["fingerprint"]
        elif path.suffix not in (".png", ".json", ".md"):  # plots and cards carry times and paths
            hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def test_killed_at_each_stage_boundary_the_rerun_equals_an_uninterrupted_run(repo_root, tmp_path):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    done = _chain(straight)
    assert done.returncode == 0, done.stderr[-3000:]

    for point in POINTS:
        killed = _chain(crashed, point)
        assert killed.returncode == -9, f"{point}: expected a SIGKILL there, got exit {killed.returncode}: " \
                                        f"{killed.stderr[-2000:]}"
        stage = point.split(":")[0]
        assert not (crashed / stage / MANIFEST_FILE).exists(), f"{point}: the interrupted stage looks complete"

    rerun = _chain(crashed)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # The last kill was at export's manifest: only export runs again, everything before it is reused.
    assert json.loads(rerun.stdout.strip().splitlines()[-1]) == {"prepare": True, "train": True, "merge": True,
                                                                  "export": False}
    assert _outputs(crashed) == _outputs(straight)
    leftovers = [p for p in crashed.rglob("*") if p.name.endswith(".tmp") or ".old-" in p.name]
    assert leftovers == [], leftovers
