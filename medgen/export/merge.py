"""merge: fold the LoRA adapter into the unquantized base and save it in 16-bit (merge.dtype) with the tokenizer.

The merge runs on the CPU, in what the CPU computes natively and fast (medgen/model/precision.py: bf16 with AMX,
else fp32; emulated bf16 made an AVX2-only CPU's matmuls 36x slower); only the saved checkpoint is cast to
merge.dtype."""

from __future__ import annotations

import time

from medgen.core.config import PipelineConfig
from medgen.core.constants import MERGED_DIR
from medgen.core.io import atomic_dir, ensure_dir, owner_only
from medgen.core.progress import quiet_libraries
from medgen.core.provenance import fingerprint
from medgen.core.results import MergeResult, TrainResult
from medgen.data.prompts import probe_token_ids
from medgen.export.logits import compare_logits
from medgen.model import precision
from medgen.model.loading import load_causal_lm, load_tokenizer


def probe_logits(model, prompts: list[list[int]]):
    """[positions, vocab] logits of the model over the fixed probe prompts."""
    import torch

    with torch.no_grad():
        return torch.cat([model(torch.tensor([ids])).logits[0].float() for ids in prompts])


def inputs(config: PipelineConfig) -> dict:
    """What the merged model is made from (medgen/core/skip.py): the merge settings and the trained adapter."""
    trained = TrainResult.from_manifest(config.stage_dir("train"))
    return fingerprint(config.merge.model_dump(mode="json"), {"train": trained.identity})


def run(config: PipelineConfig) -> MergeResult:
    from peft import PeftModel

    quiet_libraries()
    t0 = time.perf_counter()
    trained = TrainResult.from_manifest(config.stage_dir("train"))
    import torch

    compute = precision.choose("auto", "cpu", "merge")
    out_dir = ensure_dir(config.stage_dir("merge"))
    merged_dir = out_dir / MERGED_DIR
    tok = load_tokenizer(str(trained.adapter_dir))
    # Merging into 4-bit weights would round the adapter away: load the base unquantized.
    model = PeftModel.from_pretrained(load_causal_lm(trained.resolved_base, dtype=compute.torch_dtype),
                                      str(trained.adapter_dir))
    model.eval()
    prompts = probe_token_ids(tok, config.data.markup_mode() == "inline")
    before = probe_logits(model, prompts)
    merged = model.merge_and_unload()
    check = compare_logits(before, probe_logits(merged, prompts))
    merged = merged.to(getattr(torch, config.merge.dtype))
    merged.config.use_cache = True
    with owner_only():
        with atomic_dir(merged_dir) as tmp:
            merged.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        result = MergeResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2),
            **inputs(config),
            base=trained.resolved_base, adapter=trained.adapter_dir, dtype=config.merge.dtype,
            compute_dtype=compute.name, compute_reason=compute.reason,
            parameters=sum(p.numel() for p in merged.parameters()), merged_vs_adapter=check, merged_dir=merged_dir,
        )
        result.write(config.to_yaml())
    return result
