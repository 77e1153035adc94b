"""llama.cpp through xllamacpp: the server process medgen serves and verifies GGUFs with, a small HTTP
client for it, and Q4_K_M quantization.

xllamacpp is a prebuilt wheel embedding llama.cpp's own C++ server (parallel slots, continuous
batching). It runs in a child process so that it can be stopped by its process group and its logs go
to a file:

    python -m medgen.serve.llamacpp --model model-f16.gguf --port 8080 --parallel 4 --ctx 2048 --alias medgen

`--ctx` is the context of each slot: llama.cpp's server divides its n_ctx among its n_parallel slots
(its KV cache is not unified), so the server is given n_ctx = ctx * parallel. The client functions use
the standard library only; none of them logs prompt or record text.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgen.core.errors import ExportError, ServeError
from medgen.core.io import EVERY_LINE, ended, log_tail, spawn, stop_process_group

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import xllamacpp

DEFAULT_HOST = "127.0.0.1"
READY_PREFIX = "medgen.serve.llamacpp: ready"
# llama.cpp's quantize API ftype per out-type it alone can make.
QUANT_FTYPES = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


# --- the server process -------------------------------------------------------------------------


def _server_params(model: Path, host: str, port: int, parallel: int, ctx: int, threads: int, alias: str,
                   api_key: str | None, f32_kv_cache: bool,
                   template_kwargs: dict[str, str] | None = None) -> xllamacpp.CommonParams:
    # Imported here: clients of a running server need none of the 34 MB library.
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(model)
    p.hostnames = [host]
    p.port = port
    p.n_parallel = parallel
    p.n_ctx = ctx * parallel
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.model_alias = {alias}
    # llama.cpp keeps each value as JSON text, as its --chat-template-kwargs does.
    p.default_template_kwargs = {k: json.dumps(v) for k, v in (template_kwargs or {}).items()}
    if api_key:
        p.api_keys = [api_key]
    if f32_kv_cache:
        # An F32 KV cache keeps llama.cpp's default F16 cache rounding out of a check of the file's weights.
        p.cache_type_k = xllamacpp.ggml_type.GGML_TYPE_F32
        p.cache_type_v = xllamacpp.ggml_type.GGML_TYPE_F32
    # The model may have memorized training PHI: no browser page may read the API (an empty allowed
    # origin), and /slots, which shows the prompts and text of each slot, stays off.
    p.cors_origins = ""
    p.endpoint_slots = False
    p.ui = False
    return p


def _serve(args: argparse.Namespace) -> int:
    import xllamacpp

    api_key = Path(args.api_key_file).read_text().strip() if args.api_key_file else None
    if args.api_key_file and not api_key:
        print(f"medgen.serve.llamacpp: expected an API key in {args.api_key_file}, got an empty file", flush=True)
        return 2
    params = _server_params(Path(args.model), args.host, args.port, args.parallel, args.ctx, args.threads,
                            args.alias, api_key, args.f32_kv_cache, json.loads(args.template_kwargs))
    # Blocked before the server starts its threads, so they inherit the mask and only sigwait sees these.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as e:
        print(f"medgen.serve.llamacpp: llama.cpp could not start on {args.model} at {args.host}:{args.port}: {e}",
              flush=True)
        return 1
    print(f"{READY_PREFIX} on {server.listening_address} ({args.parallel} slot(s) x {args.ctx} tokens, "
          f"alias {args.alias})", flush=True)
    received = signal.sigwait(stop_signals)
    # The destructor drains the server's loop; the parent SIGKILLs the group should it hang.
    del server
    print(f"medgen.serve.llamacpp: stopped on {signal.Signals(received).name}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m medgen.serve.llamacpp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the GGUF file")
    ap.add_argument("--host", default=DEFAULT_HOST, help="the one address to bind (default %(default)s)")
    ap.add_argument("--port", type=int, required=True, help="0 lets the server pick a free port")
    ap.add_argument("--parallel", type=int, default=1, help="slots answering requests concurrently")
    ap.add_argument("--ctx", type=int, default=2048, help="context of each slot, in tokens")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--alias", default="medgen", help="model name the API reports")
    ap.add_argument("--api-key-file", help="file holding the API key clients must send (kept off the command line)")
    ap.add_argument("--f32-kv-cache", action="store_true", help="F32 instead of F16 KV cache (parity checks)")
    ap.add_argument("--template-kwargs", default="{}", help="JSON object of chat-template variables for every request")
    return _serve(ap.parse_args(argv))


# --- starting and stopping it -------------------------------------------------------------------


def free_port(host: str = DEFAULT_HOST) -> int:
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
                             f"serve.port=0") from None


@dataclass
class LlamaCppProcess:
    """A llama.cpp server child process, leader of its own process group."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ended(self) -> str | None:
        """How the server ended ("exited with code 1", "was killed by signal 9 (SIGKILL)"), or None while it runs."""
        return ended(self.proc)

    def log_tail(self, n: int = 20, before_ready: bool = False) -> str:
        # Before /health answered, the server has been sent no request: its log is the engine's own words
        # (why a model failed to load) and holds no record text, so all of it may be quoted.
        return log_tail(self.log_path, n, safe=EVERY_LINE if before_ready else None)

    def stop(self, timeout_s: float = 10) -> None:
        stop_process_group(self.proc, timeout_s)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until /health answers OK; ServeError if the process exits or the time runs out."""
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise ServeError(f"llama.cpp server exited with {self.proc.returncode} before it was ready; "
                                 f"log tail ({self.log_path}):\n{self.log_tail(before_ready=True)}")
            if _healthy(self.url):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout_s:
                raise ServeError(f"llama.cpp server at {self.url} not ready after {timeout_s:.0f} s (ready_timeout_s); "
                                 f"log tail ({self.log_path}):\n{self.log_tail(before_ready=True)}")
            time.sleep(0.2)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200 and json.loads(r.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def trained_template_kwargs(chat_template: str | None) -> dict[str, str]:
    """Chat-template variables fixed to the values training rendered with.

    Training renders with HF, which leaves a template's variables undefined, so a template's own default
    applies (Llama 3.1: `{% if not date_string is defined %}{% set date_string = "26 Jul 2024" %}`).
    llama.cpp's server defines some of them itself (date_string as today's date); pinning the template's
    defaults gives the served model exactly the prompt it was trained on.
    """
    pattern = r'if\s+not\s+(\w+)\s+is\s+defined\s*-?%\}\s*\{%-?\s*set\s+\1\s*=\s*"([^"]*)"'
    return {m.group(1): m.group(2) for m in re.finditer(pattern, chat_template or "")}


CPU_ON_A_GPU_NODE = (
    "llama.cpp: this node has an NVIDIA GPU, but this llama.cpp build ({build}) has no GPU device, so it decodes on "
    "the CPU: a few tokens/s where the GPU gives hundreds. Fixes: xllamacpp's CUDA wheel (pip install xllamacpp "
    "--force-reinstall --index-url https://xorbitsai.github.io/xllamacpp/whl/cu124), Ollama on PATH (it uses the "
    "GPU; serve.backend=ollama), or generate.engine=vllm (bash scripts/setup.sh --vllm)")


def gpu_devices() -> list[str]:
    """The GPUs this llama.cpp build can decode on. PyPI's xllamacpp wheel is a CPU build: none."""
    import xllamacpp as xlc

    types = xlc.ggml_backend_dev_type
    kinds = {types.GGML_BACKEND_DEVICE_TYPE_GPU, types.GGML_BACKEND_DEVICE_TYPE_IGPU}
    return [d["name"] for d in xlc.get_device_info() if d["type"] in kinds]


def node_has_gpu() -> bool:
    """An NVIDIA GPU on this node, seen without starting CUDA (the driver's device file, or nvidia-smi)."""
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def warn_if_decoding_on_cpu() -> bool:
    """Say so when llama.cpp would decode on the CPU of a GPU node (the seed's '< 5 tokens/s' trap)."""
    if not node_has_gpu() or gpu_devices():
        return False
    from importlib.metadata import version

    log.warning(CPU_ON_A_GPU_NODE.format(build=f"xllamacpp {version('xllamacpp')}"))
    return True


def start_server(gguf: Path, *, log_path: Path, host: str = DEFAULT_HOST, port: int = 0, parallel: int = 1,
                 ctx: int = 2048, threads: int | None = None, alias: str = "medgen",
                 ready_timeout_s: float = 120, f32_kv_cache: bool = False,
                 api_key: str | None = None, template_kwargs: dict[str, str] | None = None,
                 outlive: bool = False) -> LlamaCppProcess:
    """Start `python -m medgen.serve.llamacpp` on `gguf` and return once /health answers OK.

    `ctx` is per slot; port 0 picks a free port. The process logs to `log_path` and is stopped again if
    anything (a KeyboardInterrupt included) happens before this returns.
    """
    if not gguf.is_file():
        raise ServeError(f"expected a GGUF file at {gguf}, got nothing there; run `medgen export` first")
    if port == 0:
        port = free_port(host)
    else:
        check_port_free(host, port)
    cmd = [sys.executable, "-m", "medgen.serve.llamacpp", "--model", str(gguf), "--host", host, "--port", str(port),
           "--parallel", str(parallel), "--ctx", str(ctx), "--threads", str(threads or os.cpu_count() or 1),
           "--alias", alias]
    if f32_kv_cache:
        cmd.append("--f32-kv-cache")
    if template_kwargs:
        cmd += ["--template-kwargs", json.dumps(template_kwargs)]
    key_file = None
    server = None
    try:
        if api_key:
            fd, key_file = tempfile.mkstemp(prefix="medgen-key-")  # mode 0600
            with os.fdopen(fd, "w") as f:
                f.write(api_key)
            cmd += ["--api-key-file", key_file]
        proc = spawn(cmd, {}, log_path, outlive)
        server = LlamaCppProcess(proc, f"http://{host}:{port}", log_path)
        server.wait_ready(ready_timeout_s)
        return server
    except BaseException:
        if server is not None:
            server.stop()
        raise
    finally:
        if key_file:
            # The server read it before /health answered; a failed start needs it no longer either.
            os.unlink(key_file)


# --- HTTP client ----------------------------------------------------------------------------------


def _request(url: str, payload: dict | None = None, *, api_key: str | None = None, timeout_s: float = 600) -> Any:
    """The decoded JSON answer of a GET (no payload) or POST; ServeError for an HTTP error or no server."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise ServeError(f"{url}: expected HTTP 200, got {e.code}: {e.read()[:300].decode(errors='replace')}") from None
    except urllib.error.URLError as e:
        raise ServeError(f"cannot reach the llama.cpp server at {url}: {e.reason}") from None


def tokenize(url: str, text: str, *, api_key: str | None = None) -> list[int]:
    """Token ids of `text` as llama.cpp reads it: special tokens parsed, no BOS added."""
    out = _request(url + "/tokenize", {"content": text, "add_special": False, "parse_special": True}, api_key=api_key)
    return [int(t) for t in out["tokens"]]


def chat(url: str, messages: list[dict], *, max_tokens: int, temperature: float, top_p: float, seed: int,
         stop: list[str] | tuple[str, ...] = (), api_key: str | None = None,
         timeout_s: float = 600) -> tuple[str, bool, int]:
    """One chat completion with the GGUF's chat template: (text, ended on a stop rather than the length
    limit, completion tokens)."""
    payload = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
               "seed": seed, "stop": list(stop)}
    out = _request(url + "/v1/chat/completions", payload, api_key=api_key, timeout_s=timeout_s)
    choice = out["choices"][0]
    return (choice["message"].get("content") or "", choice.get("finish_reason") == "stop",
            int(out.get("usage", {}).get("completion_tokens", 0)))


def next_token_logprobs(url: str, ids: list[int], k: int, *, api_key: str | None = None) -> list[dict[int, float]]:
    """For each position i of `ids`, llama.cpp's top-k log-probs of the token after ids[:i+1].

    llama.cpp's server has no prompt log-probs, so each prefix is its own one-token completion
    (`n_probs: k`, greedy), whose `completion_probabilities[0].top_logprobs` carry token ids. Positions
    are split into one contiguous run per slot; each run is one multi-prompt `/completion` pinned to its
    slot (`id_slot`) with `cache_prompt`, so each prefix evaluates only its last token, the slots decode
    together, and no HTTP round trip sits between two prefixes.
    """
    n_slots = int(_request(url + "/props", api_key=api_key).get("total_slots", 1))
    n_runs = max(1, min(n_slots, len(ids)))
    bounds = [len(ids) * j // n_runs for j in range(n_runs + 1)]

    def run(slot: int) -> list[dict[int, float]]:
        prefixes = [ids[: i + 1] for i in range(bounds[slot], bounds[slot + 1])]
        # The grammar keeps the sampled token printable ASCII: a greedy byte token that ends inside a UTF-8
        # character is never emitted, and its log-probs with it. n_probs still reports the raw distribution.
        out = _request(url + "/completion", {"prompt": prefixes, "n_predict": 1, "n_probs": k, "temperature": 0,
                                             "cache_prompt": True, "id_slot": slot,
                                             "grammar": r"root ::= [\x09-\x7e]+"}, api_key=api_key)
        # One prompt comes back as an object, several as a list in any order with their index.
        results = sorted(out, key=lambda r: r["index"]) if isinstance(out, list) else [out]
        if len(results) != len(prefixes):
            raise ServeError(f"{url}/completion: expected {len(prefixes)} results, got {len(results)}")
        return [{int(t["id"]): float(t["logprob"]) for t in r["completion_probabilities"][0]["top_logprobs"]}
                for r in results]

    with ThreadPoolExecutor(n_runs) as pool:
        return [lp for part in pool.map(run, range(n_runs)) for lp in part]


# --- quantization ---------------------------------------------------------------------------------


def quantize(src: Path, dst: Path, outtype: str = "q4_k_m") -> None:
    """Quantize the GGUF `src` into `dst` with llama.cpp's C quantize API (llama-cpp-python).

    xllamacpp does not export that API, so this is the one place medgen needs llama-cpp-python, and
    only for the out-types our converter cannot write.
    """
    if outtype not in QUANT_FTYPES:
        raise ExportError(f"quantize: expected an out-type in {', '.join(QUANT_FTYPES)}, got {outtype!r}")
    try:
        import llama_cpp
    except ImportError:
        raise ExportError(f"export.outtype={outtype} needs llama.cpp's quantize API: pip install "
                          "'medgen[quantize]' (builds llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF), "
                          "or use q8_0") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_FTYPES[outtype])
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise ExportError(f"llama.cpp could not quantize {src} to {outtype.upper()}; expected a readable "
                          f"F16/F32 GGUF")


if __name__ == "__main__":
    sys.exit(main())
