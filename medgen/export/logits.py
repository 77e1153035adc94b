"""Logit comparison of a converted model against its reference: merged vs adapter (full logits on both
sides) and a GGUF in llama.cpp vs the merged model (llama.cpp's top-k log-probs against full logits).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from medgen.core.errors import ExportError, ServeError

TIE_MARGIN = 0.1
# Floor for a tail bucket's probability: llama.cpp's float32 top-k may sum to a hair over 1.
TAIL_FLOOR = 1e-12


def _decisive(ref):
    """Positions where the reference's best two logits are at least TIE_MARGIN apart: below that any
    rounding may flip the pick, and either pick is faithful."""
    top2 = ref.topk(2, dim=-1).values
    return (top2[:, 0] - top2[:, 1]) >= TIE_MARGIN


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
    decisive = _decisive(a)
    return {
        "top1_agreement": float(agree[decisive].float().mean()) if decisive.any() else 1.0,
        "top1_agreement_all": float(agree.float().mean()),
        "max_abs_diff": float(centered.abs().max()),
        "raw_max_abs_diff": float((a - b).abs().max()),
        "positions": int(a.shape[0]),
        "near_tie_positions": int((~decisive).sum()),
    }


def compare_topk_logprobs(ref_logits, got: list[dict[int, float]]) -> dict:
    """Reference [seq, vocab] logits against another model's top-k next-token log-probs per position.

    `kl_mean`/`kl_max` (nats) are KL(P_ref || Q) per position with both distributions coarsened to Q's
    k tokens plus one bucket for all the others: exact for what is known of Q, and by the
    data-processing inequality never above the true KL, so a large figure is a real disagreement.
    `max_abs_logprob_diff` compares log-probs of Q's k tokens (raw logits are not known for Q).
    Top-1 agreement leaves out the reference's near ties, as in `compare_logits`.
    """
    import torch

    if len(got) != ref_logits.shape[0]:
        raise ValueError(f"expected top-k log-probs for {ref_logits.shape[0]} positions, got {len(got)}")
    ref = ref_logits.double()
    ref_lp = torch.log_softmax(ref, dim=-1)
    kls, diffs, got_top1 = [], [], []
    for i, top in enumerate(got):
        ids = torch.tensor(list(top), dtype=torch.long)
        q_lp = torch.tensor(list(top.values()), dtype=torch.float64)
        p_lp = ref_lp[i, ids]
        p_tail = (1 - p_lp.exp().sum()).clamp(min=TAIL_FLOOR)
        q_tail = (1 - q_lp.exp().sum()).clamp(min=TAIL_FLOOR)
        kls.append(float((p_lp.exp() * (p_lp - q_lp)).sum() + p_tail * (p_tail.log() - q_tail.log())))
        diffs.append(float((p_lp - q_lp).abs().max()))
        got_top1.append(int(ids[q_lp.argmax()]))
    agree = ref.argmax(-1) == torch.tensor(got_top1)
    decisive = _decisive(ref)
    return {
        "top1_agreement": float(agree[decisive].double().mean()) if decisive.any() else 1.0,
        "top1_agreement_all": float(agree.double().mean()),
        "near_tie_positions": int((~decisive).sum()),
        "positions": len(got),
        "kl_mean": sum(kls) / len(kls),
        "kl_max": max(kls),
        "max_abs_logprob_diff": max(diffs),
    }


def verify_gguf(merged_dir: Path, gguf_path: Path, prompts: list[list[int]] | None = None, k: int = 20,
                threads: int | None = None) -> dict:
    """Next-token distributions of the GGUF in llama.cpp against the merged model (transformers, float32).

    `prompts` are token ids (default: the probe prompts without inline markup). llama.cpp runs with an
    F32 KV cache so that its F16 cache rounding stays out of a check of the file's weights; it must also
    tokenize each prompt's text exactly as the HF tokenizer does (`tokenizer_agrees`). `threads`
    defaults to half the usable CPUs: llama.cpp's threads spin at barriers, and when another process
    takes a core a barrier waits on a descheduled thread (2 cores, another job busy: 334 positions in
    8 s with one thread, 70-320 s with two).
    """
    import torch
    from transformers import AutoTokenizer

    from medgen.data.prompts import probe_token_ids
    from medgen.serve import llamacpp
    from medgen.model.loading import load_causal_lm

    tok = AutoTokenizer.from_pretrained(merged_dir)
    prompts = prompts if prompts is not None else probe_token_ids(tok, False)
    threads = threads or max(1, len(os.sched_getaffinity(0)) // 2)
    # On a GPU node the float32 reference runs there, spilling layers to host memory where an 8B model
    # (32 GB in float32) outgrows the card, instead of hours on the CPU.
    cuda = torch.cuda.is_available()
    model = load_causal_lm(str(merged_dir), dtype=torch.float32, device_map="auto" if cuda else None).eval()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # torch's threads spin too (same 2 cores: 1.2 s with one, 13 s with two)
    try:
        with torch.no_grad():
            refs = [model(torch.tensor([ids], device=model.device)).logits[0].float().cpu() for ids in prompts]
    finally:
        torch.set_num_threads(torch_threads)
    del model
    with tempfile.TemporaryDirectory(prefix="medgen-verify-") as tmp:
        try:
            # Four slots decode four prefixes per step, nearly for the price of one.
            server = llamacpp.start_server(gguf_path, log_path=Path(tmp) / "llama.log", parallel=4,
                                           ctx=max(map(len, prompts)) + 8, threads=threads,
                                           alias=gguf_path.stem, f32_kv_cache=True)
        except ServeError as e:
            raise ExportError(f"llama.cpp could not load {gguf_path.name}: {e}") from None
        try:
            tokenizer_agrees = all(llamacpp.tokenize(server.url, tok.decode(ids)) == ids for ids in prompts)
            got = [lp for ids in prompts for lp in llamacpp.next_token_logprobs(server.url, ids, k)]
        finally:
            server.stop()
    return {**compare_topk_logprobs(torch.cat(refs), got), "tokenizer_agrees": tokenizer_agrees, "k": k}
