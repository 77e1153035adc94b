"""train: LoRA fine-tuning with TRL's SFTTrainer; QLoRA (bitsandbytes NF4) on CUDA, plain LoRA on CPU.

One code path: quantization only changes how the base is loaded. Loss is on the assistant turn only
(prompt-completion data in conversational form, rendered by the base model's chat template).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from medgen.config import PipelineConfig
from medgen.constants import ADAPTER_DIR, CHECKPOINT_DIR, LOSS_PLOT_FILE, SPLIT_FILE
from medgen.errors import ConfigError, LadderExhausted, TrainOOM
from medgen.io import atomic_dir, ensure_dir, owner_only, peak_rss_mb
from medgen.modeling import load_causal_lm, load_tokenizer, resolve_base
from medgen.plots import figure
from medgen.prompts import chat_messages
from medgen.provenance import fingerprint
from medgen.results import PrepareResult, TrainResult

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """What the config resolves to on this machine."""

    device: str
    quantize: bool
    bf16: bool
    optimizer: str


def plan(config: PipelineConfig) -> Plan:
    import torch

    tc = config.train
    cuda = torch.cuda.is_available()
    if tc.device == "cuda" and not cuda:
        raise ConfigError(["train.device: 'cuda' requested but torch sees no GPU; use 'auto' or 'cpu'"])
    device = "cuda" if tc.device == "cuda" or (tc.device == "auto" and cuda) else "cpu"
    quantize = tc.quantization == "nf4" or (tc.quantization == "auto" and device == "cuda")
    if quantize and device == "cpu":
        log.warning("train.quantization=nf4 on CPU: bitsandbytes runs it, but only as a slow smoke test")
    bf16 = tc.precision == "bf16" and (device == "cpu" or torch.cuda.is_bf16_supported())
    optimizer = tc.optimizer
    if optimizer == "auto":
        optimizer = "paged_adamw_8bit" if quantize and device == "cuda" else "adamw_torch"
    return Plan(device, quantize, bf16, optimizer)


def to_conversation(row: dict) -> dict:
    """Alpaca row -> prompt (system = instruction, user = input) and completion (assistant = output)."""
    *prompt, completion = chat_messages(row["instruction"], row["input"], row["output"])
    return {"prompt": prompt, "completion": [completion]}


def load_split(prepare_dir: Path, split: str):
    from datasets import Dataset

    path = prepare_dir / SPLIT_FILE.format(split=split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run `medgen prepare` first")
    with path.open(encoding="utf-8") as f:
        rows = [to_conversation(json.loads(line)) for line in f if line.strip()]
    return Dataset.from_list(rows)


def _quantization_config(p: Plan, double_quant: bool):
    if not p.quantize:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=torch.bfloat16 if p.bf16 else torch.float32,
    )


def _load_model(config: PipelineConfig, base: str, p: Plan):
    import torch
    from peft import prepare_model_for_kbit_training

    qc = _quantization_config(p, config.train.double_quant)
    device_map = {"": 0} if p.device == "cuda" else None
    dtype = torch.bfloat16 if (p.bf16 and p.device == "cuda") else torch.float32
    model = load_causal_lm(base, dtype=dtype, device_map=device_map, quantization_config=qc)
    model.config.use_cache = False
    if qc is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.train.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model


def build_trainer(config: PipelineConfig, out_dir: Path, callbacks=()):
    """Model, data and SFTTrainer for the config's current rung; used by `run` and by tests."""
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    p = plan(config)
    tc = config.train
    base = resolve_base(config.model.base, config.model.cache_dir)
    tok = load_tokenizer(base)
    prepare_dir = config.stage_dir("prepare")
    train_ds, val_ds = load_split(prepare_dir, "train"), load_split(prepare_dir, "val")
    model = _load_model(config, base, p)
    args = SFTConfig(
        output_dir=str(out_dir / CHECKPOINT_DIR),
        max_length=tc.max_seq_length,
        per_device_train_batch_size=tc.batch_size,
        per_device_eval_batch_size=tc.batch_size,
        gradient_accumulation_steps=tc.grad_accum,
        learning_rate=tc.learning_rate,
        lr_scheduler_type=tc.lr_scheduler,
        warmup_steps=tc.warmup_ratio,
        max_steps=tc.max_steps,
        num_train_epochs=tc.epochs,
        eval_strategy="steps" if len(val_ds) else "no",
        eval_steps=tc.eval_steps,
        save_strategy="steps",
        save_steps=tc.save_steps,
        save_total_limit=tc.save_total_limit,
        logging_steps=tc.logging_steps,
        logging_first_step=True,
        gradient_checkpointing=tc.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=p.bf16,
        use_cpu=p.device == "cpu",
        optim=p.optimizer,
        report_to="none",
        seed=config.data.seed,
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    peft_config = LoraConfig(
        r=tc.lora.r, lora_alpha=tc.lora.alpha, lora_dropout=tc.lora.dropout,
        target_modules=list(tc.lora.target_modules), bias="none", task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds if len(val_ds) else None,
        processing_class=tok, peft_config=peft_config, callbacks=list(callbacks),
    )
    return trainer, tok, p, base


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def _plot_losses(history: list[dict], path: Path) -> None:
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    with figure(path, xlabel="step", ylabel="loss", title="medgen train loss") as ax:
        if train:
            ax.plot(*zip(*train), label="train")
        if val:
            ax.plot(*zip(*val), marker="o", label="val")


def _progress_callback():
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.bar = Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=state.max_steps, loss="")

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.bar.update(self.task, loss=f"loss {logs['loss']:.3f}")

        def on_train_end(self, args, state, control, **kw):
            self.bar.stop()

    return RichProgress()


def run(config: PipelineConfig, progress: bool = False) -> TrainResult:
    """Train one rung (config.train.lora.r, config.train.max_seq_length); CUDA OOM raises TrainOOM."""
    import torch

    rung = config.rung()
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    out_dir = ensure_dir(config.stage_dir("train"))
    t0 = time.perf_counter()
    with owner_only():
        callbacks = [_progress_callback()] if progress else []
        try:
            trainer, tok, p, base = build_trainer(config, out_dir, callbacks)
            if p.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            result = trainer.train()
            evaluated_last = any("eval_loss" in h and h.get("step") == trainer.state.global_step
                                 for h in trainer.state.log_history)
            metrics = trainer.evaluate() if trainer.eval_dataset is not None and not evaluated_last else {}
        except Exception as e:
            if _is_oom(e):
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise TrainOOM(rung, str(e).splitlines()[0]) from e
            raise
        adapter_dir = out_dir / ADAPTER_DIR
        with atomic_dir(adapter_dir) as tmp:
            trainer.model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
        history = trainer.state.log_history
        _plot_losses(history, out_dir / LOSS_PLOT_FILE)
        wall = time.perf_counter() - t0
        train_losses = [h["loss"] for h in history if "loss" in h]
        eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        runtime = result.metrics.get("train_runtime") or wall
        final_val = metrics.get("eval_loss", eval_losses[-1] if eval_losses else None)
        train_result = TrainResult(
            out_dir=out_dir, wall_s=round(wall, 2),
            **fingerprint({"model": config.model.model_dump(mode="json"), "train": config.train.model_dump(mode="json"),
                           "seed": config.data.seed}, {"prepare": prepared.fingerprint}),
            base=config.model.base, resolved_base=base, device=p.device,
            quantization="nf4" if p.quantize else "none", bf16=p.bf16, optimizer=p.optimizer, rung=rung,
            steps=trainer.state.global_step, epochs=round(trainer.state.epoch or 0, 3),
            train_examples=len(trainer.train_dataset),
            final_train_loss=train_losses[-1] if train_losses else None,
            mean_train_loss=result.metrics.get("train_loss"),
            final_val_loss=None if final_val is None or math.isnan(final_val) else final_val,
            train_losses=train_losses, val_losses=eval_losses, tokens_seen=tokens,
            tokens_per_s=round(tokens / runtime, 1) if runtime else None,
            peak_memory_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if p.device == "cuda"
            else round(peak_rss_mb(), 1),
            peak_memory_kind="cuda_allocated" if p.device == "cuda" else "process_rss",
            adapter_dir=adapter_dir, loss_plot=out_dir / LOSS_PLOT_FILE, checkpoints_dir=out_dir / CHECKPOINT_DIR,
        )
        train_result.write(config.to_yaml())
    return train_result


def walk_ladder(config: PipelineConfig, attempt: Callable[[PipelineConfig], T]) -> T:
    """Try each rung of the OOM ladder in order with `attempt(config_for_rung)`.

    Only TrainOOM moves down the ladder; any other error propagates as is. The caller chooses how an
    attempt runs (in-process, a Prefect task run, a Slurm job), so each attempt keeps its real parameters.
    """
    failures = []
    for rung in config.ladder():
        try:
            return attempt(config.with_rung(rung))
        except TrainOOM as e:
            log.warning("train: %s; trying the next rung", e)
            failures.append(str(e))
    raise LadderExhausted(failures)
