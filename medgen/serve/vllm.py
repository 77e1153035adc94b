"""vLLM's offline engine in this process, behind the Backend interface (`generate.engine: vllm`).

The merged 16-bit model is loaded by `vllm.LLM`; one engine thread feeds it. `chat` (called from the generate
driver's threads, one per request in flight) hands its request to that thread and waits: the thread adds new
requests to the engine between its steps and hands each finished one back, so requests join and leave the
running batch one by one (continuous batching), each with its own sampling seed and stops.

Prompts are the token ids of the model's own chat template, rendered by the Hugging Face tokenizer exactly as
training rendered them (no second BOS). vLLM logs figures only, never prompts or records. A dead engine (its
core process killed, an error in a step) reads as `ended()`, which lets the generate stage start a new one, as
it restarts a dead server.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.errors import ConfigError, ServeError
from medgen.model import precision
from medgen.serve.backends import Backend, Generation

log = logging.getLogger(__name__)

NOT_INSTALLED = ("generate.engine: 'vllm' needs vllm, which pins its own torch and transformers: `bash "
                 "scripts/setup.sh --vllm` (CUDA) or `--vllm-cpu` makes .venv-vllm beside .venv, or point "
                 "generate.vllm.python at a venv with vllm and medgen; or set generate.engine=auto")
PROMPT_TOKENS = 512  # room for the instruction and the metadata line, beside the record's own tokens


def available() -> bool:
    """Whether vllm can be imported here."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def interpreter(config: PipelineConfig) -> str | None:
    """A Python with vllm when this one has none: generate.vllm.python, or this checkout's .venv-vllm."""
    if config.generate.vllm.python:
        return config.generate.vllm.python
    import medgen

    venv = Path(medgen.__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"
    return str(venv) if venv.is_file() else None


class _Engine:
    """The thread that owns the engine: it alone adds requests and steps."""

    def __init__(self, llm) -> None:
        self.engine = llm.llm_engine
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.died: str | None = None
        self._closing = threading.Event()
        self._ids = itertools.count()
        self._pending: dict[str, Future] = {}
        self._thread = threading.Thread(target=self._loop, name="vllm-engine", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch_core, name="vllm-watch", daemon=True).start()

    def submit(self, prompt_ids: list[int], params) -> Future:
        fut: Future = Future()
        self.inbox.put((prompt_ids, params, fut))
        if self.died:  # also when it died just as this was queued: nothing would ever take it
            self._fail_all()
        return fut

    def _take(self, block: bool) -> None:
        """Add what arrived to the running batch (waiting a moment for work when nothing is decoding)."""
        from vllm.inputs import tokens_input

        try:
            item = self.inbox.get(timeout=0.1) if block else self.inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            prompt_ids, params, fut = item
            rid = str(next(self._ids))
            try:
                self.engine.add_request(rid, tokens_input(prompt_ids), params)
                self._pending[rid] = fut
            except Exception as e:  # this request is invalid (too long, say): it alone fails
                fut.set_exception(ServeError(f"vLLM refused a request: {type(e).__name__}: {e}"))
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                item = None

    def _loop(self) -> None:
        try:
            while not self._closing.is_set():
                busy = self.engine.has_unfinished_requests()
                self._take(block=not busy)
                if not self.engine.has_unfinished_requests():
                    continue  # stepping an idle multiprocess engine would wait for output forever
                for out in self.engine.step():
                    if out.finished and (fut := self._pending.pop(out.request_id, None)) is not None:
                        fut.set_result(out)
        except BaseException as e:  # the engine core died, or a step failed: every waiting request learns why
            self.died = f"died ({type(e).__name__})"
            self._fail_all()

    def _watch_core(self) -> None:
        # A step blocked on the core's output queue never wakes if the core process is killed; its monitor sets
        # `engine_dead`, and this wakes the step with the error the engine itself would raise.
        core = getattr(self.engine, "engine_core", None)
        resources = getattr(core, "resources", None)
        while resources is not None and self._thread.is_alive() and not self._closing.wait(1.0):
            if getattr(resources, "engine_dead", False):
                from vllm.v1.engine.exceptions import EngineDeadError

                core.outputs_queue.put_nowait(EngineDeadError())
                return

    def _fail_all(self) -> None:
        waiting = list(self._pending.values())
        self._pending.clear()
        while True:
            try:
                waiting.append(self.inbox.get_nowait()[2])
            except queue.Empty:
                break
        for fut in waiting:
            with contextlib.suppress(InvalidStateError):  # failed by the other thread already
                fut.set_exception(ServeError(f"the vLLM engine {self.died}"))

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=30)
        core = getattr(self.engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()


@dataclass
class VllmBackend(Backend):
    engine: _Engine | None = None
    tokenizer: object = None
    stops: tuple[str, ...] = ()
    _stopped: bool = field(default=False, repr=False)
    _tokenizing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def pid(self) -> int | None:
        return None  # in this process

    def chat(self, messages, *, max_tokens, temperature, top_p, seed, stop) -> Generation:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        with self._tokenizing:  # a Rust tokenizer is not safe to share between threads
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=False)
        params = SamplingParams(n=1, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
                                stop=list(stop) or None, skip_special_tokens=True,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        t0 = time.monotonic()
        out = self.engine.submit(list(ids), params).result().outputs[0]
        return Generation(out.text, out.finish_reason == "stop", len(out.token_ids), time.monotonic() - t0)

    def stop(self) -> None:
        if self.engine is not None and not self._stopped:
            self._stopped = True
            self.engine.close()

    def ended(self) -> str | None:
        if self.engine is None:
            return None
        return self.engine.died


def start(config: PipelineConfig, merged_dir: Path) -> tuple[VllmBackend, tuple[str, ...]]:
    """vLLM's engine on the merged model, and the end-of-turn stops of its chat format."""
    if not available():
        raise ConfigError([NOT_INSTALLED])
    import torch
    from transformers import AutoTokenizer

    from medgen.serve.modelfile import chat_format

    gen = config.generate
    vc = gen.vllm
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(vc.cpu_kv_cache_gib))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its start-up figures, a hundred lines, only if asked
    tok = AutoTokenizer.from_pretrained(merged_dir)
    stops = chat_format(tok, add_bos=False).stops
    t0 = time.monotonic()
    from vllm import LLM

    cuda = torch.cuda.is_available()
    dtype = vc.dtype if vc.dtype != "auto" else \
        precision.TORCH_DTYPES[precision.choose("auto", "cuda" if cuda else "cpu", "generate.vllm.dtype").name]
    # On CPU the KV cache is sized by VLLM_CPU_KVCACHE_SPACE, and CUDA graphs do not exist.
    llm = LLM(model=str(merged_dir), tokenizer=str(merged_dir), dtype=dtype, seed=gen.seed,
              max_model_len=vc.max_model_len or gen.max_tokens + PROMPT_TOKENS, max_num_seqs=vc.max_num_seqs,
              **({"gpu_memory_utilization": vc.gpu_memory_utilization} if cuda else {"enforce_eager": True}))
    log.info("generate: vLLM engine up in %.0f s on %s (%s, %d sequences at once)", time.monotonic() - t0,
             "CUDA" if cuda else "CPU", dtype, vc.max_num_seqs)
    backend = VllmBackend("vllm", "in-process", config.serve.model_name, vc.max_num_seqs, engine=_Engine(llm),
                          tokenizer=tok, stops=stops)
    return backend, stops
