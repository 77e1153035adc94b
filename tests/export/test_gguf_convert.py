"""Converter units on a tiny random Llama made here (2 layers, GQA, Llama 3 rope scaling)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medgen.core.errors import ExportError
from medgen.export.gguf_convert import convert, llama3_rope_factors, permute_qk

ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64, "rope_theta": 500000.0}


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, repo_root):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from medgen.model.loading import resolve_base

    tok = AutoTokenizer.from_pretrained(resolve_base("embedded"))  # only its tokenizer: no training needed
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      rope_parameters=dict(ROPE), tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    d = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d, model, tok


@pytest.fixture(scope="module")
def converted(tiny_llama, tmp_path_factory):
    import gguf

    d, _, _ = tiny_llama
    out = tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf"
    summary = convert(d, out, "f16")
    return summary, gguf.GGUFReader(out)


@pytest.mark.parametrize(
    "key, expected",
    [
        ("general.architecture", "llama"),
        ("llama.block_count", 2),
        ("llama.embedding_length", 64),
        ("llama.feed_forward_length", 128),
        ("llama.attention.head_count", 4),
        ("llama.attention.head_count_kv", 2),  # grouped-query attention
        ("llama.rope.dimension_count", 16),
        ("llama.context_length", 256),
        ("llama.rope.freq_base", 500000.0),
        ("tokenizer.ggml.model", "gpt2"),
        ("tokenizer.ggml.pre", "smollm"),
        ("tokenizer.ggml.add_bos_token", False),
        ("general.file_type", 1),  # MOSTLY_F16
    ],
)
def test_metadata(converted, key, expected):
    _, reader = converted
    value = reader.fields[key].contents()
    assert (pytest.approx(value) if isinstance(expected, float) else value) == expected


def test_tokenizer_fields(converted, tiny_llama):
    _, reader = converted
    _, _, tok = tiny_llama
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert len(tokens) == len(tok) == len(types)
    assert tokens[tok.eos_token_id] == tok.eos_token and types[tok.eos_token_id] == 3  # CONTROL
    assert reader.fields["tokenizer.ggml.eos_token_id"].contents() == tok.eos_token_id
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    assert len(merges) > 40000 and all(" " in m for m in merges[:10])
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()


def test_tensor_names_shapes_and_types(converted, tiny_llama):
    _, reader = converted
    tensors = {t.name: t for t in reader.tensors}
    expected = {"token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"}
    for i in range(2):
        expected |= {f"blk.{i}.{n}.weight" for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                      "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
    assert set(tensors) == expected
    # GGUF lists dims fastest-first: [in, out] for an HF [out, in] weight.
    assert list(tensors["blk.0.attn_k.weight"].shape) == [64, 32]
    assert list(tensors["blk.0.ffn_down.weight"].shape) == [128, 64]
    assert tensors["blk.0.attn_q.weight"].tensor_type.name == "F16"
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"


def test_qk_weights_are_permuted_and_v_is_not(converted, tiny_llama):
    _, reader = converted
    _, model, _ = tiny_llama
    tensors = {t.name: t for t in reader.tensors}
    attn = model.model.layers[0].self_attn
    q = attn.q_proj.weight.detach().numpy()
    k = attn.k_proj.weight.detach().numpy()
    got_q = np.asarray(tensors["blk.0.attn_q.weight"].data, dtype=np.float32).reshape(q.shape)
    got_k = np.asarray(tensors["blk.0.attn_k.weight"].data, dtype=np.float32).reshape(k.shape)
    np.testing.assert_allclose(got_q, permute_qk(q, 4, 4), atol=1e-3)
    np.testing.assert_allclose(got_k, permute_qk(k, 4, 2), atol=1e-3)
    assert not np.allclose(got_q, q, atol=1e-3)
    got_v = np.asarray(tensors["blk.0.attn_v.weight"].data, dtype=np.float32)
    np.testing.assert_allclose(got_v.reshape(32, 64), attn.v_proj.weight.detach().numpy(), atol=1e-3)


def test_llama3_rope_factors(converted):
    _, reader = converted
    tensors = {t.name: t for t in reader.tensors}
    factors = np.asarray(tensors["rope_freqs.weight"].data)
    np.testing.assert_allclose(factors, llama3_rope_factors(16, 500000.0, ROPE))
    assert factors[0] == 1.0 and factors[-1] == 8.0  # high frequencies kept, low ones scaled by `factor`


@pytest.mark.parametrize(
    "head_dim, expect_first, expect_last",
    [(128, 1.0, 8.0), (64, 1.0, 8.0)],
)
def test_llama3_factors_table(head_dim, expect_first, expect_last):
    f = llama3_rope_factors(head_dim, 500000.0, {"factor": 8.0, "original_max_position_embeddings": 8192})
    assert f.shape == (head_dim // 2,) and f[0] == expect_first and f[-1] == expect_last
    assert np.all(np.diff(f) >= 0)


def test_llama_cpp_runs_the_converted_model(tiny_llama, converted):
    from medgen.export.logits import verify_gguf

    d, _, tok = tiny_llama
    ids = tok("Name: John Doe  Unit No: 1234567", add_special_tokens=False)["input_ids"]
    check = verify_gguf(d, Path(converted[0]["path"]), prompts=[ids])
    assert check["tokenizer_agrees"] and check["top1_agreement"] == 1.0, check
    assert check["kl_mean"] < 1e-3, check


def test_unsupported_architecture_is_refused(tiny_llama, tmp_path):
    import shutil

    d, _, _ = tiny_llama
    other = tmp_path / "gpt2ish"
    shutil.copytree(d, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["architectures"] = ["GPT2LMHeadModel"]
    (other / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "x.gguf"
    with pytest.raises(ExportError, match="GPT2LMHeadModel.*not supported"):
        convert(other, out)
    assert not out.exists() and not list(tmp_path.glob(".x.gguf*"))
