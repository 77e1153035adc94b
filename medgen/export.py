"""export: merged HF model → GGUF, then reload it in llama.cpp and compare logits with the merged model."""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

from medgen.config import PipelineConfig
from medgen.constants import GGUF_FILE, INSTRUCTION
from medgen.errors import ExportError
from medgen.gguf_convert import convert
from medgen.io import ensure_dir, owner_only, read_manifest, write_stage_record
from medgen.merge import compare_logits
from medgen.prepare import chat_messages, make_input

# (min top-1 agreement, max abs logit diff or None) per out-type, from measured round trips.
THRESHOLDS = {"f16": (1.0, 0.1), "bf16": (0.95, None), "q8_0": (0.9, None), "q4_k_m": (0.75, None)}
PARITY_PROMPTS = (("Female", "PSYCHIATRY"), ("Male", "CARDIOLOGY"), ("Female", "SURGERY"), ("Male", "NEUROLOGY"))


@dataclass
class ExportResult:
    out_dir: Path
    gguf_path: Path
    manifest: dict


def parity_token_ids(tok) -> list[list[int]]:
    """Chat prompts that end inside a record, so positions cover both template and record text."""
    out = []
    for sex, service in PARITY_PROMPTS:
        text = tok.apply_chat_template(chat_messages(INSTRUCTION, make_input(sex, service)), tokenize=False, add_generation_prompt=True)
        text += f"Name: John Doe    Unit No: 1234567\n \nAdmission Date: 01/02/2020"
        out.append(tok(text, add_special_tokens=False)["input_ids"])
    return out


@contextlib.contextmanager
def open_llama(path: Path, n_ctx: int = 1024, logits_all: bool = False, f32_kv_cache: bool = False):
    from llama_cpp import GGML_TYPE_F32, Llama

    # An F32 KV cache keeps llama.cpp's default F16 cache rounding out of a check of the file's weights.
    kv = {"type_k": GGML_TYPE_F32, "type_v": GGML_TYPE_F32} if f32_kv_cache else {}
    llm = Llama(str(path), n_ctx=n_ctx, logits_all=logits_all, n_threads=os.cpu_count(), verbose=False, **kv)
    try:
        yield llm
    finally:
        llm.close()


def verify(merged_dir: Path, gguf_path: Path) -> dict:
    """Next-token logits of the GGUF (llama.cpp) against the merged model (transformers, float32)."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged_dir)
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    prompts = parity_token_ids(tok)
    refs, got, tokenizer_agrees = [], [], True
    with open_llama(gguf_path, n_ctx=max(len(p) for p in prompts) + 8, logits_all=True, f32_kv_cache=True) as llm:
        for ids in prompts:
            text = tok.decode(ids)
            tokenizer_agrees &= llm.tokenize(text.encode(), add_bos=False, special=True) == ids
            llm.reset()
            llm.eval(ids)
            got.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
            with torch.no_grad():
                refs.append(model(torch.tensor([ids])).logits[0].numpy())
    check = compare_logits(torch.from_numpy(np.concatenate(refs)), torch.from_numpy(np.concatenate(got)))
    check["tokenizer_agrees"] = bool(tokenizer_agrees)
    return check


def _quantize_q4_k_m(src: Path, dst: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise ExportError(f"llama.cpp could not quantize {src} to Q4_K_M")


def run(config: PipelineConfig) -> ExportResult:
    t0 = time.perf_counter()
    ec = config.export
    merged_dir = Path(read_manifest(config.stage_dir("merge"))["merged_dir"])
    out_dir = ensure_dir(config.stage_dir("export"))
    gguf_path = out_dir / GGUF_FILE.format(outtype=ec.outtype)
    with owner_only():
        if ec.outtype == "q4_k_m":
            f16 = out_dir / ".model-f16-for-q4.gguf"
            convert(merged_dir, f16, "f16")
            tmp = gguf_path.with_name(f".{gguf_path.name}.tmp")
            try:
                _quantize_q4_k_m(f16, tmp)
                os.replace(tmp, gguf_path)
            finally:
                f16.unlink(missing_ok=True)
                tmp.unlink(missing_ok=True)
            summary = {"path": str(gguf_path), "outtype": "q4_k_m", "bytes": gguf_path.stat().st_size}
        else:
            summary = convert(merged_dir, gguf_path, ec.outtype)
    convert_s = time.perf_counter() - t0
    parity = None
    if ec.verify:
        parity = verify(merged_dir, gguf_path)
        min_top1, max_diff = THRESHOLDS[ec.outtype]
        min_top1 = ec.min_top1 if ec.min_top1 is not None else min_top1
        max_diff = ec.max_abs_diff if ec.max_abs_diff is not None else max_diff
        parity.update(required_top1=min_top1, required_max_abs_diff=max_diff)
        failed = [f"top-1 agreement {parity['top1_agreement']:.3f} < {min_top1}"] if parity["top1_agreement"] < min_top1 else []
        if max_diff is not None and parity["max_abs_diff"] >= max_diff:
            failed.append(f"max abs logit diff {parity['max_abs_diff']:.4f} >= {max_diff}")
        if not parity["tokenizer_agrees"]:
            failed.append("llama.cpp tokenizes the prompts differently from the HF tokenizer")
        if failed:
            gguf_path.rename(gguf_path.with_suffix(".rejected.gguf"))
            raise ExportError(f"{gguf_path.name} disagrees with the merged model over {parity['positions']} "
                              f"positions: {'; '.join(failed)}. Try export.outtype=f16.")
    manifest = {"stage": "export", "merged_dir": str(merged_dir), "gguf": str(gguf_path), **summary,
                "parity": parity, "convert_s": round(convert_s, 2), "wall_s": round(time.perf_counter() - t0, 2)}
    with owner_only():
        write_stage_record(out_dir, config.to_yaml(), manifest)
    return ExportResult(out_dir, gguf_path, manifest)
