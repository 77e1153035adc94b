"""Generation throughput: one slot, requests one at a time, against N slots with N requests in flight.

    .venv/bin/python bench/bench_generate.py GGUF [--slots 4] [--requests 8] [--max-tokens 200] [--json out.json]

The same GGUF, the same prompts and seeds on both sides; the single-slot run is the in-run baseline.
Prints tokens/s and records/s for each and the ratio, and writes them as JSON.
"""

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def measure(gguf: Path, slots: int, requests: int, max_tokens: int, threads: int) -> dict:
    from medgen.data.prompts import request_messages
    from medgen.serve import llamacpp

    pairs = [("Female", "PSYCHIATRY"), ("Male", "CARDIOLOGY"), ("Female", "SURGERY"), ("Male", "NEUROLOGY")]
    with tempfile.TemporaryDirectory() as tmp:
        server = llamacpp.start_server(gguf, log_path=Path(tmp) / "server.log", parallel=slots,
                                       ctx=max_tokens + 256, threads=threads)
        try:
            def one(i: int) -> int:
                sex, service = pairs[i % len(pairs)]
                return llamacpp.chat(server.url, request_messages(sex, service, True), max_tokens=max_tokens,
                                     temperature=0.7, top_p=0.9, seed=i)[2]

            t0 = time.perf_counter()
            with ThreadPoolExecutor(slots) as pool:
                tokens = sum(pool.map(one, range(requests)))
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    return {"slots": slots, "requests": requests, "tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "records_per_s": round(requests / wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    single = measure(a.gguf, 1, a.requests, a.max_tokens, a.threads)
    parallel = measure(a.gguf, a.slots, a.requests, a.max_tokens, a.threads)
    out = {"gguf": str(a.gguf), "single": single, "parallel": parallel,
           "ratio_tokens_per_s": round(parallel["tokens_per_s"] / single["tokens_per_s"], 2)}
    print(f"1 slot: {single['tokens_per_s']} tokens/s, {single['records_per_s']} records/s")
    print(f"{a.slots} slots: {parallel['tokens_per_s']} tokens/s, {parallel['records_per_s']} records/s")
    print(f"ratio: {out['ratio_tokens_per_s']}x")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
