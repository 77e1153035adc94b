"""serve: put the GGUF behind Ollama (where installed) or llama.cpp's server, then smoke-test generation.

Ollama is what users run; llama.cpp (`llama_cpp.server`, the engine Ollama embeds) stands in where the
`ollama` binary is absent, with the same OpenAI-style chat API and the same smoke test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from medgen import smoke
from medgen.config import PipelineConfig
from medgen.constants import INSTRUCTION, MODELFILE, MODELFILE_TEMPLATE, SERVE_LOG_FILE, SMOKE_FILE
from medgen.errors import ServeError, SmokeTestFailed
from medgen.io import atomic_write_text, ensure_dir, owner_only, read_manifest, write_json, write_stage_record
from medgen.modelfile import chat_format, render
from medgen.prepare import chat_messages, make_input

log = logging.getLogger(__name__)
DEPLOYMENTS = Path(__file__).resolve().parent.parent / "deployments"
RunCommand = Callable[[list[str], dict], None]


def _subprocess_run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise ServeError(f"serve.port: {host}:{port} is already in use; stop what holds it or set "
                             f"serve.port=0 to pick a free port") from None


def _http_json(url: str, payload: dict | None = None, timeout: float = 600) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class Generation:
    text: str
    stopped: bool  # ended on a stop token, not the length limit
    tokens: int
    seconds: float


@dataclass
class Server:
    """A model server process medgen started (or None when using one already running)."""

    backend: str
    url: str
    model: str
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def log_tail(self, n: int = 20) -> str:
        if self.log_path and self.log_path.is_file():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def wait_ready(self, probe: str, timeout: float) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServeError(f"{self.backend} server exited with {self.proc.returncode} before it was ready:\n"
                                 f"{self.log_tail()}")
            try:
                _http_json(self.url + probe, timeout=2)
                return time.monotonic() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.25)
        self.stop()
        raise ServeError(f"{self.backend} server at {self.url} not ready after {timeout:.0f} s "
                         f"(serve.ready_timeout_s); log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def chat(self, system: str, user: str, max_tokens: int, temperature: float, top_p: float, seed: int,
             stops: tuple[str, ...]) -> Generation:
        t0 = time.monotonic()
        if self.backend == "ollama":
            return self._ollama_chat(system, user, max_tokens, temperature, top_p, seed, t0)
        payload = {"model": self.model, "messages": chat_messages(system, user),
                   "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed,
                   "stop": list(stops)}
        try:
            out = _http_json(self.url + "/v1/chat/completions", payload)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise ServeError(f"model {self.model!r} not found at {self.url}") from None
            raise ServeError(f"{self.url} answered {e.code}: {e.read()[:300]!r}") from None
        choice = out["choices"][0]
        return Generation(choice["message"]["content"] or "", choice.get("finish_reason") == "stop",
                          int(out.get("usage", {}).get("completion_tokens", 0)), time.monotonic() - t0)

    def _ollama_chat(self, system, user, max_tokens, temperature, top_p, seed, t0) -> Generation:
        import ollama

        client = ollama.Client(host=self.url)
        try:
            r = client.chat(model=self.model, messages=chat_messages(system, user),
                            options={"num_predict": max_tokens, "temperature": temperature, "top_p": top_p,
                                     "seed": seed})
        except ollama.ResponseError as e:
            if e.status_code == 404:
                raise ServeError(f"model {self.model!r} not found on Ollama at {self.url}; "
                                 f"run `ollama create {self.model} -f Modelfile`") from None
            raise ServeError(f"Ollama at {self.url}: {e}") from None
        return Generation(r.message.content or "", r.done_reason == "stop", int(r.eval_count or 0),
                          time.monotonic() - t0)


def choose_backend(config: PipelineConfig) -> str:
    sc = config.serve
    if sc.backend != "auto":
        if sc.backend == "ollama" and not (shutil.which("ollama") or sc.ollama.host):
            raise ServeError("serve.backend: 'ollama' needs the `ollama` binary on PATH or serve.ollama.host; "
                             "use serve.backend=llamacpp or auto")
        return sc.backend
    return "ollama" if (shutil.which("ollama") or sc.ollama.host) else "llamacpp"


def _spawn(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    logf = open(log_path, "ab")
    try:
        # Own process group: stopping the server stops anything it forked.
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        logf.close()


def start_llamacpp(config: PipelineConfig, gguf: Path, out_dir: Path) -> Server:
    sc = config.serve
    if not gguf.is_file():
        raise ServeError(f"model file {gguf} is missing; run `medgen export` first")
    port = sc.port or free_port(sc.host)
    check_port_free(sc.host, port)
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", sc.host, "--port", str(port),
           "--model_alias", sc.model_name, "--n_ctx", str(sc.num_ctx),
           "--n_threads", str(sc.threads or os.cpu_count() or 1)]
    log_path = out_dir / SERVE_LOG_FILE
    server = Server("llamacpp", f"http://{sc.host}:{port}", sc.model_name, _spawn(cmd, {}, log_path), log_path)
    server.wait_ready("/v1/models", sc.ready_timeout_s)
    return server


def start_ollama(config: PipelineConfig, modelfile: Path, out_dir: Path, run_command: RunCommand) -> Server:
    sc = config.serve
    if sc.ollama.host:
        host = sc.ollama.host if "://" in sc.ollama.host else f"http://{sc.ollama.host}"
        server = Server("ollama", host, sc.model_name)
        server.wait_ready("/api/version", sc.ready_timeout_s)
    else:
        port = sc.port or free_port(sc.host)
        check_port_free(sc.host, port)
        models = Path(sc.ollama.models_dir or out_dir / "ollama-models").expanduser()
        ensure_dir(models)
        env = {"OLLAMA_HOST": f"{sc.host}:{port}", "OLLAMA_MODELS": str(models),
               "OLLAMA_NUM_PARALLEL": str(sc.ollama.num_parallel),
               "OLLAMA_MAX_LOADED_MODELS": str(sc.ollama.max_loaded_models)}
        log_path = out_dir / SERVE_LOG_FILE
        server = Server("ollama", f"http://{sc.host}:{port}", sc.model_name,
                        _spawn(["ollama", "serve"], env, log_path), log_path)
        server.wait_ready("/api/version", sc.ready_timeout_s)
    host_env = {"OLLAMA_HOST": server.url.split("://", 1)[1]}
    try:
        run_command(["ollama", "create", sc.model_name, "-f", str(modelfile)], host_env)
    except Exception:
        server.stop()
        raise
    return server


def smoke_test(config: PipelineConfig, server: Server, stops: tuple[str, ...]) -> dict:
    """Generate one record per configured prompt and score it; never logs record text."""
    sm = config.smoke
    rows, tokens, seconds = [], 0, 0.0
    for i, p in enumerate(sm.prompts):
        gen = server.chat(INSTRUCTION, make_input(p.sex, p.service), sm.max_tokens, config.serve.temperature,
                          config.serve.top_p, sm.seed + i, stops)
        row = smoke.score(gen.text, p.sex, p.service, gen.stopped, sm.min_section_fraction)
        row.update(tokens=gen.tokens, seconds=round(gen.seconds, 2), record=gen.text)
        rows.append(row)
        tokens += gen.tokens
        seconds += gen.seconds
        log.info("smoke %d/%d %s/%s: passed=%s", i + 1, len(sm.prompts), p.sex, p.service, row["passed"])
    return {"passed": all(r["passed"] for r in rows), "n": len(rows), "n_passed": sum(r["passed"] for r in rows),
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None, "results": rows}


@dataclass
class ServeResult:
    out_dir: Path
    manifest: dict
    server: Server | None  # still running only when asked to keep it


def run(config: PipelineConfig, run_command: RunCommand | None = None, keep_running: bool | None = None) -> ServeResult:
    """Write the Modelfile, start the backend, smoke-test it; stop it unless asked to keep it."""
    from transformers import AutoTokenizer

    t0 = time.perf_counter()
    keep = config.serve.keep_running if keep_running is None else keep_running
    export = read_manifest(config.stage_dir("export"))
    gguf = Path(export["gguf"])
    merged_dir = Path(export["merged_dir"])
    out_dir = ensure_dir(config.stage_dir("serve"))
    tok = AutoTokenizer.from_pretrained(merged_dir)
    fmt = chat_format(tok.chat_template)
    modelfile = out_dir / MODELFILE
    sc = config.serve
    with owner_only():
        atomic_write_text(modelfile, render(
            DEPLOYMENTS / MODELFILE_TEMPLATE, gguf=gguf.resolve(), name=sc.model_name, modelfile=modelfile.resolve(),
            system=INSTRUCTION, fmt=fmt, eos_token=tok.eos_token, temperature=sc.temperature, top_p=sc.top_p,
            num_ctx=sc.num_ctx))
        backend = choose_backend(config)
        if backend == "ollama":
            server = start_ollama(config, modelfile, out_dir, run_command or _subprocess_run)
        else:
            server = start_llamacpp(config, gguf, out_dir)
            server.notes.append("`ollama` is not on PATH: served with llama.cpp (llama_cpp.server), the engine "
                                "Ollama embeds; the Modelfile is written for when Ollama is available")
        try:
            result = smoke_test(config, server, fmt.stops)
        except BaseException:
            server.stop()
            raise
        if not keep:
            server.stop()
        write_json(out_dir / SMOKE_FILE, result)
        manifest = {
            "stage": "serve", "backend": server.backend, "url": server.url, "model": server.model,
            "pid": server.pid if keep else None, "kept_running": keep, "gguf": str(gguf),
            "modelfile": str(modelfile), "chat_format": fmt.name, "notes": server.notes,
            "smoke": {k: v for k, v in result.items() if k != "results"},
            "smoke_scores": [{k: v for k, v in r.items() if k != "record"} for r in result["results"]],
            "smoke_file": str(out_dir / SMOKE_FILE), "wall_s": round(time.perf_counter() - t0, 2),
        }
        write_stage_record(out_dir, config.to_yaml(), manifest)
    if not result["passed"]:
        failed = [f"{r['sex']}/{r['service']}: " + ", ".join(
            x for x in (("no stop token" if not r["stopped"] else ""),
                        (f"missing {r['missing_fields']}" if r["missing_fields"] else ""),
                        (f"sections {r['section_fraction']:.2f} < {config.smoke.min_section_fraction}"
                         if r["section_fraction"] < config.smoke.min_section_fraction else ""),
                        ("" if r["sex_ok"] else f"Sex {r['got_sex']!r}"),
                        ("" if r["service_ok"] else f"Service {r['got_service']!r}")) if x)
                  for r in result["results"] if not r["passed"]]
        raise SmokeTestFailed(f"smoke test: {result['n_passed']}/{result['n']} records passed; "
                              + "; ".join(failed), manifest["smoke_scores"])
    return ServeResult(out_dir, manifest, server if keep else None)
