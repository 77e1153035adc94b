"""evaluate at scale: N generated x N training `full` records (target: N = 10,000 within 10 min on 2 cores).

    .venv/bin/python bench/bench_evaluate.py [--n 10000] [--test N] [--utility RECORDS]

The corpora come from the synthetic engine: training records with seed 0, "generated" records with seed 1
(the same distribution, no record shared) and test records with seed 2 (N/8 by default, the test split a
10% test fraction leaves beside N training records). Prints the seconds of each part of the evaluation
(index: tokenizing, n-gram hashes and MinHash signatures, shared by the others), the total, and the
privacy figures. Utility (a CRF per corpus) is outside the target and runs only with --utility.
"""

import argparse
import time


def corpus(n: int, seed: int):
    from medgen.data.synthetic import records
    from medgen.evaluate.corpus import Corpus

    recs = list(records(n, seed=seed, profile="full"))
    spans = [[{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans] for r in recs]
    return Corpus([r.text for r in recs], spans, [r.sex for r in recs], [r.service for r in recs])


def main() -> None:
    from medgen.core.config import EvaluateConfig
    from medgen.evaluate.corpus import Generation, index
    from medgen.evaluate.figures import diversity, fidelity, privacy, utility, validity

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000, help="generated and training records")
    ap.add_argument("--test", type=int, default=None, help="test (control) records; default n/8")
    ap.add_argument("--utility", type=int, default=0, help="also time utility with this many records per tagger")
    args = ap.parse_args()
    n_test = args.test or max(1, args.n // 8)

    t0 = time.perf_counter()
    train, generated, test = corpus(args.n, 0), corpus(args.n, 1), corpus(n_test, 2)
    print(f"built {args.n} train, {args.n} generated, {n_test} test full records in "
          f"{time.perf_counter() - t0:.1f} s (engine; not part of the evaluation)")

    ev = EvaluateConfig(utility_max_records=max(args.utility, 2))
    generation = Generation({"planned": args.n, "valid": args.n, "rejected": 0, "valid_fraction": 1.0}, {}, [], {})
    times: dict[str, float] = {}

    def timed(name, fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        times[name] = time.perf_counter() - t
        print(f"{name:10s} {times[name]:7.1f} s", flush=True)
        return out

    gen_x, ctl_x, train_x = timed("index", index, [generated, test, train], ev)
    # The engine's records carry no surrogates: the released corpus is the model's own (raw) one.
    timed("validity", validity, generated, generated, test, train, generation)
    timed("fidelity", fidelity, gen_x, ctl_x, train_x)
    timed("diversity", diversity, gen_x, ctl_x, train_x, ev)
    priv = timed("privacy", privacy, gen_x, gen_x, ctl_x, train_x, ev)
    total = sum(times.values())
    print(f"{'total':10s} {total:7.1f} s  (target at n=10000: 600 s)")
    if args.utility:
        u = timed("utility", utility, generated, train, test, ev)
        print(f"utility: {u['records_per_tagger']} records per tagger, ratio {u['ratio']}")
    vb, nd = priv["verbatim"], priv["near_duplicates_of_train"]
    print(f"verbatim window fraction: generated {vb['generated']['window_fraction']}, control "
          f"{vb['control']['window_fraction']}; longest run max {vb['generated']['longest_run_max']} / "
          f"{vb['control']['longest_run_max']}, median {vb['generated']['longest_run_median']} / "
          f"{vb['control']['longest_run_median']}")
    print(f"near-duplicates of train: generated {nd['generated']}, control {nd['control']}")
    print("PHI reuse excess: " + ", ".join(f"{k} {v}" for k, v in priv["phi_reuse"]["excess"].items()))


if __name__ == "__main__":
    main()
