"""merge: fold the LoRA adapter into the base loaded in 16-bit (never 4-bit); save safetensors + tokenizer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from medgen.config import PipelineConfig
from medgen.constants import ADAPTER_DIR, INSTRUCTION, MERGED_DIR
from medgen.io import atomic_dir, ensure_dir, owner_only, read_manifest, write_stage_record
from medgen.modeling import load_causal_lm, load_tokenizer
from medgen.prepare import chat_messages, make_input

PROBE = ("Female", "PSYCHIATRY")
TIE_MARGIN = 0.1


@dataclass
class MergeResult:
    out_dir: Path
    merged_dir: Path
    manifest: dict


def probe_ids(tok):
    """A fixed chat prompt whose logits are compared before and after each conversion."""
    text = tok.apply_chat_template(chat_messages(INSTRUCTION, make_input(*PROBE)), tokenize=False, add_generation_prompt=True) + "Name:"
    return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def compare_logits(a, b) -> dict:
    """Top-1 agreement and max abs difference between two [seq, vocab] logit tensors.

    `max_abs_diff` compares logits centered per position: softmax ignores a per-position shift, so a
    shift is no disagreement. `raw_max_abs_diff` is the plain figure. `top1_agreement` leaves out
    positions where the reference's top two logits are within TIE_MARGIN (a near tie that any rounding
    may flip); `top1_agreement_all` counts every position.
    """
    a, b = a.float(), b.float()
    centered = (a - a.mean(-1, keepdim=True)) - (b - b.mean(-1, keepdim=True))
    agree = a.argmax(-1) == b.argmax(-1)
    # Where the reference's best two tokens are closer than rounding noise, either pick is faithful.
    top2 = a.topk(2, dim=-1).values
    decisive = (top2[:, 0] - top2[:, 1]) >= TIE_MARGIN
    return {
        "top1_agreement": float(agree[decisive].float().mean()) if decisive.any() else 1.0,
        "top1_agreement_all": float(agree.float().mean()),
        "max_abs_diff": float(centered.abs().max()),
        "raw_max_abs_diff": float((a - b).abs().max()),
        "positions": int(a.shape[0]),
        "near_tie_positions": int((~decisive).sum()),
    }


def run(config: PipelineConfig) -> MergeResult:
    import torch
    from peft import PeftModel

    t0 = time.perf_counter()
    train_dir = config.stage_dir("train")
    train_manifest = read_manifest(train_dir)
    adapter = train_dir / ADAPTER_DIR
    base = train_manifest["resolved_base"]
    dtype = getattr(torch, config.merge.dtype)
    out_dir = ensure_dir(config.stage_dir("merge"))
    merged_dir = out_dir / MERGED_DIR
    tok = load_tokenizer(str(adapter))
    # Merging into 4-bit weights would round the adapter away: load the base unquantized in 16-bit.
    model = PeftModel.from_pretrained(load_causal_lm(base, dtype=dtype), str(adapter))
    model.eval()
    ids = probe_ids(tok)
    with torch.no_grad():
        before = model(ids).logits[0]
        merged = model.merge_and_unload()
        after = merged(ids).logits[0]
    check = compare_logits(before, after)
    merged.config.use_cache = True
    with owner_only(), atomic_dir(merged_dir) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    manifest = {
        "stage": "merge",
        "base": base,
        "adapter": str(adapter),
        "dtype": config.merge.dtype,
        "parameters": sum(p.numel() for p in merged.parameters()),
        "merged_vs_adapter": check,
        "merged_dir": str(merged_dir),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    with owner_only():
        write_stage_record(out_dir, config.to_yaml(), manifest)
    return MergeResult(out_dir, merged_dir, manifest)
