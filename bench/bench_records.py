"""Synthetic record throughput: 10,000 `full` records on one core (target ≤ 60 s).

    .venv/bin/python bench/bench_records.py [--n 10000]

Prints records/s for `full`, and for `compact` as the in-run baseline, with their ratio.
"""

import argparse
import os
import time


def rate(n: int, profile: str) -> tuple[float, float]:
    from medgen.data.synthetic import records

    t0 = time.perf_counter()
    chars = sum(len(r.text) for r in records(n, seed=0, profile=profile))
    return n / (time.perf_counter() - t0), chars / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    full, full_chars = rate(args.n, "full")
    compact, compact_chars = rate(args.n, "compact")
    print(f"full:    {full:8.0f} records/s ({args.n / full:5.1f} s for {args.n}; {full_chars:.0f} chars/record)")
    print(f"compact: {compact:8.0f} records/s ({args.n / compact:5.1f} s for {args.n}; {compact_chars:.0f} chars/record)")
    print(f"full/compact speed ratio: {full / compact:.2f}")


if __name__ == "__main__":
    main()
