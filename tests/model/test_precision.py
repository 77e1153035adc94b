"""The compute dtype from what the hardware computes natively (medgen/model/precision.py)."""

import logging
import os
import subprocess
import sys

import pytest

from medgen.core.errors import ConfigError
from medgen.model import precision

CPU_BF16 = precision.Hardware("cpu", "Xeon with AMX", True, "AMX yes", bf16_faster=True)
# AVX-512 BF16 without AMX: native, but the embedded model trained 1.16x faster in fp32 there.
CPU_AVX512_BF16 = precision.Hardware("cpu", "Xeon without AMX", True, "AMX no; AVX-512 BF16 yes", bf16_faster=False)
CPU_AVX2 = precision.Hardware("cpu", "AMD EPYC (AVX2)", False, "torch CPU capability AVX2; AMX no; AVX-512 BF16 no")
GPU_BF16 = precision.Hardware("cuda", "NVIDIA A100", True, "compute capability 8.0; bf16 yes")
GPU_FP16 = precision.Hardware("cuda", "Tesla T4", False, "compute capability 7.5; bf16 no")


@pytest.fixture
def hardware(monkeypatch):
    """Fake the capability probe: `hardware(cpu=..., cuda=...)` decides what `precision.choose` sees."""

    def fake(cpu=CPU_BF16, cuda=GPU_BF16):
        monkeypatch.setattr(precision, "cpu", lambda: cpu)
        monkeypatch.setattr(precision, "cuda", lambda index=0: cuda)

    return fake


@pytest.mark.parametrize("device, cpu, cuda, requested, expected", [
    # auto: what the hardware computes natively
    ("cuda", CPU_AVX2, GPU_BF16, "auto", "bf16"),
    ("cuda", CPU_AVX2, GPU_FP16, "auto", "fp16"),   # T4, V100: fp16 mixed precision with loss scaling
    ("cpu", CPU_BF16, GPU_FP16, "auto", "bf16"),    # AMX
    ("cpu", CPU_AVX512_BF16, GPU_BF16, "auto", "fp32"),  # native bf16 that does not pay
    ("cpu", CPU_AVX2, GPU_BF16, "auto", "fp32"),    # anything else
    # an explicit setting is kept where it can run
    ("cpu", CPU_BF16, GPU_BF16, "fp32", "fp32"),
    ("cpu", CPU_AVX2, GPU_BF16, "fp32", "fp32"),
    ("cuda", CPU_AVX2, GPU_BF16, "fp16", "fp16"),
    ("cuda", CPU_AVX2, GPU_BF16, "bf16", "bf16"),
    ("cpu", CPU_BF16, GPU_BF16, "bf16", "bf16"),
    ("cpu", CPU_AVX512_BF16, GPU_BF16, "bf16", "bf16"),
])
def test_precision_follows_the_hardware(hardware, device, cpu, cuda, requested, expected):
    hardware(cpu=cpu, cuda=cuda)
    chosen = precision.choose(requested, device)
    assert chosen.name == expected
    assert chosen.reason.startswith(f"{requested}")
    if requested == "auto":  # the reason names the device and what the verdict rests on
        hw = cuda if device == "cuda" else cpu
        assert hw.name in chosen.reason and hw.features in chosen.reason


@pytest.mark.parametrize("device, cpu, cuda, requested, key_text", [
    ("cpu", CPU_BF16, GPU_BF16, "fp16", "expected 'auto', 'bf16' or 'fp32' on the CPU, got 'fp16'"),
    ("cuda", CPU_BF16, GPU_FP16, "bf16", "expected 'auto', 'fp16' or 'fp32' on Tesla T4, got 'bf16'"),
])
def test_what_cannot_run_is_a_config_error_naming_the_key(hardware, device, cpu, cuda, requested, key_text):
    hardware(cpu=cpu, cuda=cuda)
    with pytest.raises(ConfigError) as e:
        precision.choose(requested, device)
    assert str(e.value).startswith("train.precision: " + key_text) and "use auto" in str(e.value)


def test_explicit_bf16_without_native_bf16_runs_after_a_measured_warning(hardware, caplog):
    hardware(cpu=CPU_AVX2)
    with caplog.at_level(logging.WARNING, logger="medgen.model.precision"):
        chosen = precision.choose("bf16", "cpu")
    assert chosen.name == "bf16" and chosen.bf16_slowdown is not None and chosen.bf16_slowdown > 0
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("train.precision=bf16 on AMD EPYC (AVX2)")
    assert f"a probe matmul took {chosen.bf16_slowdown:.1f}x as long in bf16 as in fp32" in warning
    assert "train.precision=auto picks fp32 here" in warning
    assert f"{chosen.bf16_slowdown}x slower than in fp32" in chosen.reason


def test_the_probe_measures_a_matmul_in_both_dtypes():
    slowdown = precision.bf16_slowdown(shape=(64, 64, 64), repeats=1)
    assert 0 < slowdown < 10_000


def test_a_cpu_limited_to_avx2_has_no_native_bf16(repo_root):
    """The real probe, no patch: oneDNN limited to AVX2 (as on an AVX2-only CPU) makes `auto` pick fp32."""
    code = ("from medgen.model import precision; c = precision.choose('auto', 'cpu'); "
            "print(c.name, c.hardware.native_bf16, '|', c.reason)")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("fp32 False | auto: ") and "torch CPU capability AVX2" in out and "oneDNN bf16 no" in out, out


def test_the_record_holds_what_a_manifest_keeps(hardware):
    from medgen.core.results import MergeResult, TrainResult

    hardware(cpu=CPU_AVX2)
    record = precision.choose("auto", "cpu").record()
    assert record == {"precision": "fp32", "precision_reason": record["precision_reason"], "hardware": CPU_AVX2.name,
                      "hardware_features": CPU_AVX2.features, "native_bf16": False, "bf16_slowdown": None}
    assert set(record) <= set(TrainResult.model_fields)
    assert {"compute_dtype", "compute_reason"} <= set(MergeResult.model_fields)
