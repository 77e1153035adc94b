"""Training throughput: the seed recipe against medgen's default, in one process, on the same data.

    .venv/bin/python bench/bench_train.py --shape smollm2-135m --out bench_train.json     # CPU, ~2-3 min
    .venv/bin/python bench/bench_train.py --shape llama31-8b --out bench_train_8b.json    # CUDA + bitsandbytes

Builds a randomly initialised model of the named shape (a LlamaConfig written out here, no download) with
the embedded model's tokenizer (llama31-8b: the Llama 3.1 tokenizer of tests/llama3_fixture.py where its
package is installed), prepares synthetic records once (the synthetic engine, through `medgen prepare`), and
trains each recipe through `medgen.train.stage.build_trainer` until it has seen --tokens tokens:

- seed: the seed's recipe: no packing, batch 1 x accumulation 8, --seq tokens, gradient checkpointing,
  no kernels, adapters on every layer (QLoRA on CUDA, as in the config);
- default: the shape's shipped config as it is (configs/default.yaml, configs/llama31-8b-qlora.yaml).

The recipes alternate seed, default, default, seed (--rounds 2) so a neighbour's load falls on both.
Prints non-padding tokens/s (after each run's first micro-batch), peak memory (GPU allocated, or the
process's RSS while the recipe ran), an estimated MFU, and default/seed; writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIB = 2**30

SHAPES = {
    "smollm2-135m": dict(
        config="configs/default.yaml", seq=640, tokens=4096, records=120,
        llama=dict(vocab_size=49_152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                   num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100_000.0,
                   rms_norm_eps=1e-5, tie_word_embeddings=True)),
    "llama31-8b": dict(
        config="configs/llama31-8b-qlora.yaml", seq=1024, tokens=49_152, records=300,
        llama=dict(vocab_size=128_256, hidden_size=4096, intermediate_size=14_336, num_hidden_layers=32,
                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131_072,
                   rope_parameters={"rope_type": "llama3", "rope_theta": 500_000.0, "factor": 8.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192},
                   rms_norm_eps=1e-5, tie_word_embeddings=False)),
}
# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, by a word of the device name.
GPU_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "4090": 165e12, "A10": 125e12,
             "L4": 121e12}
NEVER = 10**9  # steps: no eval, no checkpoint, no end but the token budget


def seed_overrides(seq: int) -> list[str]:
    return ["train.packing=false", "train.batch_size=1", "train.grad_accum=8", f"train.max_seq_length={seq}",
            "train.tokens_per_step=null", "train.gradient_checkpointing=true", "train.kernels=none",
            "train.lora.layers=null"]


def tokenizer_dir(shape: str, dst: Path) -> Path:
    """The Llama 3.1 tokenizer for the 8B shape where tests/llama3_fixture.py can build it, else the embedded one."""
    if shape == "llama31-8b":
        spec = importlib.util.spec_from_file_location("llama3_fixture", REPO / "tests" / "llama3_fixture.py")
        fixture = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fixture)
        if fixture.tokenizer_source() is not None:
            return fixture.build_tokenizer(dst)
    from medgen.model.loading import load_tokenizer, resolve_base

    load_tokenizer(resolve_base("embedded")).save_pretrained(dst)
    return dst


def build_model(shape: str, dst: Path, cuda: bool) -> Path:
    """A random model of the shape, saved as an HF folder with its tokenizer (the path medgen loads from)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir(shape, dst))
    config = LlamaConfig(**SHAPES[shape]["llama"], architectures=["LlamaForCausalLM"],
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if cuda else torch.float32
    # Built where it will train and in its training dtype: an 8B model in float32 on the host is 32 GB.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda" if cuda else "cpu"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.save_pretrained(dst, safe_serialization=True)
    del model
    if cuda:
        torch.cuda.empty_cache()
    return dst


class RssPeak:
    """The process's peak RSS while a recipe runs (the kernel's high-water mark never comes down)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            with open("/proc/self/status") as f:
                kb = int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])
            self.peak = max(self.peak, kb * 1024)
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def stop_after(tokens: int):
    """A callback that times the run after its first micro-batch and stops it once `tokens` were seen."""
    from transformers import TrainerCallback

    class Budget(TrainerCallback):
        first: tuple[float, int] | None = None
        last: tuple[float, int] | None = None

        def _mark(self, state):
            mark = (time.perf_counter(), state.num_input_tokens_seen)
            if self.first is None:
                self.first = mark
            self.last = mark

        def on_substep_end(self, args, state, control, **kw):
            self._mark(state)

        def on_step_end(self, args, state, control, **kw):
            self._mark(state)
            if state.num_input_tokens_seen >= tokens:
                control.should_training_stop = True

    return Budget()


def peak_flops(cuda: bool) -> tuple[float | None, str]:
    import torch

    if cuda:
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in GPU_PEAKS.items() if k in name), None)
        return peak, f"{name}: {peak / 1e12:.0f} TFLOP/s bf16 dense" if peak else f"{name}: unknown peak"
    flags = Path("/proc/cpuinfo").read_text()
    mhz = max(float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", flags))
    per_cycle = 2048 if "amx_bf16" in flags else 64  # AMX bf16 tile FMAs, else AVX-512 fp32 FMAs
    cores = min(len(os.sched_getaffinity(0)), torch.get_num_threads())
    return cores * mhz * 1e6 * per_cycle, f"{cores} cores x {mhz:.0f} MHz x {per_cycle} FLOP/cycle (assumed)"


def model_flops_per_token(shape: str, mean_len: float) -> float:
    """A LoRA step's useful FLOPs per token: forward plus the backward through frozen weights (2x forward);
    checkpointing's recomputation is overhead, not counted. Attention: causal, over the example only."""
    s = SHAPES[shape]["llama"]
    from medgen.train.packing import Shape

    sh = Shape(layers=s["num_hidden_layers"], hidden=s["hidden_size"], intermediate=s["intermediate_size"],
               heads=s["num_attention_heads"], kv_heads=s["num_key_value_heads"], vocab=s["vocab_size"],
               max_positions=s["max_position_embeddings"], tied_embeddings=s["tie_word_embeddings"])
    matmul = sh.params - sh.embedding_params + sh.vocab * sh.hidden  # the input embedding is a lookup
    forward = 2 * matmul + 2 * sh.layers * sh.hidden * mean_len
    return 2 * forward


def run_recipe(name: str, cfg, out_dir: Path, tokens: int, cuda: bool, before_train=None) -> dict:
    """Train `cfg` until `tokens` were seen; `before_train(trainer)` may change the trainer first (bench_cpu_levers)."""
    import gc

    import torch

    from medgen.train import stage as train

    budget = stop_after(tokens)
    setup = train.build_trainer(cfg, out_dir, callbacks=[budget])
    trainer, lay = setup.trainer, setup.layout
    if before_train is not None:
        before_train(trainer)
    ds = trainer.train_dataset
    lengths = ([n for r in ds for n in r["seq_lengths"]] if "seq_lengths" in ds.column_names
               else [len(r["input_ids"]) for r in ds])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with RssPeak() as rss:
        trainer.train()
    (t0, n0), (t1, n1) = budget.first, budget.last
    out = dict(
        recipe=name, tokens=int(n1), timed_tokens=int(n1 - n0), timed_s=round(t1 - t0, 2),
        tokens_per_s=round((n1 - n0) / (t1 - t0), 1), steps=trainer.state.global_step,
        peak_gib=round((torch.cuda.max_memory_allocated() if cuda else rss.peak) / GIB, 2),
        peak_kind="cuda_allocated" if cuda else "process_rss", mean_example_tokens=round(statistics.mean(lengths), 1),
        max_seq_length=lay.max_seq_length, packing=cfg.train.packing, rows=lay.rows, grad_accum=lay.grad_accum,
        gradient_checkpointing=lay.gradient_checkpointing, kernels=setup.plan.kernels,
        attention=setup.plan.attention, estimated_peak_gib=lay.estimated_peak_gb,
    )
    del trainer, setup
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    ap.add_argument("--tokens", type=int, help="tokens each run trains on (default per shape)")
    ap.add_argument("--seq", type=int, help="the seed recipe's sequence length (default: 640 on smollm2-135m, 1024)")
    ap.add_argument("--records", type=int, help="synthetic records to prepare (default per shape)")
    ap.add_argument("--rounds", type=int, default=2, help="seed/default pairs, alternating ABBA")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is steadier on a shared host)")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from medgen.core.config import load_config
    from medgen.data import prepare

    spec = SHAPES[a.shape]
    cuda = torch.cuda.is_available()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.shape == "llama31-8b" and not cuda:
        raise SystemExit("llama31-8b: needs CUDA (QLoRA through bitsandbytes); run smollm2-135m on CPU")
    tokens = a.tokens or spec["tokens"]
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        work = a.work or Path(tmp)
        base = build_model(a.shape, work / "model", cuda)
        common = [f"run_dir={work}", f"model.base={base}", f"data.n_records={a.records or spec['records']}",
                  f"train.max_steps={NEVER}", f"train.eval_steps={NEVER}", f"train.save_steps={NEVER}",
                  f"train.logging_steps={NEVER}"]
        if a.shape == "llama31-8b":
            common.append("data.split={val: 0.02, test: 0.02}")
        # prepare's length report wants a number; the recipes resolve their own lengths.
        prepare.run(load_config(REPO / spec["config"], common + ["train.max_seq_length=1024"]))
        recipes = {"seed": load_config(REPO / spec["config"], common + seed_overrides(a.seq or spec["seq"])),
                   "default": load_config(REPO / spec["config"], common)}
        order = [n for i in range(a.rounds) for n in (("seed", "default") if i % 2 == 0 else ("default", "seed"))]
        runs = []
        for name in order:
            load = os.getloadavg()
            r = run_recipe(name, recipes[name], work / name, tokens, cuda)
            r["loadavg"] = [round(x, 2) for x in load]
            print(f"{name:8s} {r['tokens_per_s']:9.1f} tokens/s  {r['timed_tokens']:7d} tokens in {r['timed_s']:7.1f} s"
                  f"  peak {r['peak_gib']:.2f} GiB  (loadavg {r['loadavg'][0]})", flush=True)
            runs.append(r)
    peak, peak_note = peak_flops(cuda)
    summary = {}
    for name in ("seed", "default"):
        mine = [r for r in runs if r["recipe"] == name]
        tps = sum(r["timed_tokens"] for r in mine) / sum(r["timed_s"] for r in mine)
        flops = model_flops_per_token(a.shape, mine[0]["mean_example_tokens"])
        summary[name] = {**{k: v for k, v in mine[0].items() if k not in ("timed_tokens", "timed_s", "loadavg")},
                         "tokens_per_s": round(tps, 1), "peak_gib": max(r["peak_gib"] for r in mine),
                         "mfu": round(tps * flops / peak, 4) if peak else None}
    ratio = summary["default"]["tokens_per_s"] / summary["seed"]["tokens_per_s"]
    out = {"shape": a.shape, "device": torch.cuda.get_device_name(0) if cuda else "cpu", "peak_flops": peak_note,
           "torch_threads": torch.get_num_threads(),
           "tokens_per_run": tokens, **summary, "ratio": round(ratio, 3), "runs": runs}
    for name in ("seed", "default"):
        s = summary[name]
        mfu = f"{100 * s['mfu']:.1f}%" if s["mfu"] is not None else "n/a"
        print(f"{name:8s} {s['tokens_per_s']:9.1f} non-padding tokens/s  peak {s['peak_gib']:.2f} GiB ({s['peak_kind']})"
              f"  MFU {mfu}  [seq {s['max_seq_length']}, {'packed' if s['packing'] else 'padded'}, "
              f"{s['rows']} x {s['grad_accum']}, checkpointing {'on' if s['gradient_checkpointing'] else 'off'}, "
              f"kernels {s['kernels']}, {s['attention']}]")
    print(f"default/seed tokens/s: {ratio:.2f}x  (MFU peak: {peak_note})")
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
