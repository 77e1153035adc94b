"""The production path (Llama 3.1 Instruct) on a tiny random Llama-3.1-shaped model with the real Llama 3
tokenizer and chat template (tests/llama3_fixture.py): merge, export and its gate, llama.cpp serving and
generate's request path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medgen.core.config import PipelineConfig, Rung
from medgen.core.constants import ADAPTER_DIR, LORA_TARGETS
from medgen.core.results import ExportResult, MergeResult, TrainResult
from medgen.data.prompts import request_messages
from medgen.export import gguf_convert, merge
from medgen.export import stage as export
from medgen.export.logits import verify_gguf
from medgen.serve import backends, llamacpp
from medgen.serve import launch as serve
from medgen.serve.modelfile import gguf_adds_bos

from conftest import tiny_config
from llama3_fixture import BOS, EOT, INSTALL_HINT, PAD, ROPE_PARAMETERS, build_model, tokenizer_source

# Merge, export, verify and serve a Llama 3.1-shaped model, eight GGUF builds: the pipeline's later stages.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(tokenizer_source() is None, reason=f"needs the Llama 3 tokenizer: {INSTALL_HINT}")]

# Text llama.cpp's llama-bpe must split exactly as HF does: contractions, digit runs (at most 3 digits a
# token), whitespace runs, newlines, non-ASCII, special tokens inside text, and " Việt", one token only
# when a pre-token found whole in the vocabulary skips the merges (ignore_merges; three tokens otherwise).
TOKENIZE_TEXTS = (
    "Bệnh nhân người Việt, 72 tuổi",
    "Name: [[patient Avery O'Neil]]    Unit No: [[mrn 4417205]]\n \nAdmission Date: 01/02/2020",
    "She's been taking 1234567.89 mg/day; we'll   re-check\t\ttomorrow.\r\n\n\n",
    "Ça coûte 12€ — naïve café, 東京都, Привет, 🙂 emoji",
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
)


def write_random_adapter(base: Path, adapter_dir: Path) -> None:
    """A LoRA adapter on every projection with random, nonzero B (peft initialises B to zero: no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=list(LORA_TARGETS)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter_dir)


@pytest.fixture(scope="module")
def llama_run(tmp_path_factory, repo_root) -> tuple[PipelineConfig, Path, MergeResult, ExportResult]:
    """The tiny Llama as the train stage would leave it (a manifest and an adapter), then the real merge and
    export (f16) stages."""
    root = tmp_path_factory.mktemp("llama3")
    base = build_model(root / "base")
    # float32: bf16 rounding of this chaotic model's merged weights alone moves the top-1 token at ~10% of
    # positions (measured 0.895 agreement), which would say nothing about the merge itself.
    config = tiny_config(root / "run", "merge.dtype=float32", "export.outtype=f16")
    train_dir = config.stage_dir("train")
    write_random_adapter(base, train_dir / ADAPTER_DIR)
    TrainResult(
        out_dir=train_dir, wall_s=0.0, base=str(base), resolved_base=str(base), device="cpu", quantization="none",
        precision="fp32", precision_reason="train.precision=fp32", hardware="CPU", hardware_features="",
        native_bf16=False, optimizer="none", rung=Rung(r=4, max_seq_length=128), steps=0, epochs=0.0, train_examples=0,
        final_train_loss=None, mean_train_loss=None, final_val_loss=None, train_losses=[], val_losses=[],
        tokens_seen=0, tokens_per_s=None, peak_memory_mb=0.0, peak_memory_kind="none",
        adapter_dir=train_dir / ADAPTER_DIR, loss_plot=train_dir / "none.png", checkpoints_dir=train_dir,
    ).write(config.to_yaml())
    merged = merge.run(config)
    return config, base, merged, export.run(config)


@pytest.fixture(scope="module")
def server(llama_run, tmp_path_factory) -> Iterator[backends.LlamaCppBackend]:
    from transformers import AutoTokenizer

    config, _, merged, exported = llama_run
    # One thread: llama.cpp's spinning barriers crawl when another process shares these 2 cores.
    cfg = config.model_copy(update={"serve": config.serve.model_copy(update={
        "threads": 1, "num_ctx": 1024, "parallel": 1, "model_name": "medgen-llama3"})})
    # The serve stage's own path, which pins the template's defaults (date_string) to training's.
    backend = backends.start_llamacpp(cfg, exported.gguf, tmp_path_factory.mktemp("llama3-serve") / "server.log",
                                      AutoTokenizer.from_pretrained(merged.merged_dir).chat_template)
    yield backend
    backend.stop()


def test_merge_folds_the_random_adapter(llama_run):
    _, base, merged, _ = llama_run
    assert merged.merged_vs_adapter["top1_agreement"] == 1.0, merged.merged_vs_adapter
    assert merged.merged_vs_adapter["max_abs_diff"] < 1e-2, merged.merged_vs_adapter
    from safetensors import safe_open

    def q_proj(folder: Path):
        with safe_open(next(folder.glob("*.safetensors")), framework="pt") as st:
            return st.get_tensor("model.layers.0.self_attn.q_proj.weight").float()

    assert (q_proj(merged.merged_dir) - q_proj(base)).abs().max() > 0.01  # the adapter really was folded in
    assert json.loads((merged.merged_dir / "config.json").read_text())["rope_parameters"]["rope_type"] == "llama3"


def test_f16_export_passes_the_gate_with_llama3_metadata(llama_run):
    import gguf
    import torch
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    _, _, merged, exported = llama_run
    parity = exported.parity
    assert parity["tokenizer_agrees"] and parity["positions"] > 300, parity
    assert not export.gate(dict(parity), "f16", None, None), parity
    assert exported.conversion["tokenizer_pre"] == "llama-bpe" and exported.conversion["add_bos"]

    reader = gguf.GGUFReader(exported.gguf)
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.ggml.")
            and k not in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")}
    assert meta["tokenizer.ggml.pre"] == "llama-bpe"
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]) == (BOS, EOT)
    assert meta["tokenizer.ggml.padding_token_id"] == PAD and meta["tokenizer.ggml.add_bos_token"] is True
    # No GGUF key names an EOT token (gguf's SpecialVocab writes none, nor does llama.cpp's converter):
    # llama.cpp recognises <|eot_id|> by its text among the control tokens, as for a stock Llama 3.1 GGUF.
    tokens = reader.get_field("tokenizer.ggml.tokens")
    types = reader.get_field("tokenizer.ggml.token_type")
    assert len(tokens.data) == 128_256 and tokens.contents(EOT) == "<|eot_id|>"
    assert types.contents(EOT) == gguf.TokenType.CONTROL
    assert reader.get_field("tokenizer.chat_template").contents().count("Today Date: ") == 1

    rope = next(t for t in reader.tensors if t.name == "rope_freqs.weight")
    config = AutoConfig.from_pretrained(merged.merged_dir)
    head_dim = config.hidden_size // config.num_attention_heads
    ours = gguf_convert.llama3_rope_factors(head_dim, ROPE_PARAMETERS["rope_theta"], ROPE_PARAMETERS)
    np.testing.assert_allclose(np.asarray(rope.data, dtype=np.float64), ours, rtol=0, atol=1e-6)
    # transformers divides each default inverse frequency by its factor; llama.cpp divides by rope_freqs.
    inv_freq, _ = ROPE_INIT_FUNCTIONS["llama3"](config, torch.device("cpu"))
    default = 1.0 / (ROPE_PARAMETERS["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    np.testing.assert_allclose(np.asarray(rope.data, dtype=np.float64), (default / inv_freq.double()).numpy(),
                               rtol=0, atol=1e-6)
    assert {1.0, 8.0} <= set(ours.tolist()) and len(set(ours.tolist())) == 3  # all three bands are exercised


@pytest.mark.parametrize("outtype", ["bf16", "q8_0"])
def test_other_outtypes_pass_their_gate(outtype, llama_run, tmp_path):
    _, _, merged, _ = llama_run
    out = tmp_path / f"m-{outtype}.gguf"
    gguf_convert.convert(merged.merged_dir, out, outtype)
    parity = verify_gguf(merged.merged_dir, out, threads=1)
    assert not export.gate(parity, outtype, None, None), parity


def _swap_two_tokens(original):
    """A converter tokenizer whose token list has " Date" and " John" swapped: same vocabulary, wrong ids."""
    def swapped(model_dir: Path, n_vocab: int):
        tok, tokens, types, pre, add_bos = original(model_dir, n_vocab)
        a, b = tok.convert_tokens_to_ids(["ĠDate", "ĠJohn"])
        tokens = list(tokens)
        tokens[a], tokens[b] = tokens[b], tokens[a]
        return tok, tokens, types, pre, add_bos
    return swapped


@pytest.mark.parametrize("defect, reason", [
    ("qk_permutation", "top-1 agreement"),
    ("rope_freqs", "top-1 agreement"),
    ("vocabulary", "tokenizes the prompts differently"),
])
def test_gate_rejects_a_broken_export(defect, reason, llama_run, tmp_path, monkeypatch):
    _, _, merged, _ = llama_run
    if defect == "qk_permutation":
        monkeypatch.setattr(gguf_convert, "permute_qk", lambda w, *_: w)
    elif defect == "rope_freqs":
        monkeypatch.setattr(gguf_convert, "llama3_rope_factors", lambda head_dim, *_: np.ones(head_dim // 2, np.float32))
    else:
        monkeypatch.setattr(gguf_convert, "_tokenizer", _swap_two_tokens(gguf_convert._tokenizer))
    out = tmp_path / "broken-f16.gguf"
    gguf_convert.convert(merged.merged_dir, out, "f16")
    parity = verify_gguf(merged.merged_dir, out, threads=1)
    failed = export.gate(parity, "f16", None, None)
    assert any(reason in f for f in failed), (failed, parity)


def test_llamacpp_tokenizes_as_hf(llama_run, server):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_run[2].merged_dir)
    for text in TOKENIZE_TEXTS:
        assert llamacpp.tokenize(server.url, text) == tok(text, add_special_tokens=False)["input_ids"], text


def test_llamacpp_serves_the_training_prompt(llama_run, server):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_run[2].merged_dir)
    messages = request_messages("Female", "CARDIOLOGY", True)
    prompt = llamacpp._request(server.url + "/apply-template", {"messages": messages})["prompt"]
    # llama.cpp leaves BOS out of the text: it adds it when it tokenizes.
    assert tok.bos_token + prompt == tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_generate_request_path_and_stop_on_eot(llama_run, server, tmp_path):
    config, _, _, exported = llama_run
    fmt = serve.write_modelfile(config, exported, tmp_path / "Modelfile")
    assert gguf_adds_bos(exported.gguf) and fmt.name == "llama3" and fmt.stops == ("<|eot_id|>",)
    assert fmt.template.startswith("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                                   "2023\nToday Date: 26 Jul 2024\n\n{{ .System }}<|eot_id|>")
    messages = request_messages("Female", "CARDIOLOGY", True)
    gen = server.chat(messages, max_tokens=8, temperature=0.7, top_p=0.9, seed=3, stop=fmt.stops)
    assert 0 < gen.tokens <= 8 and "<|eot_id|>" not in gen.text

    # A random model seldom picks <|eot_id|>; a logit bias makes it likely, so that the answer ends on the
    # GGUF's end-of-turn token: a stop, with the token kept out of the text.
    out = llamacpp._request(server.url + "/v1/chat/completions", {
        "messages": messages, "max_tokens": 64, "temperature": 1.0, "seed": 3, "logit_bias": {str(EOT): 12.0}})
    choice = out["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert out["usage"]["completion_tokens"] < 64 and "<|eot_id|>" not in choice["message"]["content"], out
