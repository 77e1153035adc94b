"""llama.cpp generation speed of medgen's GGUF exports: F16 (baseline) against Q8_0 and Q4_K_M.

    .venv/bin/python bench/bench_llamacpp.py [--model runs/default/merge/merged] [--tokens 256]

Without --model it uses the embedded SmolLM2-135M-Instruct (dequantized HF copy). Prints tokens/s
per out-type and the ratio to F16 measured in the same run.
"""

import argparse
import ctypes
import os
import tempfile
import time
from pathlib import Path


def tokens_per_s(path: Path, n_tokens: int, threads: int) -> float:
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=1024, n_threads=threads, verbose=False)
    try:
        llm("Name:", max_tokens=8)  # warm-up
        t0 = time.perf_counter()
        out = llm("Name:", max_tokens=n_tokens, temperature=0.0, stop=[])
        return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)
    finally:
        llm.close()


def main() -> None:
    import llama_cpp

    from medgen.gguf_convert import convert
    from medgen.modeling import resolve_base

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="HF folder (a merged model); default: the embedded model")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    model = Path(args.model or resolve_base("embedded"))
    with tempfile.TemporaryDirectory() as d:
        paths = {t: Path(d) / f"m-{t}.gguf" for t in ("f16", "q8_0")}
        for t, p in paths.items():
            convert(model, p, t)
        paths["q4_k_m"] = Path(d) / "m-q4_k_m.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
        llama_cpp.llama_model_quantize(str(paths["f16"]).encode(), str(paths["q4_k_m"]).encode(), ctypes.byref(params))
        rates = {t: tokens_per_s(p, args.tokens, args.threads) for t, p in paths.items()}
        for t, r in rates.items():
            size = paths[t].stat().st_size / 2**20
            print(f"{t:7s} {r:7.1f} tokens/s  {size:6.0f} MiB  x{r / rates['f16']:.2f} vs f16")


if __name__ == "__main__":
    main()
