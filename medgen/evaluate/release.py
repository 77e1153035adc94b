"""release: point the served name at a model whose corpus passed the gate, and record which run it is.

The release is `released.json` in `orchestration.release_dir` (one per deployment, shared by its runs):
written atomically, so a run that fails the gate never touches it and the previous release stays. Where
Ollama serves models, the tag `<serve.model_name>:latest` is moved to the new Modelfile as well.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.constants import RELEASED_FILE
from medgen.core.io import ensure_dir, owner_only, write_json
from medgen.core.provenance import environment
from medgen.core.results import EvaluateResult, ExportResult, ServeResult
from medgen.serve.backends import RunCommand, subprocess_run


def released(config: PipelineConfig) -> dict | None:
    """The current release record, or None before the first release."""
    import json

    path = Path(config.orchestration.release_dir).expanduser() / RELEASED_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run(config: PipelineConfig, run_command: RunCommand | None = None) -> dict:
    """Release this run's model; GateFailed (with the reasons) when its corpus did not pass the gate."""
    evaluated = EvaluateResult.from_manifest(config.stage_dir("evaluate"))
    evaluated.raise_for_gate()
    exported = ExportResult.from_manifest(config.stage_dir("export"))
    served = ServeResult.from_manifest(config.stage_dir("serve"))
    tag = f"{config.serve.model_name}:latest"
    record = {"released_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "run_dir": str(config.run_path.resolve()), "tag": tag, "gguf": str(exported.gguf),
              "modelfile": str(served.modelfile), "export_fingerprint": exported.fingerprint,
              "evaluate_fingerprint": evaluated.fingerprint, "gate": evaluated.gate, "environment": environment(),
              "ollama": False}
    if shutil.which("ollama") or config.serve.ollama.host:

        env = {"OLLAMA_HOST": config.serve.ollama.host} if config.serve.ollama.host else {}
        (run_command or subprocess_run)(["ollama", "create", tag, "-f", str(served.modelfile)], env)
        record["ollama"] = True
    with owner_only():
        write_json(ensure_dir(Path(config.orchestration.release_dir).expanduser()) / RELEASED_FILE, record)
    return record
