"""The dtype medgen computes in, from what the hardware computes natively.

One rule for every place medgen runs the model in torch (training, the merge, vLLM's engine):

| hardware | `auto` gives |
|---|---|
| CUDA with bf16 (Ampere and later) | bf16 |
| CUDA without bf16 (T4, V100) | fp16 mixed precision with loss scaling (fp16 compute under QLoRA) |
| CPU with AMX (bf16 tiles; as torch and oneDNN report it) | bf16 |
| any other CPU | fp32 |

A CPU without native bf16 emulates it: on an AVX2-only AMD EPYC a bf16 matmul took 761 ms against 21 ms in fp32
(36x), and training the embedded model in bf16 ran at 6 tokens/s instead of ~100. An explicit `bf16` there still
runs, after a warning that gives the slowdown of one probe matmul measured on this machine. AVX-512 BF16 without
AMX computes bf16 natively but gains nothing: on such a Xeon the embedded model trained 1.16x faster in fp32
(bench/bench_cpu_levers.py), so `auto` keeps fp32 there; with AMX, bf16 trained 1.1-1.4x faster than fp32.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from medgen.core.errors import ConfigError

log = logging.getLogger(__name__)

Name = Literal["bf16", "fp16", "fp32"]
Requested = Literal["auto", "bf16", "fp16", "fp32"]
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# One matmul of the embedded model's MLP (tokens x hidden @ hidden x intermediate): the warning's probe.
PROBE_SHAPE = (512, 576, 1536)


@dataclass(frozen=True)
class Hardware:
    """What runs the model and whether it computes bf16 natively."""

    device: Literal["cpu", "cuda"]
    name: str
    native_bf16: bool  # computes bf16 in hardware (no emulation)
    features: str  # what the verdict rests on, in words (for the manifest and the warning)
    bf16_faster: bool | None = None  # a CPU's bf16 is worth more than fp32 (AMX); None: same as native_bf16


@dataclass(frozen=True)
class Precision:
    """The dtype chosen, and why."""

    name: Name
    reason: str
    hardware: Hardware
    bf16_slowdown: float | None = None  # the probe's bf16/fp32 time, measured only where bf16 is not native

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, TORCH_DTYPES[self.name])

    def record(self) -> dict:
        """The figures a manifest keeps."""
        return {"precision": self.name, "precision_reason": self.reason, "hardware": self.hardware.name,
                "hardware_features": self.hardware.features, "native_bf16": self.hardware.native_bf16,
                "bf16_slowdown": self.bf16_slowdown}


def _flag(module, name: str) -> bool:
    """A private torch capability query, False where this torch has no such function."""
    fn = getattr(module, name, None)
    try:
        return bool(fn()) if callable(fn) else False
    except RuntimeError:
        return False


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


@lru_cache(maxsize=None)
def cpu() -> Hardware:
    """The CPU as torch sees it. Native bf16 needs the instructions (AMX tiles or AVX-512 BF16, from cpuid) and a
    oneDNN that uses them (`ONEDNN_MAX_CPU_ISA` can forbid it); without both, torch emulates bf16 at a large cost."""
    import torch

    amx = _flag(torch.cpu, "_is_amx_tile_supported")
    avx512_bf16 = _flag(torch.cpu, "_is_avx512_bf16_supported")
    onednn_bf16 = _flag(torch.ops.mkldnn, "_is_mkldnn_bf16_supported")
    capability = torch.backends.cpu.get_cpu_capability()
    yes = {True: "yes", False: "no"}
    features = (f"torch CPU capability {capability}; AMX {yes[amx]}; AVX-512 BF16 {yes[avx512_bf16]}; "
                f"oneDNN bf16 {yes[onednn_bf16]}")
    return Hardware("cpu", _cpu_name(), (amx or avx512_bf16) and onednn_bf16, features, amx and onednn_bf16)


@lru_cache(maxsize=None)
def cuda(index: int = 0) -> Hardware:
    import torch

    props = torch.cuda.get_device_properties(index)
    native = bool(torch.cuda.is_bf16_supported(including_emulation=False))
    return Hardware("cuda", props.name, native, f"compute capability {props.major}.{props.minor}; "
                    f"bf16 {'yes' if native else 'no'}")


def hardware(device: str) -> Hardware:
    return cuda() if device == "cuda" else cpu()


def bf16_slowdown(shape: tuple[int, int, int] = PROBE_SHAPE, repeats: int = 3) -> float:
    """How many times longer one bf16 matmul takes than the same in fp32, on this CPU (best of `repeats`)."""
    import torch

    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)

    def best(x, y) -> float:
        x @ y  # warm-up: oneDNN builds its kernel on first use
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(a.bfloat16(), b.bfloat16()) / max(best(a, b), 1e-9)


def choose(requested: Requested, device: str, key: str = "train.precision") -> Precision:
    """The precision to compute in on `device` ("cpu" or "cuda") for what the setting `key` asks; the reason
    starts with what was asked."""
    hw = hardware(device)
    where = f"{hw.name} ({hw.features})"
    if requested == "fp32":
        return Precision("fp32", "fp32 asked for", hw)
    if requested == "fp16":
        if device != "cuda":
            raise ConfigError([f"{key}: expected 'auto', 'bf16' or 'fp32' on the CPU, got 'fp16' (fp16 mixed "
                               "precision is for GPUs without bf16); use auto"])
        return Precision("fp16", "fp16 asked for", hw)
    faster = hw.native_bf16 if hw.bf16_faster is None else hw.bf16_faster
    if requested == "auto" and hw.native_bf16 and not faster:
        return Precision("fp32", f"auto: {where} computes bf16 natively but without AMX, where fp32 trains faster",
                         hw)
    if hw.native_bf16:
        return Precision("bf16", f"{requested}: {where} computes bf16 natively", hw)
    if requested == "auto":
        if device == "cuda":
            return Precision("fp16", f"auto: {where} has no bf16: fp16 mixed precision with loss scaling", hw)
        return Precision("fp32", f"auto: {where} has no native bf16 (torch would emulate it)", hw)
    if device == "cuda":
        raise ConfigError([f"{key}: expected 'auto', 'fp16' or 'fp32' on {hw.name}, got 'bf16' ({hw.features}); "
                           "use auto (fp16 mixed precision there)"])
    slowdown = round(bf16_slowdown(), 1)
    log.warning("%s=bf16 on %s, which has no native bf16: a probe matmul took %.1fx as long in bf16 as in fp32, "
                "so training will be about that much slower; %s=auto picks fp32 here", key, where, slowdown, key)
    return Precision("bf16", f"bf16 asked for on {where}, without native bf16 (a probe matmul ran {slowdown}x "
                     "slower than in fp32)", hw, slowdown)
