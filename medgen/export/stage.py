"""export: merged HF model → GGUF, then serve it with llama.cpp and compare next-token distributions.

The GGUF is written and verified under a temporary name; it gets its final name only when it passes
the gate for its out-type (`constants.OUTTYPES`), else it is kept as `*.rejected.gguf` for inspection.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.constants import GGUF_FILE, OUTTYPES
from medgen.core.errors import ParityError
from medgen.core.io import ensure_dir, owner_only
from medgen.core.progress import quiet_libraries
from medgen.core.provenance import fingerprint
from medgen.core.results import ExportResult, MergeResult
from medgen.data.prompts import probe_token_ids
from medgen.export.gguf_convert import convert


def write_gguf(merged_dir: Path, dst: Path, outtype: str) -> dict:
    """Convert (and for quantize-API types, quantize) `merged_dir` into `dst`; return the converter summary."""
    if not OUTTYPES[outtype].quantize_api:
        return convert(merged_dir, dst, outtype)
    from medgen.serve.llamacpp import quantize

    f16 = dst.with_name(f".{dst.name}.f16.tmp")
    try:
        summary = convert(merged_dir, f16, "f16")
        quantize(f16, dst, outtype)
    finally:
        f16.unlink(missing_ok=True)
    return {**summary, "outtype": outtype, "path": str(dst), "bytes": dst.stat().st_size}


def gate(parity: dict, outtype: str, min_top1: float | None, max_kl_mean: float | None) -> list[str]:
    """Why a GGUF fails its out-type's gate (empty: it passes); also records the thresholds in `parity`."""
    spec = OUTTYPES[outtype]
    min_top1 = spec.min_top1 if min_top1 is None else min_top1
    max_kl = spec.max_kl_mean if max_kl_mean is None else max_kl_mean
    parity.update(required_top1=min_top1, required_max_kl_mean=max_kl)
    failed = []
    if parity["top1_agreement"] < min_top1:
        failed.append(f"top-1 agreement {parity['top1_agreement']:.3f} < {min_top1}")
    if parity["kl_mean"] > max_kl:
        failed.append(f"mean KL divergence {parity['kl_mean']:.5f} > {max_kl}")
    if not parity["tokenizer_agrees"]:
        failed.append("llama.cpp tokenizes the prompts differently from the HF tokenizer")
    return failed


def inputs(config: PipelineConfig) -> dict:
    """What the GGUF is made from (medgen/core/skip.py): the export settings and the merged model."""
    merged = MergeResult.from_manifest(config.stage_dir("merge"))
    return fingerprint(config.export.model_dump(mode="json"), {"merge": merged.identity})


def run(config: PipelineConfig) -> ExportResult:
    quiet_libraries()
    t0 = time.perf_counter()
    ec = config.export
    merged = MergeResult.from_manifest(config.stage_dir("merge"))
    out_dir = ensure_dir(config.stage_dir("export"))
    gguf_path = out_dir / GGUF_FILE.format(outtype=ec.outtype)
    tmp = gguf_path.with_name(f".{gguf_path.name}.{os.getpid()}.tmp")
    with owner_only():
        try:
            summary = write_gguf(merged.merged_dir, tmp, ec.outtype)
            convert_s = time.perf_counter() - t0
            parity = None
            if ec.verify:
                from medgen.export.logits import verify_gguf
                from medgen.model.loading import load_tokenizer

                prompts = probe_token_ids(load_tokenizer(str(merged.merged_dir)), config.data.markup_mode() == "inline")
                parity = verify_gguf(merged.merged_dir, tmp, prompts)
                failed = gate(parity, ec.outtype, ec.min_top1, ec.max_kl_mean)
                if failed:
                    rejected = gguf_path.with_suffix(".rejected.gguf")
                    os.replace(tmp, rejected)
                    raise ParityError(
                        f"{gguf_path.name} disagrees with the merged model over {parity['positions']} positions: "
                        f"{'; '.join(failed)}. Kept as {rejected.name}; try export.outtype=f16.", parity)
            os.replace(tmp, gguf_path)
        finally:
            tmp.unlink(missing_ok=True)
        summary.pop("path", None)
        result = ExportResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2),
            **inputs(config),
            merged_dir=merged.merged_dir, gguf=gguf_path, outtype=ec.outtype, bytes=gguf_path.stat().st_size,
            conversion={k: v for k, v in summary.items() if k not in ("outtype", "bytes")}, parity=parity,
            convert_s=round(convert_s, 2),
        )
        result.write(config.to_yaml())
    return result


def report(m: ExportResult) -> list[str]:
    p = m.parity
    return [f"parity: top-1 {p['top1_agreement']:.3f}, mean KL {p['kl_mean']:.5f} → {m.gguf}"] if p else []
