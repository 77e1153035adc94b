"""Does the corpus do its job? A CRF de-identification tagger trained on medgen's data, tested on hand-written
notes, beside the same tagger trained on hand-written notes; and how hard medgen's data is for a tagger trained on
real notes. One run, every figure with its 95% bootstrap interval over notes.

    .venv/bin/python bench/bench_utility.py                          # ~20-30 min on 2 cores
    .venv/bin/python bench/bench_utility.py --quick                  # full 200 and compact 120 only (~5 min)
    .venv/bin/python bench/bench_utility.py --corpus runs/default/generate --out utility.json
    .venv/bin/python bench/bench_utility.py --sizes "" --compact-sizes "" --corpus A --corpus B   # corpora only

The tagger and scorer are evaluate's own (`medgen.evaluate.metrics.tagger`, `medgen.evaluate.utility`: a CRF with
classic token features, nervaluate's strict and partial matching, F2 weighing recall four times precision, token
recall = the gold PHI tokens tagged as any PHI). Rows:

1. trained on N synthetic engine records of each profile (`--sizes`, `--compact-sizes`), and on a generated corpus
   (`--corpus`, a generate folder; repeatable), tested on the 47 hand-written notes shipped with medgen;
2. the real-notes reference: trained on hand-written notes, tested on held-out patients (5 folds of whole patients);
3. difficulty: trained on all the hand-written notes, tested on engine records of each profile and on the corpus,
   beside its leave-patients-out score on hand-written notes; the gap is how much medgen's data flatters a tool;
4. what more engine data buys: the largest size's strict F1 minus the smallest's, with a paired bootstrap interval
   (both taggers scored on the same resampled notes).

Per category figures are printed for the largest full-profile run and the reference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def engine(n: int, profile: str, seed: int) -> list[tuple[str, list[dict]]]:
    from medgen.data.synthetic import records

    return [(r.text, [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans])
            for r in records(n, seed=seed, profile=profile)]


def corpus_records(folder: Path) -> list[tuple[str, list[dict]]]:
    from medgen.generate.corpus import read_jsonl

    texts = read_jsonl(folder / "records.jsonl")
    spans = {p["id"]: p["spans"] for p in read_jsonl(folder / "records.phi.jsonl")}
    return [(r["text"], spans[r["id"]]) for r in texts]


def _ci(micro: dict, key: str) -> str:
    lo, hi = micro[f"{key}_ci"]
    return f"{micro[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def row(name: str, test: str, s: dict, seconds: float) -> str:
    strict, partial = s["strict"]["micro"], s["partial"]["micro"]
    lo, hi = s["token_recall_ci"]
    return (f"| {name} | {test} | {_ci(strict, 'f1')} | {_ci(partial, 'f1')} | {_ci(strict, 'f2')} | "
            f"{s['token_recall']:.3f} [{lo:.2f}, {hi:.2f}] | {s['train_tokens']:,} | {seconds:.0f} s |")


def per_category(name: str, s: dict) -> list[str]:
    cats = s["strict"]["per_category"]
    out = [f"\nper category, strict F1 [95% CI] (support): {name}"]
    for cat, v in sorted(cats.items(), key=lambda kv: -kv[1]["support"]):
        if v["support"]:
            out.append(f"  {cat:24s} {v['f1']:.2f} [{v['f1_ci'][0]:.2f}, {v['f1_ci'][1]:.2f}] ({v['support']})")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="200,1000", help="full-profile engine records per tagger")
    ap.add_argument("--compact-sizes", default="120,200,1000", help="compact-profile engine records per tagger")
    ap.add_argument("--corpus", type=Path, action="append", default=[],
                    help="a generate folder (records.jsonl, records.phi.jsonl) to score too; repeatable")
    ap.add_argument("--seed", type=int, default=0, help="engine seed")
    ap.add_argument("--iterations", type=int, help="CRF L-BFGS iterations (default: evaluate.crf_max_iterations)")
    ap.add_argument("--quick", action="store_true", help="full 200 and compact 120 only")
    ap.add_argument("--out", type=Path, help="write every figure here as JSON")
    a = ap.parse_args(argv)
    from medgen.core.config import EvaluateConfig
    from medgen.evaluate import utility

    ev = EvaluateConfig(**({"crf_max_iterations": a.iterations} if a.iterations else {}))
    ev = ev.model_copy(update={"utility_max_records": 10**6})
    sizes = {"full": [200] if a.quick else [int(x) for x in a.sizes.split(",") if x],
             "compact": [120] if a.quick else [int(x) for x in a.compact_sizes.split(",") if x]}
    notes = utility.handwritten()
    out: dict = {"trained_on_medgen": {}, "difficulty": {}}
    head = ("| tagger trained on | tested on | strict F1 | partial F1 | strict F2 | token recall | train tokens | "
            "time |\n|---|---|---|---|---|---|---|---|")
    lines = [head]

    def timed(fn, *args):
        t0 = time.perf_counter()
        got = fn(*args)
        return got, time.perf_counter() - t0

    counts: dict[tuple[str, int], object] = {}
    for profile, ns in sizes.items():
        for n in ns:
            (per_note, tok, tokens), t = timed(utility.tested, engine(n, profile, a.seed), notes, ev)
            counts[profile, n] = per_note
            s = {"train_tokens": tokens, "notes": len(notes),
                 **utility.score(per_note, tok, ev.utility_bootstrap, ev.seed)}
            out["trained_on_medgen"][f"{profile}-{n}"] = s
            lines.append(row(f"{n} `{profile}` engine records", f"{len(notes)} hand-written notes", s, t))
            print(lines[-1], flush=True)
    corpora = {f"{folder.name} ({len(recs)} records)": recs for folder in a.corpus
               for recs in [corpus_records(folder)]}
    for name, recs in corpora.items():
        s, t = timed(utility.scored, recs, notes, ev)
        out["trained_on_medgen"][name] = s
        lines.append(row(name, f"{len(notes)} hand-written notes", s, t))
        print(lines[-1], flush=True)
    ref, t = timed(utility.patients_out, notes, ev)
    out["reference"] = ref
    lines.append(row(f"{len(notes)} hand-written notes (5 folds)", "held-out patients' notes", ref, t))
    print(lines[-1], flush=True)

    lines += ["", "Difficulty: a CRF trained on all the hand-written notes, scored on medgen's data beside its "
              "leave-patients-out score on hand-written notes (gap = strict F1 minus the reference's).", "", head]
    hand = [(d.text, d.spans) for d in notes]
    tests = {f"{min(max(sizes[p]), 500)} `{p}` engine records": engine(min(max(sizes[p]), 500), p, a.seed + 1)
             for p in sizes if sizes[p]}
    tests.update(corpora)
    for name, records in tests.items():
        s, t = timed(utility.scored, hand, utility.documents(records), ev)
        gap = s["strict"]["micro"]["f1"] - ref["strict"]["micro"]["f1"]
        out["difficulty"][name] = {**s, "gap": round(gap, 4)}
        lines.append(row(f"{len(notes)} hand-written notes", f"{name} (gap {gap:+.3f})", s, t))
        print(lines[-1], flush=True)
    more = []
    for profile, ns in sizes.items():
        if len(ns) > 1:
            small, large = min(ns), max(ns)
            d = utility.difference(counts[profile, small], counts[profile, large], ev.utility_bootstrap, ev.seed)
            out.setdefault("more_data", {})[f"{profile}-{large}-vs-{small}"] = d
            lo, hi = d["f1_difference_ci"]
            more.append(f"- {large} `{profile}` records vs {small}: strict F1 {d['f1_difference']:+.3f} "
                        f"[{lo:+.3f}, {hi:+.3f}] (paired bootstrap over the same notes)")
    if more:
        lines += ["", "More engine data, the same hand-written notes:", *more]
    largest = max(sizes["full"], default=None)
    if largest:
        lines += per_category(f"{largest} `full` engine records -> hand-written notes",
                              out["trained_on_medgen"][f"full-{largest}"])
    lines += per_category("hand-written notes, leave-patients-out", ref)
    print("\n".join(lines))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
