"""Model servers behind one small interface: Ollama (what users run) and llama.cpp (where Ollama is absent).

Both speak chat; both have parallel slots (OLLAMA_NUM_PARALLEL, llama.cpp's continuous batching), so the
smoke test and bulk generation drive them the same way.
"""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from medgen.core.config import PipelineConfig, is_loopback
from medgen.core.constants import API_KEY_FILE
from medgen.core.errors import ServeError
from medgen.core.io import EVERY_LINE, atomic_write_text, ensure_dir, log_tail, owner_only

RunCommand = Callable[[list[str], dict], None]
# How each engine is named to a person.
DISPLAY_NAMES = {"llamacpp": "llama.cpp server", "ollama": "Ollama server", "vllm": "vLLM engine"}
SEED_MODULUS = 2**31  # llama.cpp and Ollama take 32-bit seeds


def request_seed(seed: int, index: int) -> int:
    """A sampling seed per request, from the plan seed and the request's index alone (so shards agree)."""
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % SEED_MODULUS


# A retry's seed follows from the request's seed and the attempt alone, so any record can be regenerated.
RETRY_SEED_STEP = 1_000_003


def attempt_seed(first: int, attempt: int) -> int:
    return (first + attempt * RETRY_SEED_STEP) % SEED_MODULUS


@dataclass
class Generation:
    text: str
    stopped: bool  # ended on a stop token, not the length limit
    tokens: int
    seconds: float


@dataclass
class Backend(abc.ABC):
    name: str
    url: str
    model: str
    slots: int
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    @abc.abstractmethod
    def pid(self) -> int | None:
        """The server process medgen started, or None for a server it only connected to."""

    @abc.abstractmethod
    def chat(self, messages: list[dict], *, max_tokens: int, temperature: float, top_p: float, seed: int,
             stop: tuple[str, ...]) -> Generation: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def ended(self) -> str | None:
        """How the server process medgen started ended ("was killed by signal 9 (SIGKILL)"); None while it runs,
        and for a server medgen only connected to."""

    def alive(self) -> bool:
        return self.ended() is None

    @property
    def display_name(self) -> str:
        return DISPLAY_NAMES.get(self.name, f"{self.name} server")

    def log_tail(self, n: int = 20, before_ready: bool = False) -> str:
        # Before it answered, the server has been sent no request: its whole log may be quoted.
        return log_tail(self.log_path, n, safe=EVERY_LINE if before_ready else None) if self.log_path else ""


@dataclass
class LlamaCppBackend(Backend):
    process: object = None  # medgen.serve.llamacpp.LlamaCppProcess
    api_key: str | None = field(default=None, repr=False)  # required by a server bound beyond loopback

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def chat(self, messages, *, max_tokens, temperature, top_p, seed, stop) -> Generation:
        from medgen.serve.llamacpp import chat

        t0 = time.monotonic()
        text, stopped, tokens = chat(self.url, messages, max_tokens=max_tokens, temperature=temperature,
                                     top_p=top_p, seed=seed, stop=stop, api_key=self.api_key)
        return Generation(text, stopped, tokens, time.monotonic() - t0)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def ended(self) -> str | None:
        return self.process.ended() if self.process else None


@dataclass
class OllamaBackend(Backend):
    proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def chat(self, messages, *, max_tokens, temperature, top_p, seed, stop) -> Generation:
        import ollama

        t0 = time.monotonic()
        try:
            # Stops come from the Modelfile; sampling per request, as for llama.cpp.
            r = ollama.Client(host=self.url).chat(
                model=self.model, messages=messages,
                options={"num_predict": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed})
        except ollama.ResponseError as e:
            if e.status_code == 404:
                raise ServeError(f"model {self.model!r} not found on Ollama at {self.url}; "
                                 f"run `ollama create {self.model} -f Modelfile`") from None
            raise ServeError(f"Ollama at {self.url}: {e.status_code}") from None
        return Generation(r.message.content or "", r.done_reason == "stop", int(r.eval_count or 0),
                          time.monotonic() - t0)

    def stop(self) -> None:
        from medgen.core.io import stop_process_group

        if self.proc is not None:
            stop_process_group(self.proc)

    def ended(self) -> str | None:
        from medgen.core.io import ended

        return ended(self.proc) if self.proc else None

    def wait_ready(self, timeout_s: float) -> None:
        import json
        import urllib.request

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServeError(f"ollama serve exited with {self.proc.returncode} before it was ready; "
                                 f"log tail ({self.log_path}):\n{self.log_tail(before_ready=True)}")
            try:
                with urllib.request.urlopen(self.url + "/api/version", timeout=2) as r:
                    json.loads(r.read())
                    return
            except (OSError, ValueError):
                time.sleep(0.25)
        raise ServeError(f"Ollama at {self.url} not ready after {timeout_s:.0f} s (serve.ready_timeout_s); "
                         f"log tail:\n{self.log_tail(before_ready=True)}")

    def stored_template(self) -> str:
        """The TEMPLATE Ollama stored for the model (`/api/show`)."""
        import ollama

        return ollama.Client(host=self.url).show(self.model).template or ""


def choose(config: PipelineConfig) -> str:
    sc = config.serve
    if sc.backend != "auto":
        if sc.backend == "ollama" and not (shutil.which("ollama") or sc.ollama.host):
            raise ServeError("serve.backend: 'ollama' needs the `ollama` binary on PATH or serve.ollama.host; "
                             "use serve.backend=llamacpp or auto")
        return sc.backend
    return "ollama" if (shutil.which("ollama") or sc.ollama.host) else "llamacpp"


def start_llamacpp(config: PipelineConfig, gguf: Path, log_path: Path, chat_template: str | None = None,
                   outlive: bool = False) -> LlamaCppBackend:
    """llama.cpp's server on the GGUF, rendering prompts as training did (`chat_template`: the model's own)."""
    from medgen.serve.llamacpp import start_server, trained_template_kwargs, warn_if_decoding_on_cpu

    warn_if_decoding_on_cpu()
    sc = config.serve
    key = None if is_loopback(sc.host) else api_key(config)
    process = start_server(gguf, log_path=log_path, host=sc.host, port=sc.port, parallel=sc.parallel,
                           ctx=sc.num_ctx, threads=sc.threads, alias=sc.model_name, ready_timeout_s=sc.ready_timeout_s,
                           api_key=key, template_kwargs=trained_template_kwargs(chat_template), outlive=outlive)
    backend = LlamaCppBackend("llamacpp", process.url, sc.model_name, sc.parallel, log_path, process=process,
                              api_key=key)
    if key:
        backend.notes.append(f"bound to {sc.host}: requests need `Authorization: Bearer <key>`, the key being in "
                             f"{sc.api_key_file or config.stage_dir('serve') / API_KEY_FILE}")
    return backend


def api_key(config: PipelineConfig) -> str:
    """The key a non-loopback server requires: serve.api_key_file's, or a new one written owner-only."""
    import secrets

    sc = config.serve
    if sc.api_key_file:
        path = Path(sc.api_key_file).expanduser()
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ServeError(f"serve.api_key_file: cannot read {path}: {e}; point it at a readable file "
                             "holding one key") from None
        if len(key) < 16:
            raise ServeError(f"serve.api_key_file: expected a key of at least 16 characters in {path}, got "
                             f"{len(key)}; make one with "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return key
    path = config.stage_dir("serve") / API_KEY_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    with owner_only():
        atomic_write_text(path, key + "\n")
    return key


def start_ollama(config: PipelineConfig, modelfile: Path, log_path: Path, run_command: RunCommand,
                 outlive: bool = False) -> OllamaBackend:
    from medgen.serve.llamacpp import check_port_free, free_port

    sc = config.serve
    if not is_loopback(sc.host):
        raise ServeError(f"serve.host: Ollama has no API keys, so medgen does not start it on {sc.host!r}; keep "
                         "serve.host on loopback and put an authenticating reverse proxy in front, or use "
                         "serve.backend=llamacpp, which requires a key")
    if sc.ollama.host:
        host = sc.ollama.host if "://" in sc.ollama.host else f"http://{sc.ollama.host}"
        backend = OllamaBackend("ollama", host, sc.model_name, sc.parallel)
        backend.wait_ready(sc.ready_timeout_s)
    else:
        port = sc.port or free_port(sc.host)
        check_port_free(sc.host, port)
        models = ensure_dir(Path(sc.ollama.models_dir or log_path.parent / "ollama-models").expanduser())
        env = {"OLLAMA_HOST": f"{sc.host}:{port}", "OLLAMA_MODELS": str(models),
               "OLLAMA_NUM_PARALLEL": str(sc.parallel), "OLLAMA_MAX_LOADED_MODELS": str(sc.ollama.max_loaded_models)}
        from medgen.core.io import spawn

        backend = OllamaBackend("ollama", f"http://{sc.host}:{port}", sc.model_name, sc.parallel, log_path,
                                proc=spawn(["ollama", "serve"], env, log_path, outlive))
    try:
        if backend.proc is not None:
            backend.wait_ready(sc.ready_timeout_s)
        run_command(["ollama", "create", sc.model_name, "-f", str(modelfile)],
                    {"OLLAMA_HOST": backend.url.split("://", 1)[1]})
    except BaseException:
        backend.stop()
        raise
    return backend


def subprocess_run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
