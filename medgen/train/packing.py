"""How a training step is laid out: the row length from the data, rows x accumulation from a memory budget.

TRL packs (`SFTConfig(packing=True, packing_strategy="bfd")`): whole examples go, longest first, into the
row with the least room that still holds them (best-fit decreasing), and its padding-free collator
flattens a micro-batch into one sequence whose position ids restart at 0 for every example. From those
position ids transformers builds a block-diagonal causal mask for sdpa and eager attention
(`masking_utils.find_packed_sequence_indices`, used when no attention mask is passed), and flash-attention
gets the example boundaries (`cu_seq_lens_*`) for its varlen kernel; so no example attends to another, and
the collator drops the label of each example's first token, so none predicts the next example either.
tests/train/test_packing.py proves both on the embedded model. This module picks the numbers TRL is given; it
imports no torch, so the planning is testable on its own.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from medgen.core.config import TrainConfig
from medgen.core.errors import ConfigError

log = logging.getLogger(__name__)

GIB = 2**30
ROW_MULTIPLE = 64  # rows are a multiple of 64 tokens: kernels tile by 64, and `auto` lengths stay stable
# Bytes per base weight in NF4: 4 bits plus one absmax per 64 weights (double quantization shrinks that
# further; 0.55 keeps the single-quant figure as the bound).
NF4_BYTES = 0.55
# LoRA weights train in float32: the weight, its gradient and Adam's two moments.
LORA_STATE_BYTES = 16
# CUDA context, cuBLAS workspaces and allocator slack; on CPU the interpreter, torch and the tokenizer.
RESERVED_BYTES = 1.5 * GIB
# Saved activations are counted by hand below; the transient gradients of the layer being recomputed,
# autograd's temporaries and allocator fragmentation come on top. 2.0 matches the measurement on an
# H100 (8B shape, QLoRA r=64, checkpointing, fused cross-entropy: 4 x 1024 tokens peaked at 13.7 GiB).
ACTIVATION_SLACK = 2.0


@dataclass(frozen=True)
class Shape:
    """What the memory of a LoRA step depends on in a decoder-only transformer."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    max_positions: int
    tied_embeddings: bool

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def params(self) -> int:
        h, i = self.hidden, self.intermediate
        layer = h * (2 * h + 2 * self.kv_dim) + 3 * h * i + 2 * h
        return self.layers * layer + self.embedding_params + h

    def projection_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each projection LoRA can target (Llama names)."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def shape_of(model_config) -> Shape:
    """The shape of a transformers model config (its text config for multimodal ones)."""
    c = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    return Shape(layers=c.num_hidden_layers, hidden=c.hidden_size, intermediate=c.intermediate_size,
                 heads=c.num_attention_heads, kv_heads=getattr(c, "num_key_value_heads", None) or c.num_attention_heads,
                 vocab=c.vocab_size, max_positions=c.max_position_embeddings,
                 tied_embeddings=bool(getattr(c, "tie_word_embeddings", False)))


def lora_params(shape: Shape, r: int, targets: list[str]) -> int:
    dims = shape.projection_dims()
    return shape.layers * sum(r * (dims[t][0] + dims[t][1]) for t in targets if t in dims)


def static_bytes(shape: Shape, *, quantized: bool, weight_bytes: float, lora_r: int, targets: list[str]) -> float:
    """Weights, LoRA optimizer state and the fixed reserve: memory that does not grow with tokens."""
    body = shape.params - shape.embedding_params
    base = body * NF4_BYTES + shape.embedding_params * 2 if quantized else shape.params * weight_bytes
    return base + lora_params(shape, lora_r, targets) * LORA_STATE_BYTES + RESERVED_BYTES


def layer_activation_bytes(shape: Shape, act_bytes: int, lora_dropout: bool) -> float:
    """Bytes one layer keeps per token for the backward pass of a LoRA step (frozen base weights).

    Both RMSNorms keep their float32 input and give a normed copy; attention keeps q, k, v and its output;
    the MLP keeps gate, up and their product's inputs. With LoRA dropout each adapter keeps its own dropped
    copy of its input and a mask.
    """
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    norms = 2 * (4 * h + act_bytes * h)
    attention = act_bytes * (3 * h + 2 * kv)
    mlp = act_bytes * 4 * i
    dropout = (act_bytes + 1) * (6 * h + i) if lora_dropout else 0
    return norms + attention + mlp + dropout


def activation_bytes_per_token(shape: Shape, *, checkpointing: bool, act_bytes: int, lora_dropout: bool) -> float:
    """With checkpointing only each layer's input is kept, and one layer is recomputed at a time."""
    layer = layer_activation_bytes(shape, act_bytes, lora_dropout)
    kept = shape.layers * act_bytes * shape.hidden + layer if checkpointing else shape.layers * layer
    return kept * ACTIVATION_SLACK


def p99(lengths: list[int]) -> int:
    """The 99th percentile (nearest rank) of token lengths."""
    if not lengths:
        raise ValueError("p99 of no lengths")
    s = sorted(lengths)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


def round_up(n: int, multiple: int = ROW_MULTIPLE) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class Memory:
    """The budget and how a micro-batch spends it."""

    budget: float
    static: float
    per_token: dict[bool, float]  # checkpointing -> activation bytes per token
    dense_mask: bool  # sdpa/eager attention get a (tokens x tokens) boolean mask for a packed micro-batch

    def peak(self, tokens: int, checkpointing: bool) -> float:
        mask = tokens * tokens if self.dense_mask else 0
        return self.static + tokens * self.per_token[checkpointing] + mask

    def fits(self, tokens: int, checkpointing: bool) -> bool:
        return self.peak(tokens, checkpointing) <= self.budget


def memory_model(tc: TrainConfig, shape: Shape, *, budget: float, quantized: bool, weight_bytes: float,
                 act_bytes: int, dense_mask: bool) -> Memory:
    static = static_bytes(shape, quantized=quantized, weight_bytes=weight_bytes, lora_r=tc.lora.r,
                          targets=tc.lora.target_modules)
    per_token = {ck: activation_bytes_per_token(shape, checkpointing=ck, act_bytes=act_bytes,
                                                lora_dropout=tc.lora.dropout > 0) for ck in (True, False)}
    return Memory(budget=budget, static=static, per_token=per_token, dense_mask=dense_mask)


@dataclass(frozen=True)
class Layout:
    """What one optimizer step is made of."""

    max_seq_length: int
    examples: int  # training examples (before packing)
    truncated: int  # training examples longer than max_seq_length, cut at the end
    rows: int  # rows (packed) or examples (padded) per micro-batch
    grad_accum: int
    gradient_checkpointing: bool
    estimated_peak_gb: float
    budget_gb: float

    @property
    def tokens_per_step(self) -> int:
        """Token capacity of a step (packed rows are nearly full; padded batches hold less)."""
        return self.rows * self.grad_accum * self.max_seq_length


def longest_row(mem: Memory, cap: int) -> int:
    """The longest row (a multiple of 64, at most `cap`) one micro-batch of one row may take, checkpointed."""
    n = cap // ROW_MULTIPLE
    while n and not mem.fits(n * ROW_MULTIPLE, True):
        n -= 1
    return n * ROW_MULTIPLE


def plan_layout(tc: TrainConfig, shape: Shape, lengths: list[int], mem: Memory, one_row: bool = False) -> Layout:
    """Row length, rows per micro-batch, accumulation and checkpointing for this config, data and budget.

    `one_row` puts one row in each micro-batch and accumulates the rest (the same tokens per step): for
    packed rows on CPU, where sdpa attends over the whole flattened micro-batch through its block mask.
    """
    if not mem.fits(ROW_MULTIPLE, True):
        raise ConfigError([f"train.memory_budget_gb: the weights and optimizer state alone need about "
                           f"{mem.static / GIB:.1f} GiB, more than the {mem.budget / GIB:.1f} GiB budget; raise it, "
                           "lower train.lora.r, or quantize (train.quantization=nf4)"])
    if tc.max_seq_length == "auto":
        want = min(round_up(p99(lengths)), shape.max_positions)
        max_len = min(want, longest_row(mem, want))
        if max_len < want:
            log.warning("train.max_seq_length=auto: the p99 length rounds to %d tokens, but a row of more than %d "
                        "does not fit the %.1f GiB budget", want, max_len, mem.budget / GIB)
    else:
        max_len = tc.max_seq_length
    truncated = sum(n > max_len for n in lengths)
    if truncated:
        log.warning("train: %d of %d training examples are longer than max_seq_length=%d tokens and are cut at "
                    "the end (they never show the model how a record ends)", truncated, len(lengths), max_len)
    if tc.tokens_per_step is None:
        rows, accum = tc.batch_size, tc.grad_accum
    else:
        wanted = max(1, math.ceil(tc.tokens_per_step / max_len))
        most = max((r for r in range(1, wanted + 1) if mem.fits(r * max_len, True)), default=1)
        accum = math.ceil(wanted / most)
        rows = math.ceil(wanted / accum)  # as even as the accumulation allows: no step overshoots by a row
    if one_row and rows > 1:
        rows, accum = 1, rows * accum
    tokens = rows * max_len
    checkpointing = (not mem.fits(tokens, False) if tc.gradient_checkpointing == "auto"
                     else tc.gradient_checkpointing)
    return Layout(max_seq_length=max_len, examples=len(lengths), truncated=truncated, rows=rows, grad_accum=accum,
                  gradient_checkpointing=checkpointing,
                  estimated_peak_gb=round(mem.peak(tokens, checkpointing) / GIB, 2), budget_gb=round(mem.budget / GIB, 2))


def split_across(lay: Layout, world: int) -> Layout:
    """The same step over `world` data-parallel ranks: each takes 1/world of the step's rows (micro-batches of at
    most the planned size, accumulated), so the rows per optimizer step stay global (train.tokens_per_step). A
    step of fewer rows than ranks, or not divisible among them, is rounded up to the next multiple, with a
    warning."""
    if world == 1:
        return lay
    total = lay.rows * lay.grad_accum
    per_rank = math.ceil(total / world)
    if per_rank * world != total:
        log.warning("train: %d rows per step do not split evenly over %d ranks; each takes %d, so a step holds %d",
                    total, world, per_rank, per_rank * world)
    # The fewest micro-batches of at most the planned rows that hold exactly per_rank rows.
    accum = next(a for a in range(math.ceil(per_rank / lay.rows), per_rank + 1) if per_rank % a == 0)
    return replace(lay, rows=per_rank // accum, grad_accum=accum)
