"""serve: put the GGUF behind Ollama (where installed) or llama.cpp's server, then smoke-test generation.

Ollama is what users run; llama.cpp's own C++ server (xllamacpp, the engine Ollama embeds) stands in
where the `ollama` binary is absent, with the same chat API, parallel slots and the same smoke test.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.constants import MODELFILE, SERVER_FILE, SMOKE_FILE
from medgen.core.errors import ServeError
from medgen.core.io import ensure_dir, owner_only, write_json
from medgen.core.provenance import fingerprint
from medgen.core.results import ExportResult, ServeResult
from medgen.data.prompts import request_messages
from medgen.serve import backends, smoke
from medgen.serve.launch import start, write_modelfile

log = logging.getLogger(__name__)


def smoke_test(config: PipelineConfig, server: backends.Backend, stops: tuple[str, ...]) -> dict:
    """Generate one record per configured prompt, as many at once as the server has slots, and score them; a
    prompt whose record fails is tried again with a new seed, up to smoke.attempts tries.

    Never logs record text: the records go to the owner-only smoke.json only.
    """
    sm = config.smoke
    inline = config.data.markup_mode() == "inline"

    def one(i: int) -> dict:
        p = sm.prompts[i]
        tokens, seconds, failed = 0, 0.0, []
        for attempt in range(sm.attempts):
            gen = server.chat(request_messages(p.sex, p.service, inline), max_tokens=sm.max_tokens,
                              temperature=config.serve.temperature, top_p=config.serve.top_p,
                              seed=backends.attempt_seed(sm.seed + i, attempt), stop=stops)
            row = smoke.score(gen.text, p.sex, p.service, gen.stopped, sm.min_section_fraction, inline)
            tokens, seconds = tokens + gen.tokens, seconds + gen.seconds
            if row["passed"]:
                break
            failed.append(row["reasons"])
        # A prompt that never passed reports its last try's reasons; `failed_tries` keeps every failed try's.
        row.update(tries=attempt + 1, failed_tries=failed, tokens=tokens, seconds=round(seconds, 2), record=gen.text)
        log.info("smoke %d/%d %s/%s: passed=%s after %d %s", i + 1, len(sm.prompts), p.sex, p.service,
                 row["passed"], row["tries"], "try" if row["tries"] == 1 else "tries")
        return row

    t0 = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=server.slots, thread_name_prefix="smoke")
    try:
        rows = list(pool.map(one, range(len(sm.prompts))))
    except BaseException:
        # Ctrl-C or a job's SIGTERM: leave the requests in flight to the server's stop, which ends them; waiting
        # for them would hold the interrupt until each record reached smoke.max_tokens.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    wall = time.monotonic() - t0
    tokens = sum(r["tokens"] for r in rows)
    return {"passed": all(r["passed"] for r in rows), "n": len(rows), "n_passed": sum(r["passed"] for r in rows),
            "n_passed_first_try": sum(not r["failed_tries"] for r in rows),
            "tries": sum(r["tries"] for r in rows), "tokens_per_s": round(tokens / wall, 1) if wall else None,
            "results": rows}


def inputs(config: PipelineConfig) -> dict:
    """What a smoke test's verdict depends on (medgen/core/skip.py): serving and smoke settings, and the GGUF."""
    exported = ExportResult.from_manifest(config.stage_dir("export"))
    return fingerprint({"serve": config.serve.model_dump(mode="json", exclude={"keep_running"}),
                        "smoke": config.smoke.model_dump(mode="json")}, {"export": exported.identity})


def run(config: PipelineConfig, run_command: backends.RunCommand | None = None,
        keep_running: bool | None = None, raise_on_failure: bool = True) -> ServeResult:
    """Write the Modelfile, start the backend, smoke-test it; stop it unless asked to keep it.

    A failed smoke test raises SmokeTestFailed, unless `raise_on_failure` is False (the caller keeping the
    server then reports it itself, with the server's PID).
    """
    t0 = time.perf_counter()
    keep = config.serve.keep_running if keep_running is None else keep_running
    exported = ExportResult.from_manifest(config.stage_dir("export"))
    out_dir = ensure_dir(config.stage_dir("serve"))
    modelfile = out_dir / MODELFILE
    with owner_only():
        fmt = write_modelfile(config, exported, modelfile)
        server = start(config, exported, modelfile, out_dir, run_command, outlive=keep)
        try:
            result = smoke_test(config, server, fmt.stops)
            write_json(out_dir / SMOKE_FILE, result)
        except BaseException:
            server.stop()
            raise
        if not keep:
            server.stop()
        serve_result = ServeResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2),
            **inputs(config),
            backend=server.name, url=server.url, model=server.model, pid=server.pid if keep else None,
            kept_running=keep, gguf=exported.gguf, modelfile=modelfile, chat_format=fmt.name, notes=server.notes,
            smoke={k: v for k, v in result.items() if k != "results"},
            smoke_scores=[{k: v for k, v in r.items() if k != "record"} for r in result["results"]],
            smoke_file=out_dir / SMOKE_FILE,
        )
        serve_result._server = server if keep else None
        (out_dir / SERVER_FILE).unlink(missing_ok=True)
        if keep and server.pid is not None:
            write_server_file(out_dir / SERVER_FILE, server)
        serve_result.write(config.to_yaml())
    if raise_on_failure and not serve_result.smoke["passed"]:
        if keep:  # nobody would be told to stop a server behind a failed stage
            server.stop()
            (out_dir / SERVER_FILE).unlink(missing_ok=True)
        serve_result.raise_for_smoke()
    return serve_result


def write_server_file(path: Path, server: backends.Backend) -> dict:
    """Say where the kept server runs, so that a person (or `medgen serve --stop`) can reach and end it.

    Inside a Slurm job the server lives on the GPU node, bound to its loopback: reach it through an SSH
    tunnel to that node; `--stop` cancels the job, which takes the server with it.
    """
    info = {"url": server.url, "model": server.model, "backend": server.name, "pid": server.pid,
            "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(path, info)
    return info


def stop(config: PipelineConfig) -> dict:
    """End the server `serve.keep_running` left up: its Slurm job, or its process group on this host."""

    path = config.stage_dir("serve") / SERVER_FILE
    if not path.is_file():
        raise ServeError(f"{path}: no kept server is recorded for run_dir {config.run_dir}; nothing to stop")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("slurm_job_id"):
        from medgen.cluster import slurm

        slurm.cancel(str(info["slurm_job_id"]))
    elif info.get("host") == socket.gethostname():
        try:
            os.killpg(int(info["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            log.info("serve: the server (PID %s) had already exited", info["pid"])
    else:
        raise ServeError(f"{path}: the server runs on {info.get('host')} (PID {info.get('pid')}), not on this host; "
                         "run `medgen serve --stop` there")
    path.unlink()
    return info
