"""Packing without cross-talk, on the embedded model, and the planner that lays out a step.

The equivalence tests run the real path: the SFTTrainer that `train.build_trainer` makes, its packed
dataset and collator, and its own loss. Sequences stay short so the file runs in seconds.
"""

import math

import pytest

from medgen.core.config import load_config
from medgen.core.constants import INSTRUCTION
from medgen.core.errors import ConfigError
from medgen.data import prepare
from medgen.train import packing
from medgen.train import stage as train
from medgen.train.packing import GIB, Memory, Shape

from conftest import tiny_config

# Rows long enough for several tiny-config examples (each ~600 tokens), so a packed row holds 3 of them.
PACKED = ("train.max_seq_length=2048", "train.batch_size=1")


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory, repo_root):
    run_dir = tmp_path_factory.mktemp("packed")
    cfg = tiny_config(run_dir, *PACKED)
    prepare.run(cfg)
    return cfg, train.build_trainer(cfg, run_dir / "train")


def segments(position_ids):
    """(start, end) of each example in a flattened padding-free row: position ids restart at 0."""
    starts = (position_ids == 0).nonzero().flatten().tolist() + [len(position_ids)]
    return list(zip(starts[:-1], starts[1:]))


def test_packed_rows_hold_several_whole_examples(packed_run):
    cfg, setup = packed_run
    ds = setup.trainer.train_dataset
    assert setup.layout.examples == 9 and setup.layout.truncated == 0
    assert len(ds) < setup.layout.examples, "examples were not packed"
    assert sum(len(r["seq_lengths"]) for r in ds) == setup.layout.examples
    assert all(len(r["input_ids"]) == sum(r["seq_lengths"]) <= 2048 for r in ds)


def test_packed_loss_equals_unpacked_loss(packed_run):
    import torch
    from torch.nn.utils.rnn import pad_sequence

    _, setup = packed_run
    trainer = setup.trainer
    model = trainer.model.eval()
    row = trainer.train_dataset[0]
    assert len(row["seq_lengths"]) >= 2
    # The row's examples, each cut to its first 96 tokens (prompt and the start of the record) to keep the
    # forward passes cheap, packed again by the trainer's own collator.
    starts = [sum(row["seq_lengths"][:k]) for k in range(len(row["seq_lengths"]))]
    cut = [{"input_ids": row["input_ids"][a:a + 96], "labels": row["labels"][a:a + 96]} for a in starts]
    batch = trainer.data_collator([{"input_ids": sum((c["input_ids"] for c in cut), []),
                                    "labels": sum((c["labels"] for c in cut), []),
                                    "seq_lengths": [len(c["input_ids"]) for c in cut]}])
    assert "attention_mask" not in batch, "padding-free batches carry position ids, not an attention mask"
    parts = segments(batch["position_ids"][0])
    assert len(parts) == len(cut)
    ids = [batch["input_ids"][0, a:b] for a, b in parts]
    labels = [batch["labels"][0, a:b] for a, b in parts]
    assert all((x != -100).sum() > 20 for x in labels), "each example keeps part of its completion"
    unpacked = {
        "input_ids": pad_sequence(ids, batch_first=True, padding_value=setup.tokenizer.pad_token_id),
        "attention_mask": pad_sequence([torch.ones_like(x) for x in ids], batch_first=True, padding_value=0),
        "labels": pad_sequence(labels, batch_first=True, padding_value=-100),
    }
    with torch.no_grad():
        packed_loss = trainer.compute_loss(model, dict(batch)).item()
        unpacked_loss = trainer.compute_loss(model, unpacked).item()
    assert math.isfinite(packed_loss) and packed_loss > 0
    assert abs(packed_loss - unpacked_loss) <= 1e-4 * abs(unpacked_loss), (packed_loss, unpacked_loss)


def test_assistant_only_mask_survives_packing(packed_run, tmp_path):
    cfg, setup = packed_run
    tok = setup.tokenizer
    padded = train.build_trainer(cfg.model_copy(update={"train": cfg.train.model_copy(update={"packing": False})}),
                                 tmp_path / "train").trainer.train_dataset
    by_ids = {tuple(r["input_ids"]): r["labels"] for r in padded}
    batch = next(iter(setup.trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    seen = 0
    for a, b in segments(batch["position_ids"][0]):
        example_ids, example_labels = ids[a:b].tolist(), labels[a:b].tolist()
        # The same labels as the unpacked example, but for its first token: the collator masks it, so the
        # previous example's last token is never trained to predict it.
        expected = by_ids[tuple(example_ids)]
        assert example_labels[0] == -100 and example_labels[1:] == expected[1:]
        keep = [i for i, label in enumerate(example_labels) if label != -100]
        assert keep == list(range(keep[0], len(example_ids))), "the loss covers one contiguous completion"
        prompt, completion = tok.decode(example_ids[:keep[0]]), tok.decode([example_ids[i] for i in keep])
        assert INSTRUCTION in prompt and prompt.endswith("<|im_start|>assistant\n")
        assert completion.startswith("Name:") and completion.rstrip().endswith("<|im_end|>")
        seen += 1
    assert seen >= 2


ATTENTION = [
    pytest.param("sdpa", "cpu", id="sdpa"),
    pytest.param("eager", "cpu", id="eager"),
    pytest.param("flash_attention_2", "cuda", id="flash-varlen", marks=pytest.mark.cuda),
]


@pytest.mark.parametrize("attention, device", ATTENTION)
def test_changing_example_b_leaves_example_a_unchanged(repo_root, attention, device):
    """A packed after B: B comes first, so only the packed-sequence masking keeps A from seeing it."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from medgen.model.loading import load_causal_lm, load_tokenizer, resolve_base

    if attention == "flash_attention_2":
        pytest.importorskip("flash_attn", reason="flash-attn is not installed")
    base = resolve_base("embedded")
    tok = load_tokenizer(base)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = load_causal_lm(base, dtype=dtype, attn_implementation=attention).to(device).eval()
    a, b, b2 = (tok(t, add_special_tokens=False)["input_ids"] for t in (
        "Name: Jane Roe  Unit No: 4417  Service: MEDICINE", "Allergies: penicillin",
        "Brief Hospital Course: admitted with chest pain, ruled out for MI"))
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)

    def logits_of_a(first, position_ids=None):
        batch = collate([{"input_ids": first + a, "seq_lengths": [len(first), len(a)]}])
        batch.pop("labels")
        if position_ids is not None:
            batch = {"input_ids": batch["input_ids"], "position_ids": position_ids}
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        # transformers derives the packed mask only without a KV cache (as in training: train.py and TRL set
        # use_cache=False); with one it falls back to plain causal attention across the whole row.
        with torch.no_grad():
            return model(**batch, use_cache=False).logits[0, len(first):].float().cpu()

    with torch.no_grad():
        alone = model(input_ids=torch.tensor([a], device=device)).logits[0].float().cpu()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    after_b, after_b2 = logits_of_a(b), logits_of_a(b2)
    assert torch.allclose(after_b, after_b2, atol=tol), (after_b - after_b2).abs().max()
    assert torch.allclose(after_b, alone, atol=tol), (after_b - alone).abs().max()
    # The control: one causal sequence (positions that do not restart) lets A attend to B, and it shows.
    run_on = torch.arange(len(b) + len(a))[None]
    assert not torch.allclose(logits_of_a(b, run_on), alone, atol=tol)


# Best-fit decreasing as TRL packs (trl.data_utils.pack_dataset, strategy "bfd"): lengths in, rows out.
BFD_CASES = [
    # Each goes to the fullest row that still holds it: 4 to the row with 5 free, 2 to the row with 2 free,
    # and 1 to the row with 1 free (first-fit decreasing would put it beside the 7).
    ([7, 1, 8, 5, 4, 2], 10, [[8, 2], [7], [5, 4, 1]]),
    # Longest first, exact fits close a row.
    ([1, 2, 3, 4, 5], 6, [[5, 1], [4, 2], [3]]),
    ([3, 3, 3, 3], 6, [[3, 3], [3, 3]]),
    # Whole examples are never split across rows, even when that leaves room.
    ([6, 6, 6], 10, [[6], [6], [6]]),
    # An example longer than a row is cut to the row (the only one that is), then packed like the rest.
    ([12, 3, 7], 10, [[10], [7, 3]]),
    # One example: one row.
    ([4], 10, [[4]]),
]


@pytest.mark.parametrize("lengths, capacity, rows", BFD_CASES)
def test_best_fit_decreasing(lengths, capacity, rows):
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    # Example k is the ids 1000k, 1000k+1, ...: every packed segment must be one example's prefix, in order.
    examples = [list(range(1000 * k, 1000 * k + n)) for k, n in enumerate(lengths)]
    packed = pack_dataset(Dataset.from_dict({"input_ids": examples, "labels": examples}), capacity, "bfd")
    assert [r["seq_lengths"] for r in packed] == rows
    for row in packed:
        assert len(row["input_ids"]) == sum(row["seq_lengths"]) <= capacity and row["labels"] == row["input_ids"]
        start = 0
        for n in row["seq_lengths"]:
            segment = row["input_ids"][start:start + n]
            assert segment == examples[segment[0] // 1000][:n]
            start += n


SMALL = Shape(layers=2, hidden=64, intermediate=128, heads=4, kv_heads=2, vocab=1000, max_positions=4096,
              tied_embeddings=True)


def memory(budget_tokens: float, static: float = 1.0, ckpt: float = 1.0, no_ckpt: float = 4.0) -> Memory:
    """A budget counted in tokens: `static` tokens' worth of weights, then per-token activations."""
    return Memory(budget=static + budget_tokens, static=static, per_token={True: ckpt, False: no_ckpt},
                  dense_mask=False)


LAYOUT_CASES = [
    # (overrides, lengths, budget in checkpointed tokens, expected layout fields)
    # auto: the p99 of the lengths rounded up to 64; one example is longer and is counted as cut.
    (["train.max_seq_length=auto", "train.batch_size=2"], [500] * 99 + [900], 10_000,
     dict(max_seq_length=512, truncated=1, rows=2, grad_accum=1)),
    # auto, but a row of 512 does not fit the budget: the longest that does.
    (["train.max_seq_length=auto"], [500] * 100, 300, dict(max_seq_length=256, truncated=100)),
    # A fixed length is taken as given.
    (["train.max_seq_length=1024"], [500, 2000], 10_000, dict(max_seq_length=1024, truncated=1)),
    # tokens_per_step: 8 rows wanted, 3 fit a micro-batch -> 3 accumulations of 3 rows (the fewest steps
    # that fit, as even as possible).
    (["train.max_seq_length=256", "train.tokens_per_step=2048"], [200] * 10, 800, dict(rows=3, grad_accum=3)),
    # ... and when all of them fit, one micro-batch.
    (["train.max_seq_length=256", "train.tokens_per_step=2048"], [200] * 10, 10_000, dict(rows=8, grad_accum=1)),
    # Without tokens_per_step, batch_size x grad_accum as configured.
    (["train.max_seq_length=256", "train.batch_size=3", "train.grad_accum=5"], [200], 10_000,
     dict(rows=3, grad_accum=5)),
    # Checkpointing auto: off when the micro-batch fits without it (4 bytes a token), on when it does not.
    (["train.max_seq_length=256", "train.batch_size=2", "train.gradient_checkpointing=auto"], [200], 2048 * 4,
     dict(gradient_checkpointing=False)),
    (["train.max_seq_length=256", "train.batch_size=2", "train.gradient_checkpointing=auto"], [200], 2000,
     dict(gradient_checkpointing=True)),
    # An explicit setting is kept.
    (["train.max_seq_length=256", "train.gradient_checkpointing=true"], [200], 10**6,
     dict(gradient_checkpointing=True)),
]
# One row per micro-batch (packed on CPU): the other rows are accumulated, the same tokens per step.
ONE_ROW_CASES = [
    (["train.max_seq_length=256", "train.batch_size=3", "train.grad_accum=2"], [200], 10_000,
     dict(rows=1, grad_accum=6)),
    (["train.max_seq_length=256", "train.tokens_per_step=2048"], [200] * 10, 10_000, dict(rows=1, grad_accum=8)),
    (["train.max_seq_length=256", "train.batch_size=1"], [200], 10_000, dict(rows=1, grad_accum=1)),
]


@pytest.mark.parametrize("overrides, lengths, budget, expected, one_row",
                         [(*case, False) for case in LAYOUT_CASES] + [(*case, True) for case in ONE_ROW_CASES])
def test_plan_layout(repo_root, overrides, lengths, budget, expected, one_row):
    tc = load_config("configs/default.yaml", overrides).train
    got = packing.plan_layout(tc, SMALL, lengths, memory(budget), one_row=one_row)
    assert {k: getattr(got, k) for k in expected} == expected
    if "train.tokens_per_step=2048" in overrides:
        assert got.tokens_per_step >= 2048


def test_budget_below_the_weights_is_a_config_error(repo_root):
    tc = load_config("configs/default.yaml").train
    with pytest.raises(ConfigError, match="memory_budget_gb"):
        packing.plan_layout(tc, SMALL, [100], Memory(budget=10, static=100, per_token={True: 1, False: 2},
                                                     dense_mask=False))


def test_p99_is_the_nearest_rank():
    assert packing.p99(list(range(1, 101))) == 99
    assert packing.p99([7]) == 7
    assert packing.p99([5] * 199 + [1000]) == 5  # one outlier in 200 is past the 99th percentile


def test_shape_counts_llama_parameters():
    from transformers import LlamaConfig

    llama8b = LlamaConfig(vocab_size=128_256, hidden_size=4096, intermediate_size=14_336, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False)
    assert packing.shape_of(llama8b).params == 8_030_261_248  # Llama 3.1 8B's published count


def test_8b_config_keeps_full_records_whole_on_a_24gb_card(repo_root, tmp_path):
    """The production config on its card: full records (measured with the embedded tokenizer, which spends
    more tokens on them than Llama 3's) are no longer cut, and the planned step fits 22 GiB."""
    from medgen.data.dataset import token_lengths
    from medgen.model.loading import load_tokenizer, resolve_base

    prod = load_config("configs/llama31-8b-qlora.yaml")
    assert prod.train.max_seq_length == "auto" and prod.train.packing
    # prepare's length report wants a number; the lengths themselves do not depend on it.
    cfg = load_config("configs/llama31-8b-qlora.yaml", [f"run_dir={tmp_path}", "model.base=embedded",
                                                        "data.n_records=60", "train.max_seq_length=1024"])
    prepare.run(cfg)
    lengths = token_lengths(load_tokenizer(resolve_base("embedded")),
                            {"train": train.read_rows(cfg.stage_dir("prepare"), "train")})["train"]
    assert sum(n > 1024 for n in lengths) > 0.5 * len(lengths), "the seed's 1024 cut most full records"
    shape = Shape(layers=32, hidden=4096, intermediate=14_336, heads=32, kv_heads=8, vocab=128_256,
                  max_positions=131_072, tied_embeddings=False)
    mem = packing.memory_model(prod.train, shape, budget=prod.train.memory_budget_gb * GIB, quantized=True,
                               weight_bytes=2, act_bytes=2, dense_mask=False)
    lay = packing.plan_layout(prod.train, shape, lengths, mem)
    assert lay.max_seq_length >= 2048 and lay.truncated <= 0.01 * len(lengths) + 1
    assert lay.gradient_checkpointing and lay.estimated_peak_gb <= prod.train.memory_budget_gb
    assert lay.tokens_per_step >= prod.train.tokens_per_step
