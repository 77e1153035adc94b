"""HF Llama-architecture checkpoint → GGUF, on the `gguf` package (llama.cpp's own writer library).

Writes what llama.cpp needs to run the model and apply its chat template: hyperparameters, rope
(with Llama 3.x `rope_freqs`), the BPE tokenizer (tokens, types, merges, special ids, add_bos,
pre-tokenizer name), the chat template, and q/k weights in llama.cpp's head order.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from medgen.core.constants import GGUF_ARCH_LLAMA, OUTTYPES, SUPPORTED_HF_ARCHITECTURES
from medgen.core.errors import ExportError

log = logging.getLogger(__name__)

# What this converter writes itself; the others come from llama.cpp's quantize API (see export/stage.py).
CONVERTER_OUTTYPES = tuple(name for name, o in OUTTYPES.items() if not o.quantize_api)


def permute_qk(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """HF stores rotary halves per head as [first half | second half]; llama.cpp wants them interleaved."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(head_dim: int, theta: float, scaling: dict) -> np.ndarray:
    """Per-frequency scale factors of Llama 3.x rope scaling, as llama.cpp's `rope_freqs` tensor."""
    factor = scaling.get("factor", 8.0)
    low = scaling.get("low_freq_factor", 1.0)
    high = scaling.get("high_freq_factor", 4.0)
    old_ctx = scaling.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    factors = []
    for freq in 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _rope(hp: dict) -> tuple[float, dict]:
    """(theta, scaling) from either transformers 5's `rope_parameters` or the older keys."""
    params = hp.get("rope_parameters") or {}
    scaling = hp.get("rope_scaling") or params
    theta = params.get("rope_theta", hp.get("rope_theta", 10000.0))
    return float(theta), dict(scaling or {})


def tokenizer_pre(vocab: dict[str, int]) -> str:
    """llama.cpp's pre-tokenizer name; it picks the regex that splits text before BPE."""
    if "<|begin_of_text|>" in vocab and "<|eot_id|>" in vocab:
        return "llama-bpe"
    if "<|im_start|>" in vocab and len(vocab) == 49152:
        return "smollm"
    log.warning("unknown BPE pre-tokenizer; writing 'default' (tokenization may differ from HF)")
    return "default"


def _tokenizer(model_dir: Path, n_vocab: int):
    """Token list, types and the pre-tokenizer name for a byte-level BPE tokenizer."""
    import gguf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    vocab = tok.get_vocab()
    added = {i: t for i, t in tok.added_tokens_decoder.items()}
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(added[i].content)
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    ids = tok("a", add_special_tokens=True)["input_ids"]
    add_bos = bool(tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id)
    return tok, tokens, types, tokenizer_pre(vocab), add_bos


def _tensor_type(name: str, data: np.ndarray, outtype: str):
    import gguf

    if data.ndim == 1 or name == "rope_freqs.weight":
        return gguf.GGMLQuantizationType.F32
    if outtype == "q8_0" and data.shape[-1] % 32 == 0:
        return gguf.GGMLQuantizationType.Q8_0
    if outtype == "bf16":
        return gguf.GGMLQuantizationType.BF16
    return gguf.GGMLQuantizationType.F16


def _encode(data: np.ndarray, qtype) -> np.ndarray:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return data.astype(np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return data.astype(np.float16)
    return gguf.quants.quantize(data.astype(np.float32), qtype)


def _hf_tensors(model_dir: Path):
    """(name, float32 numpy) for every tensor of the safetensors checkpoint, one at a time."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{model_dir}: no *.safetensors; expected the merge stage's output")
    for f in files:
        with safe_open(f, framework="pt") as st:
            for name in st.keys():
                yield name, st.get_tensor(name).float().numpy()


def convert(model_dir: Path, out_path: Path, outtype: str = "f16") -> dict:
    """Write `out_path` (atomically) from the HF checkpoint in `model_dir`; return a summary."""
    import gguf

    if outtype not in CONVERTER_OUTTYPES:
        raise ExportError(f"outtype: expected one of {', '.join(CONVERTER_OUTTYPES)}, got {outtype!r}")
    hp = json.loads((model_dir / "config.json").read_text())
    archs = hp.get("architectures") or []
    if not any(a in SUPPORTED_HF_ARCHITECTURES for a in archs):
        raise ExportError(
            f"{model_dir}: architecture {archs or hp.get('model_type')} is not supported; expected one of "
            f"{', '.join(SUPPORTED_HF_ARCHITECTURES)} (Llama-family models such as Llama 3.x and SmolLM2)"
        )
    n_layer, n_head = hp["num_hidden_layers"], hp["num_attention_heads"]
    n_head_kv = hp.get("num_key_value_heads", n_head)
    head_dim = hp.get("head_dim") or hp["hidden_size"] // n_head
    n_vocab = hp["vocab_size"]
    theta, scaling = _rope(hp)
    tied = bool(hp.get("tie_word_embeddings", False))

    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, GGUF_ARCH_LLAMA, use_temp_file=True)
    try:
        writer.add_name(model_dir.name)
        writer.add_context_length(hp.get("max_position_embeddings", 2048))
        writer.add_embedding_length(hp["hidden_size"])
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(hp["intermediate_size"])
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head_kv)
        writer.add_rope_dimension_count(head_dim)
        if head_dim != hp["hidden_size"] // n_head:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
        writer.add_rope_freq_base(theta)
        writer.add_layer_norm_rms_eps(hp.get("rms_norm_eps", 1e-5))
        writer.add_vocab_size(n_vocab)
        file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                     "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
        writer.add_file_type(file_type)
        if outtype == "q8_0":
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

        tok, tokens, types, pre, add_bos = _tokenizer(model_dir, n_vocab)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)
        if not special.merges:
            raise ExportError(f"{model_dir}: tokenizer has no BPE merges; only byte-level BPE tokenizers are supported")
        special.add_special_token["bos"] = add_bos
        special.add_special_token.setdefault("eos", False)
        if tok.chat_template:
            special.chat_template = tok.chat_template
        special.add_to_gguf(writer, quiet=True)

        name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
        written = []
        if scaling.get("rope_type", scaling.get("type", "")) == "llama3":
            factors = llama3_rope_factors(head_dim, theta, scaling)
            writer.add_tensor("rope_freqs.weight", factors)
            written.append(("rope_freqs.weight", list(factors.shape), "F32"))
        for hf_name, data in _hf_tensors(model_dir):
            if tied and hf_name == "lm_head.weight":
                continue
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ExportError(f"{model_dir}: cannot map tensor {hf_name!r} to a GGUF name")
            if hf_name.endswith("q_proj.weight"):
                data = permute_qk(data, n_head, n_head)
            elif hf_name.endswith("k_proj.weight"):
                data = permute_qk(data, n_head, n_head_kv)
            qtype = _tensor_type(name, data, outtype)
            encoded = _encode(data, qtype)
            if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
                writer.add_tensor(name, encoded)
            else:
                writer.add_tensor(name, encoded, raw_shape=encoded.shape, raw_dtype=qtype)
            written.append((name, list(data.shape), qtype.name))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out_path), "outtype": outtype, "tensors": len(written), "tokenizer_pre": pre,
            "add_bos": add_bos, "vocab_size": n_vocab, "rope_scaling": scaling.get("rope_type"),
            "bytes": out_path.stat().st_size}
