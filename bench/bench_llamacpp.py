"""llama.cpp generation speed of medgen's GGUF exports: F16 (baseline) against BF16, Q8_0 and Q4_K_M.

    .venv/bin/python bench/bench_llamacpp.py [--model runs/default/merge/merged] [--tokens 200] [--parallel 4]

Without --model it uses the embedded SmolLM2-135M-Instruct (dequantized HF copy). Each out-type is served
by medgen.serve.llamacpp (xllamacpp) with --parallel slots and asked the same record prompts, one per slot at
once; prints generated tokens/s, file size and the ratio to F16 measured in the same run. Q4_K_M needs
llama.cpp's quantize API (`pip install 'medgen[quantize]'`); without it that row is skipped.
"""

import argparse
import importlib.util
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medgen.data.prompts import PROBES, request_messages
from medgen.export.gguf_convert import convert
from medgen.serve import llamacpp
from medgen.model.loading import resolve_base


def tokens_per_s(gguf: Path, log: Path, n_tokens: int, parallel: int, threads: int) -> float:
    server = llamacpp.start_server(gguf, log_path=log, parallel=parallel, ctx=n_tokens + 256, threads=threads)
    prompts = [request_messages(*PROBES[i % len(PROBES)], False) for i in range(parallel)]

    def ask(messages: list[dict], max_tokens: int = n_tokens) -> int:
        # Greedy with no stop strings, so every out-type generates about the same number of tokens.
        return llamacpp.chat(server.url, messages, max_tokens=max_tokens, temperature=0.0, top_p=1.0, seed=0)[2]

    try:
        ask(prompts[0], 8)  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            tokens = sum(pool.map(ask, prompts))
        return tokens / (time.perf_counter() - t0)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="HF folder (a merged model); default: the embedded model")
    ap.add_argument("--tokens", type=int, default=200, help="tokens generated per request")
    ap.add_argument("--parallel", type=int, default=1, help="server slots, and concurrent requests")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    model = Path(args.model or resolve_base("embedded"))
    with tempfile.TemporaryDirectory() as d:
        paths = {t: Path(d) / f"m-{t}.gguf" for t in ("f16", "bf16", "q8_0")}
        for t, p in paths.items():
            convert(model, p, t)
        if importlib.util.find_spec("llama_cpp") is None:
            print("q4_k_m  skipped: llama.cpp's quantize API needs llama-cpp-python (pip install 'medgen[quantize]')")
        else:
            paths["q4_k_m"] = Path(d) / "m-q4_k_m.gguf"
            llamacpp.quantize(paths["f16"], paths["q4_k_m"], "q4_k_m")
        rates = {t: tokens_per_s(p, Path(d) / f"{t}.log", args.tokens, args.parallel, args.threads)
                 for t, p in paths.items()}
        for t, r in rates.items():
            size = paths[t].stat().st_size / 2**20
            print(f"{t:7s} {r:7.1f} tokens/s  {size:6.0f} MiB  x{r / rates['f16']:.2f} vs f16  "
                  f"({args.parallel} slot(s), {args.threads} thread(s))")


if __name__ == "__main__":
    main()
