"""Do the memorization figures see real memorization? Train the embedded model until it memorizes, then measure.

    .venv/bin/python bench/bench_memorization.py [--epochs 8] [--records 12] [--out bench_memorization.json]

A small synthetic set (--records compact records) with canaries planted 1, 5 and 20 times (and held-out ones,
never planted), trained for --epochs epochs on the embedded SmolLM2-135M: far past what a real run would do, so
that the model memorizes what it saw most. Then, through the pipeline's own stages in one run folder:

1. the `canaries` stage: how often the model, asked for a canary's Sex and Service, emits that canary's surname,
   MRN or phone, per repeat count, against the held-out canaries (the chance rate);
2. `generate` with fresh surrogates and `evaluate`: the model's own output (raw) against the training split, PHI
   reuse and verbatim windows, each beside the control (test records against the same split);
3. the released corpus: every value the raw output reused from training (and every canary value it emitted)
   searched for in the released records; the bench says how many are left (it should be none).

Figures only are printed and written (--out); the run folder (--run-dir, default a temporary one) holds the rest,
owner-only. About 20-30 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=float, default=8.0)
    ap.add_argument("--records", type=int, default=12, help="ordinary compact records (canaries come on top)")
    ap.add_argument("--samples", type=int, default=6, help="probes per canary")
    ap.add_argument("--generate", type=int, default=16, help="records generated for the raw/released figures")
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.chdir(REPO)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from medgen.core.config import load_config
    from medgen.core.constants import CANARY_REGISTRY_FILE, RAW_DIR, RECORDS_FILE
    from medgen.data import prepare
    from medgen.evaluate import canaries
    from medgen.evaluate import stage as evaluate
    from medgen.export import merge
    from medgen.export import stage as export
    from medgen.generate import stage as generate
    from medgen.train import stage as train

    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="medgen-memorization-"))
    cfg = load_config("configs/default.yaml", [
        f"run_dir={run_dir}", f"data.n_records={args.records + 4}", "data.split.val=0.1", "data.split.test=0.2",
        "data.canaries.per_repeat=1", "data.canaries.repeats=[1, 5, 20]", "data.canaries.held_out=2",
        "train.max_steps=-1", f"train.epochs={args.epochs}", "train.learning_rate=2e-3", "train.warmup_ratio=0.0",
        "train.eval_steps=1000", "train.save_steps=1000", "train.lora.r=32", "train.lora.alpha=64",
        f"evaluate.canary_samples={args.samples}", f"generate.n={args.generate}", "generate.max_attempts=2",
        "evaluate.utility_max_records=20", "evaluate.crf_max_iterations=20"])
    timings: dict[str, float] = {}

    def timed(name, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name:10s} {timings[name]:8.1f} s", flush=True)
        return out

    prepared = timed("prepare", prepare.run, cfg)
    trained = timed("train", train.run, cfg)
    timed("merge", merge.run, cfg)
    timed("export", export.run, cfg)
    probed = timed("canaries", canaries.run, cfg)
    generated = timed("generate", generate.run, cfg)
    evaluated = timed("evaluate", evaluate.run, cfg)

    # What the model's own output reused from training, and which canary values it emitted: none may reach users.
    out = cfg.stage_dir("generate")
    raw = [json.loads(x)["text"] for x in (out / RAW_DIR / RECORDS_FILE).read_text().splitlines()]
    released = [json.loads(x)["text"] for x in (out / RECORDS_FILE).read_text().splitlines()]
    registry = json.loads((cfg.stage_dir("prepare") / CANARY_REGISTRY_FILE).read_text())["canaries"]
    secrets = {v for c in registry for v in (c["surname"], c["mrn"], c["phone"])}
    from medgen.data.splits import read_split

    train_split = read_split(prepared, "train")
    training_values = {s["text"] for spans in train_split.spans for s in spans
                       if s["category"] in ("ID:MEDICALRECORD", "CONTACT:PHONE")
                       or s["category"] == "NAME:PATIENT" and len(s["text"].split()) >= 2}
    in_raw = {v for v in secrets | training_values if any(v in t for t in raw)}
    in_released = {v for v in in_raw if any(v in t for t in released)}

    reuse = evaluated.privacy["phi_reuse"]
    verbatim = evaluated.privacy["verbatim"]
    figures = {
        "epochs": args.epochs, "train_rows": prepared.counts["train"] + prepared.canaries["train_rows"],
        "final_train_loss": trained.final_train_loss, "steps": trained.steps,
        "canary_extraction": {k: {"rate": v["rate"], "canaries_extracted": v["canaries_extracted"],
                                  "samples": v["samples"], "by_category": v["by_category"]}
                              for k, v in probed.extraction.items()},
        "raw_phi_reuse": {k: {"model": reuse["generated"][k]["fraction"], "control": reuse["control"][k]["fraction"],
                              "excess": reuse["excess"][k], "released": reuse["released"][k]["fraction"]}
                          for k in reuse["excess"]},
        "raw_verbatim": {"window": verbatim["generated"]["window"],
                         "model": verbatim["generated"]["window_fraction"],
                         "control": verbatim["control"]["window_fraction"],
                         "excess": verbatim["excess"]["window_fraction"],
                         "longest_run_max": verbatim["generated"]["longest_run_max"]},
        "valid_fraction": generated.counts["valid_fraction"],
        "training_or_canary_values_in_raw": len(in_raw), "of_them_in_released": len(in_released),
        "timings_s": timings,
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
