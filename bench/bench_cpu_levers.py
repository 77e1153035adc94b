"""What pays on a CPU: the embedded default's training speed under each lever, against its baseline, in one run.

    .venv/bin/python bench/bench_cpu_levers.py                       # this CPU as it is (~10 min on 2 cores)
    .venv/bin/python bench/bench_cpu_levers.py --emulate avx2        # as an AVX2-only CPU (no AVX-512, no AMX)
    .venv/bin/python bench/bench_cpu_levers.py --levers bf16,threads1 --tokens 3000 --out levers.json

Trains the embedded model (SmolLM2-135M-Instruct) on the default config's own prepared records through
`medgen.train.stage.build_trainer`, once as the config resolves here (the baseline) and once per lever, alternating
baseline and lever (ABBA) so that a neighbour's load falls on both, each until it has seen --tokens tokens (timed
after its first micro-batch). Levers:

- precision: `bf16` and `fp32` (what `train.precision=auto` picks is the baseline);
- threads: `threads1` (one torch thread; the baseline uses torch's default, one per core);
- compile: `compile` (`torch.compile` of every decoder layer, dynamic shapes; its compile time is reported apart);
- LoRA targets: `attention` (q, k, v, o only), `all-layers` (adapters on all 30 layers; the default puts them on the
  upper 15, where the backward pass stops).

Steps and record length change the tokens a run trains, not the speed: the last lines turn the baseline's speed
into the train stage's time for the default config and for the levers of step count and length given with
--plans (steps x rows x tokens per row).

`--emulate avx2` reruns this script with ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and
MKL_ENABLE_INSTRUCTIONS=AVX2: torch, oneDNN and MKL then use AVX2 code only and report no native bf16, as on an
AVX2-only AMD EPYC. Clock, caches and memory stay this machine's: compare ratios, not absolute speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
LEVERS = {
    "bf16": ["train.precision=bf16"],
    "fp32": ["train.precision=fp32"],
    "threads1": [],
    "compile": [],
    "attention": ["train.lora.target_modules=[q_proj, k_proj, v_proj, o_proj]"],
    "all-layers": ["train.lora.layers=null"],
}
NEVER = 10**9


def _compile_layers(trainer) -> None:
    """torch.compile each decoder layer in place (dynamic: packed rows differ in length)."""
    model = trainer.model.get_base_model()
    for layer in model.model.layers:
        layer.compile(dynamic=True)


def run_one(name: str, cfg, work: Path, tokens: int) -> dict:
    import time

    import torch
    from bench_train import run_recipe

    threads = torch.get_num_threads()
    if name == "threads1":
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        hook = _compile_layers if name == "compile" else None
        out = run_recipe(name, cfg, work / name, tokens, cuda=False, before_train=hook)
    finally:
        torch.set_num_threads(threads)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, of: {', '.join(LEVERS)}")
    ap.add_argument("--tokens", type=int, default=2400, help="tokens each run trains on, timed after its first micro-batch")
    ap.add_argument("--rounds", type=int, default=1, help="baseline/lever pairs per lever, alternating ABBA")
    ap.add_argument("--emulate", choices=["avx2"], help="run as an AVX2-only CPU would (see above)")
    ap.add_argument("--plans", default="120x1x580,80x2x580,100x1x580,120x1x400",
                    help="train-time estimates: steps x rows x tokens per row, comma-separated")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    a = ap.parse_args(argv)
    if a.emulate and not os.environ.get("MEDGEN_BENCH_EMULATED"):
        env = {**os.environ, **AVX2_ENV, "MEDGEN_BENCH_EMULATED": a.emulate}
        return sys.exit(subprocess.call([sys.executable, __file__, *(argv or sys.argv[1:])], env=env))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from medgen.core.config import load_config
    from medgen.data import prepare
    from medgen.model import precision

    hw = precision.cpu()
    print(f"CPU: {hw.name}; {hw.features}; native bf16: {hw.native_bf16}"
          + (f" (emulating {os.environ['MEDGEN_BENCH_EMULATED']})" if os.environ.get("MEDGEN_BENCH_EMULATED") else "")
          + f"; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    levers = [x for x in a.levers.split(",") if x]
    unknown = [x for x in levers if x not in LEVERS]
    if unknown:
        raise SystemExit(f"--levers: expected names from {', '.join(LEVERS)}, got {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="bench_cpu_levers-") as tmp:
        work = Path(tmp)
        common = [f"run_dir={work}", f"train.max_steps={NEVER}", f"train.eval_steps={NEVER}",
                  f"train.save_steps={NEVER}", f"train.logging_steps={NEVER}"]
        baseline_cfg = load_config(REPO / "configs/default.yaml", common)
        prepare.run(baseline_cfg)
        chosen = precision.choose(baseline_cfg.train.precision, "cpu")
        print(f"baseline: configs/default.yaml as it resolves here: {chosen.name} ({chosen.reason})", flush=True)
        runs: list[dict] = []

        def one(name: str) -> dict:
            cfg = load_config(REPO / "configs/default.yaml", common + LEVERS.get(name, []))
            r = run_one(name, cfg, work, a.tokens)
            print(f"  {name:10s} {r['tokens_per_s']:8.1f} tokens/s  ({r['timed_tokens']} tokens in {r['timed_s']} s, "
                  f"{r['wall_s']} s in all)", flush=True)
            runs.append(r)
            return r

        summary = {}
        for lever in levers:
            pairs = []
            for i in range(a.rounds):
                order = ("baseline", lever) if i % 2 == 0 else (lever, "baseline")
                got = {n: one(n) for n in order}
                pairs.append((got["baseline"], got[lever]))
            base_tps = sum(b["timed_tokens"] for b, _ in pairs) / sum(b["timed_s"] for b, _ in pairs)
            lever_tps = sum(x["timed_tokens"] for _, x in pairs) / sum(x["timed_s"] for _, x in pairs)
            extra = sum(x["wall_s"] - x["timed_s"] for _, x in pairs) - sum(b["wall_s"] - b["timed_s"] for b, _ in pairs)
            summary[lever] = {"baseline_tokens_per_s": round(base_tps, 1), "tokens_per_s": round(lever_tps, 1),
                              "ratio": round(lever_tps / base_tps, 3), "extra_setup_s": round(extra / a.rounds, 1)}
            print(f"{lever:10s} {summary[lever]['ratio']:.2f}x the baseline's speed ({lever_tps:.1f} vs {base_tps:.1f} "
                  f"tokens/s; setup {summary[lever]['extra_setup_s']:+.0f} s)", flush=True)
    base_runs = [r for r in runs if r["recipe"] == "baseline"]
    speed = sum(r["timed_tokens"] for r in base_runs) / sum(r["timed_s"] for r in base_runs)
    estimates = {}
    for plan in (p for p in a.plans.split(",") if p):
        steps, rows, per_row = (int(x) for x in plan.split("x"))
        estimates[plan] = round(steps * rows * per_row / speed / 60, 1)
        print(f"train stage at {speed:.0f} tokens/s: {steps} steps x {rows} row(s) x {per_row} tokens = "
              f"{estimates[plan]} min", flush=True)
    out = {"cpu": hw.name, "features": hw.features, "emulated": os.environ.get("MEDGEN_BENCH_EMULATED"),
           "baseline_precision": chosen.name, "tokens_per_run": a.tokens, "levers": summary,
           "train_minutes": estimates, "runs": runs}
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
