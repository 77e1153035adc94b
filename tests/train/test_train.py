import json
import os
import stat

import pytest

from medgen.core.config import Rung
from medgen.core.constants import INSTRUCTION
from medgen.core.errors import ConfigError, LadderExhausted, TrainOOM
from medgen.core.results import TrainResult
from medgen.data import prepare
from medgen.model import precision
from medgen.train import stage as train
from medgen.train.ladder import walk_ladder

from conftest import tiny_config


def test_alpaca_row_becomes_system_user_assistant():
    conv = train.to_conversation({"instruction": "I", "input": "U", "output": "A"})
    assert conv["prompt"] == [{"role": "system", "content": "I"}, {"role": "user", "content": "U"}]
    assert conv["completion"] == [{"role": "assistant", "content": "A"}]


def test_loss_mask_covers_the_assistant_turn_only(tmp_path, repo_root):
    # Unpacked here; tests/train/test_packing.py checks the same mask inside packed rows.
    cfg = tiny_config(tmp_path, "train.max_seq_length=2048", "train.packing=false")
    prepare.run(cfg)
    setup = train.build_trainer(cfg, tmp_path / "train")
    tok = setup.tokenizer
    batch = next(iter(setup.trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    keep = labels != -100
    first = int(keep.nonzero()[0])
    assert keep[first:].all(), "batch size 1 has no padding: everything after the prompt is trained on"
    prompt = tok.decode(ids[:first])
    completion = tok.decode(ids[keep])
    # The prompt is the chat template's system (instruction) + user (input) turns and the assistant header.
    assert INSTRUCTION in prompt and "Generate discharge record for: Sex:" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    # The loss covers the record and the end-of-turn token, so the model learns to stop.
    assert completion.startswith("Name:") and completion.rstrip().endswith("<|im_end|>")
    assert INSTRUCTION not in completion


@pytest.mark.slow
def test_train_stage_writes_adapter_manifest_and_plot(trained):
    cfg, result = trained
    m = result.to_manifest()
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert (result.adapter_dir / "tokenizer_config.json").is_file()
    assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["r"] == 4
    targets = set(json.loads((result.adapter_dir / "adapter_config.json").read_text())["target_modules"])
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert m["steps"] == 2 and m["device"] == "cpu" and m["quantization"] == "none"
    # Packed by default; TINY's rows of 128 tokens hold one (cut) example each, as many tokens a step as
    # unpacked batch 1, and on CPU the step fits memory without checkpointing.
    assert m["packing"] and (m["max_seq_length"], m["micro_batch_rows"], m["grad_accum"]) == (128, 1, 1)
    assert m["gradient_checkpointing"] is False and m["kernels"] == "none" and m["attention"] == "sdpa"
    assert m["train_examples"] == 9 and m["truncated_examples"] == 9
    assert m["tokens_seen"] == 2 * 128
    assert m["final_train_loss"] > 0 and m["final_val_loss"] > 0
    assert m["tokens_per_s"] > 0 and m["peak_memory_mb"] > 0 and m["wall_s"] > 0
    assert (result.out_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (result.out_dir / "config.resolved.yaml").is_file()
    # One folder per rung and config (medgen/train/resume.py), each checkpoint marked complete.
    assert result.checkpoints_dir.parent == result.out_dir / "checkpoints"
    assert any(result.checkpoints_dir.glob("checkpoint-*/medgen-complete.json"))
    assert stat.S_IMODE(os.stat(result.adapter_dir / "adapter_model.safetensors").st_mode) == 0o600


def test_ladder_moves_down_on_oom_only(repo_root, tmp_path):
    cfg = tiny_config(tmp_path, "train.fallback=[{r: 8, max_seq_length: 256}, {r: 4, max_seq_length: 128}]")
    seen = []

    def attempt(c):
        seen.append((c.train.lora.r, c.train.max_seq_length))
        if c.train.lora.r == 8:
            raise TrainOOM(c.rung(), "CUDA out of memory")
        return "ok"

    assert walk_ladder(cfg, attempt) == "ok"
    assert seen == [(8, 256), (4, 128)]

    def other(c):
        raise ValueError("bad tokenizer")

    with pytest.raises(ValueError, match="bad tokenizer"):
        walk_ladder(cfg, other)


def test_exhausted_ladder_lists_every_attempt(repo_root, tmp_path):
    cfg = tiny_config(tmp_path, "train.fallback=[{r: 8, max_seq_length: 256}, {r: 4, max_seq_length: 128}]")

    def attempt(c):
        raise TrainOOM(c.rung(), "CUDA out of memory")

    with pytest.raises(LadderExhausted) as e:
        walk_ladder(cfg, attempt)
    assert len(e.value.attempts) == 2 and "r=8," in str(e.value) and "r=4," in str(e.value)


def test_with_rung_changes_only_rank_and_length(repo_root, tmp_path):
    cfg = tiny_config(tmp_path)
    c2 = cfg.with_rung(Rung(r=32, max_seq_length=512))
    assert (c2.train.lora.r, c2.train.max_seq_length) == (32, 512)
    assert (cfg.train.lora.r, cfg.train.max_seq_length) == (4, 128)


def test_oom_shrinks_the_budget_of_later_rungs(repo_root, tmp_path):
    cfg = tiny_config(tmp_path, "train.memory_budget_gb=20",
                      "train.fallback=[{r: 8, max_seq_length: auto}, {r: 8, max_seq_length: 256}, {r: 4, max_seq_length: 128}]")
    seen = []

    def attempt(c):
        seen.append((c.train.max_seq_length, c.train.memory_budget_gb))
        if len(seen) < 3:
            raise TrainOOM(c.rung(), "CUDA out of memory")
        return "ok"

    assert walk_ladder(cfg, attempt) == "ok"
    assert seen == [("auto", 20), (256, 15), (128, 11.25)]


@pytest.mark.parametrize("kernels, error", [("auto", None), ("none", None), ("liger", "train.kernels")])
def test_kernels_fall_back_cleanly_on_cpu(repo_root, tmp_path, kernels, error):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = tiny_config(tmp_path, f"train.kernels={kernels}")
    if error:
        with pytest.raises(ConfigError, match=error):
            train.plan(cfg)
    else:
        p = train.plan(cfg)
        assert (p.kernels, p.attention) == ("none", "sdpa")


def test_cuda_request_without_gpu_is_a_config_error(repo_root, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="train.device"):
        train.plan(tiny_config(tmp_path, "train.device=cuda"))


AVX2_ONLY = precision.Hardware("cpu", "AMD EPYC 7B12", False, "torch CPU capability AVX2; AMX no; AVX-512 BF16 no")
T4 = precision.Hardware("cuda", "Tesla T4", False, "compute capability 7.5; bf16 no")


@pytest.mark.slow
def test_auto_trains_in_fp32_on_a_cpu_without_native_bf16(repo_root, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu", lambda: AVX2_ONLY)
    cfg = tiny_config(tmp_path, "train.max_steps=1", "train.save_steps=1")
    assert cfg.train.precision == "auto"
    prepare.run(cfg)
    result = train.run(cfg)
    m = json.loads((result.out_dir / "manifest.json").read_text())
    assert (m["precision"], m["hardware"], m["native_bf16"], m["bf16_slowdown"]) == ("fp32", "AMD EPYC 7B12", False, None)
    assert m["precision_reason"] == f"auto: AMD EPYC 7B12 ({AVX2_ONLY.features}) has no native bf16 (torch would " \
                                    "emulate it)"


def test_auto_on_a_gpu_without_bf16_trains_fp16_with_loss_scaling_and_fp16_qlora_compute(repo_root, tmp_path,
                                                                                         monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(precision, "cuda", lambda index=0: T4)
    p = train.plan(tiny_config(tmp_path))
    assert (p.device, p.quantize, p.precision.name, p.attention) == ("cuda", True, "fp16", "sdpa")
    assert train.precision_arguments(p) == {"bf16": False, "fp16": True, "use_cpu": False}
    assert train._quantization_config(p, double_quant=True).bnb_4bit_compute_dtype == torch.float16
    record = p.precision.record()
    assert record["precision"] == "fp16" and record["precision_reason"].startswith("auto: Tesla T4 (compute "
                                                                                   "capability 7.5; bf16 no)")
    assert set(record) <= set(TrainResult.model_fields)


@pytest.mark.cuda
@pytest.mark.slow
def test_qlora_on_cuda_trains_in_nf4(tmp_path, repo_root):
    cfg = tiny_config(tmp_path, "train.device=cuda", "train.quantization=nf4")
    prepare.run(cfg)
    m = train.run(cfg).to_manifest()
    assert m["device"] == "cuda" and m["quantization"] == "nf4" and m["optimizer"] == "paged_adamw_8bit"
    assert m["steps"] == 2 and m["peak_memory_kind"] == "cuda_allocated" and m["packing"]
    assert m["peak_memory_mb"] <= 1024 * m["estimated_peak_gb"], "the planner's estimate bounds the real peak"


@pytest.mark.cuda
@pytest.mark.slow
def test_bench_8b_qlora_runs_both_recipes(repo_root, tmp_path):
    """The bench's GPU path: a random Llama-3.1-8B-shaped model in NF4, seed recipe and default, a few steps."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install medgen[cuda])")
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", "bench/bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--shape", "llama31-8b", "--tokens", "16384", "--records", "60",
                      "--work", str(tmp_path), "--out", str(tmp_path / "bench.json")])
    assert out["default"]["tokens"] >= 16384 and out["seed"]["tokens"] >= 16384
    assert out["default"]["peak_gib"] <= 22 and out["ratio"] > 1
