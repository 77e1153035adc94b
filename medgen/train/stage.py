"""train: LoRA fine-tuning with TRL's SFTTrainer; QLoRA (bitsandbytes NF4) on CUDA, plain LoRA on CPU.

One code path: quantization only changes how the base is loaded. Loss is on the assistant turn only
(prompt-completion data in conversational form, rendered by the base model's chat template). Examples are
packed padding-free into rows, and a step's rows x accumulation come from a memory budget (packing.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from medgen.core.config import PipelineConfig
from medgen.core.constants import ADAPTER_DIR, CHECKPOINT_DIR, LIGER_KERNELS, LOSS_PLOT_FILE, SPLIT_FILE
from medgen.core.errors import ConfigError, MissingUpstream, TrainInterrupted, TrainOOM
from medgen.core.io import atomic_dir, ensure_dir, owner_only, peak_rss_mb
from medgen.core.lock import run_lock
from medgen.core.plots import figure
from medgen.core.progress import Progress, quiet_libraries
from medgen.core.provenance import fingerprint
from medgen.core.results import PrepareResult, TrainResult
from medgen.data.dataset import token_lengths
from medgen.data.prompts import chat_messages
from medgen.model import precision as precisions
from medgen.model.loading import load_causal_lm, load_tokenizer, resolve_base
from medgen.train import distributed, resume
from medgen.train.packing import GIB, Layout, memory_model, plan_layout, shape_of, split_across

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What the config resolves to on this machine."""

    device: str
    quantize: bool
    precision: precisions.Precision
    optimizer: str
    attention: str  # transformers attn_implementation
    kernels: str  # "liger" or "none"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _kernels(requested: str, device: str) -> str:
    can = device == "cuda" and _installed("liger_kernel")
    if requested == "liger" and not can:
        raise ConfigError(["train.kernels: 'liger' needs CUDA and the liger-kernel package "
                           f"(device here: {device}; installed: {_installed('liger_kernel')}); "
                           "use 'auto' (liger where it can run) or 'none'"])
    return "liger" if requested == "liger" or (requested == "auto" and can) else "none"


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
    precision = precisions.choose(tc.precision, device)
    optimizer = tc.optimizer
    if optimizer == "auto":
        optimizer = "paged_adamw_8bit" if quantize and device == "cuda" else "adamw_torch"
    # flash-attention's varlen kernel keeps packed examples apart without a mask; sdpa gets a block-diagonal one.
    # It runs on bf16 GPUs only (Ampere and later); fp16 is auto's pick only on older ones.
    attention = ("flash_attention_2" if device == "cuda" and precision.name == "bf16" and _installed("flash_attn")
                 else "sdpa")
    return Plan(device, quantize, precision, optimizer, attention, _kernels(tc.kernels, device))


def to_conversation(row: dict) -> dict:
    """Alpaca row -> prompt (system = instruction, user = input) and completion (assistant = output)."""
    *prompt, completion = chat_messages(row["instruction"], row["input"], row["output"])
    return {"prompt": prompt, "completion": [completion]}


def read_rows(prepare_dir: Path, split: str) -> list[dict]:
    """The Alpaca rows of one prepared split."""
    path = prepare_dir / SPLIT_FILE.format(split=split)
    if not path.is_file():
        raise MissingUpstream("prepare", str(path))
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def conversations(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_list([to_conversation(r) for r in rows])


def memory_budget(budget_gb: float | None, device: str) -> float:
    """Bytes to plan a step in: the configured budget, else 90% of the GPU, else half the RAM (shared hosts)."""
    if budget_gb is not None:
        return budget_gb * GIB
    if device == "cuda":
        import torch

        return 0.9 * torch.cuda.get_device_properties(0).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2


def layout(config: PipelineConfig, base: str, tok, rows: list[dict], p: Plan) -> Layout:
    """Row length, rows per micro-batch, accumulation and checkpointing for this machine and data."""
    from transformers import AutoConfig

    tc = config.train
    cuda = p.device == "cuda"
    # On CPU the weights stay float32 and bf16 autocast keeps a bf16 copy of each beside them.
    half = p.precision.name != "fp32"
    weight_bytes = (2 if half else 4) if cuda else (6 if half else 4)
    shape = shape_of(AutoConfig.from_pretrained(base))
    mem = memory_model(tc, shape, budget=memory_budget(tc.memory_budget_gb, p.device), quantized=p.quantize,
                       weight_bytes=weight_bytes, act_bytes=2 if cuda and half else 4,
                       dense_mask=tc.packing and p.attention != "flash_attention_2")
    # Packed, TRL flattens a micro-batch into one sequence, and sdpa then attends over all of it through a
    # block mask: each extra row costs attention over every row before it. On CPU that costs more than a
    # bigger micro-batch gains (measured: one row per micro-batch, accumulated, 1.1-1.5x faster than two
    # flattened rows); on CUDA the bigger micro-batch wins, and flash-attention's varlen kernel pays nothing.
    one_row = tc.packing and not cuda
    lay = split_across(plan_layout(tc, shape, token_lengths(tok, {"train": rows})["train"], mem, one_row=one_row),
                       tc.world_size())
    log.info("train: %s attention, %s kernels, %s; rows of %d tokens, %d per micro-batch x %d accumulated, "
             "checkpointing %s; about %.1f of %.1f GiB", p.attention, p.kernels,
             "packed" if tc.packing else "padded", lay.max_seq_length, lay.rows, lay.grad_accum,
             "on" if lay.gradient_checkpointing else "off", lay.estimated_peak_gb, lay.budget_gb)
    if lay.estimated_peak_gb > lay.budget_gb:
        log.warning("train: the estimated peak (%.1f GiB) is over the %.1f GiB budget; an OOM moves down "
                    "train.fallback", lay.estimated_peak_gb, lay.budget_gb)
    return lay


def precision_arguments(p: Plan) -> dict:
    """The Trainer's settings for the chosen precision: bf16 autocast, or fp16 autocast with a dynamic loss scale (its
    GradScaler), or neither (fp32)."""
    return {"bf16": p.precision.name == "bf16", "fp16": p.precision.name == "fp16", "use_cpu": p.device == "cpu"}


def _quantization_config(p: Plan, double_quant: bool):
    if not p.quantize:
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=p.precision.torch_dtype,
    )


def _load_model(config: PipelineConfig, base: str, p: Plan, checkpointing: bool):
    import torch
    from peft import prepare_model_for_kbit_training

    qc = _quantization_config(p, config.train.double_quant)
    # Data-parallel, each rank holds its own copy on its own GPU (a 4-bit model cannot move after loading).
    device_map = {"": distributed.local_rank()} if p.device == "cuda" else None
    # On CUDA the frozen base is held in the compute dtype (PEFT keeps the adapter's own weights in float32, which
    # fp16's loss scaling needs); on CPU it stays float32 and autocast computes in bf16 where that is native.
    dtype = p.precision.torch_dtype if p.device == "cuda" else torch.float32
    model = load_causal_lm(base, dtype=dtype, device_map=device_map, quantization_config=qc,
                           attn_implementation=p.attention)
    model.config.use_cache = False
    if qc is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model


@dataclass
class Setup:
    """What `build_trainer` made: the trainer and the decisions behind it."""

    trainer: object
    tokenizer: object
    plan: Plan
    base: str
    layout: Layout
    checkpoints: Path  # this rung's own checkpoint folder (medgen/train/resume.py)


def checkpoints_dir(config: PipelineConfig, out_dir: Path, lay: Layout) -> Path:
    """`train/checkpoints/<key>`: the key hashes what shapes the weights, so each rung and config has its own."""
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    key = resume.checkpoint_key(config.model.model_dump(mode="json"), config.train.model_dump(mode="json"),
                                config.data.seed, prepared.fingerprint,
                                {"rows": lay.rows, "grad_accum": lay.grad_accum, "max_seq_length": lay.max_seq_length})
    return out_dir / CHECKPOINT_DIR / key


def build_trainer(config: PipelineConfig, out_dir: Path, callbacks=()) -> Setup:
    """Model, data and SFTTrainer for the config's current rung; used by `run`, the bench and tests."""
    from peft import LoraConfig
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    p = plan(config)
    tc = config.train
    base = resolve_base(config.model.base, config.model.cache_dir)
    tok = load_tokenizer(base)
    prepare_dir = config.stage_dir("prepare")
    train_rows = read_rows(prepare_dir, "train")
    train_ds, val_ds = conversations(train_rows), conversations(read_rows(prepare_dir, "val"))
    lay = layout(config, base, tok, train_rows, p)
    checkpoints = checkpoints_dir(config, out_dir, lay)
    model = _load_model(config, base, p, lay.gradient_checkpointing)
    args = SFTConfig(
        output_dir=str(checkpoints),
        max_length=lay.max_seq_length,
        # TRL's best-fit decreasing keeps examples whole (one longer than a row is cut, as without packing);
        # packing implies its padding-free collator: position ids restart per example, no attention mask.
        packing=tc.packing,
        packing_strategy="bfd",
        padding_free=tc.packing,
        per_device_train_batch_size=lay.rows,
        per_device_eval_batch_size=lay.rows,
        gradient_accumulation_steps=lay.grad_accum,
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
        activation_checkpointing=lay.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        use_liger_kernel=p.kernels == "liger",
        liger_kernel_config=dict(LIGER_KERNELS) if p.kernels == "liger" else None,
        **precision_arguments(p),
        optim=p.optimizer,
        report_to="none",
        seed=config.data.seed,
        completion_only_loss=True,
        # A padding-free batch holds no padding, and counting "non_padding" there compares ids with the pad
        # token, which can be a real token (SmolLM2's is <|im_end|>).
        include_num_input_tokens_seen="all" if tc.packing else "non_padding",
        disable_tqdm=True,
        dataloader_num_workers=0,
        # Data-parallel: gloo where there is no GPU (an MPI-enabled torch would pick MPI); LoRA uses every
        # adapter weight, so DDP need not search for unused ones each step.
        ddp_backend="gloo" if p.device == "cpu" and distributed.in_rank() else None,
        ddp_find_unused_parameters=False,
    )
    peft_config = LoraConfig(
        r=tc.lora.r, lora_alpha=tc.lora.alpha, lora_dropout=tc.lora.dropout,
        target_modules=list(tc.lora.target_modules), layers_to_transform=tc.lora.layers, bias="none",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds if len(val_ds) else None,
        processing_class=tok, peft_config=peft_config, callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout: the progress callback reports instead
    return Setup(trainer, tok, p, base, lay, checkpoints)


def _same_bytes_each_time(config_file: Path) -> None:
    """PEFT writes target_modules from a set, in an order that changes from process to process: sorted, the same
    adapter is the same bytes, and what is built on it is not redone for nothing (medgen/core/integrity.py)."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _checkpoint_state(start: Path | None):
    """The trainer state a checkpoint holds (step, tokens seen, the run's step count); a fresh one without one."""
    from transformers import TrainerState

    return TrainerState.load_from_json(str(start / "trainer_state.json")) if start else TrainerState()


def _restore(trainer, checkpoint: Path) -> None:
    """A finished run's last checkpoint as the trainer's model and state, without a step."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    trainer.state = _checkpoint_state(checkpoint)
    set_peft_model_state_dict(trainer.model, load_file(str(checkpoint / "adapter_model.safetensors")))


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


def _progress_callback(on_progress: Callable[[int, int], None] | None):
    """Step/total, loss, tokens/s and time left (medgen.core.progress) in place of the Trainer's printed dicts."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        progress: Progress | None = None
        loss = ""

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero:
                self.progress = Progress("train", state.max_steps, "steps", done=state.global_step)
                self.tokens0 = state.num_input_tokens_seen or 0

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = f"loss {logs['loss']:.3f}"

        def on_step_end(self, args, state, control, **kw):
            if self.progress is None:
                return
            elapsed = max(time.monotonic() - self.progress.t0, 1e-9)
            tokens = f"{((state.num_input_tokens_seen or 0) - self.tokens0) / elapsed:,.0f} tokens/s"
            self.progress.update(state.global_step, *(n for n in (self.loss, tokens) if n))
            if on_progress:
                on_progress(state.global_step, state.max_steps)

        def on_train_end(self, args, state, control, **kw):
            if self.progress is not None:
                self.progress.close()

    return StepProgress()


def inputs(config: PipelineConfig) -> dict:
    """What the adapter is made from (medgen/core/skip.py): base, training settings (the rung included), seed, splits."""
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    return fingerprint({"model": config.model.model_dump(mode="json"), "train": config.train.model_dump(mode="json"),
                        "seed": config.data.seed}, {"prepare": prepared.identity})


def run(config: PipelineConfig, on_progress: Callable[[int, int], None] | None = None) -> TrainResult | None:
    """Train one rung (config.train.lora.r, config.train.max_seq_length), resuming from the newest complete
    checkpoint of the same rung and config. CUDA OOM raises TrainOOM; SIGUSR1/SIGTERM save a checkpoint and
    raise TrainInterrupted. Progress goes to a bar on a terminal, else to log lines, and to `on_progress(step,
    total)`. With train.launcher=torchrun this starts the ranks (medgen/train/distributed.py), each of which runs
    this same function; rank 0 returns the result, the others None."""
    import torch

    if config.train.launcher == "torchrun" and not distributed.in_rank():
        return distributed.launch(config)
    quiet_libraries()
    if distributed.in_rank() and torch.cuda.is_available():
        torch.cuda.set_device(distributed.local_rank())  # before anything touches the GPU
    rung = config.rung()
    PrepareResult.from_manifest(config.stage_dir("prepare"))  # MissingUpstream, before anything is written
    out_dir = ensure_dir(config.stage_dir("train"))
    t0 = time.perf_counter()
    with owner_only(), resume.stop_on_signals() as stop:
        callbacks = [*resume.callbacks(stop), _progress_callback(on_progress)]
        try:
            setup = build_trainer(config, out_dir, callbacks)
            trainer, tok, p, base, lay = setup.trainer, setup.tokenizer, setup.plan, setup.base, setup.layout
            # One writer per checkpoint folder: a requeued job and its resubmitted twin take turns. Data-parallel,
            # rank 0 holds the lock and chooses the checkpoint; every rank resumes from the one it chose.
            main = distributed.is_main()
            lock = run_lock(setup.checkpoints, f"train r={rung.r} seq={rung.max_seq_length}",
                            config.orchestration.lock_wait_s) if main else contextlib.nullcontext()
            with lock:
                start = distributed.broadcast(resume.latest_complete(setup.checkpoints) if main else None)
                if start is not None:
                    log.info("train: resuming from %s", start)
                if p.device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                done_before = _checkpoint_state(start)
                # The Trainer looks for the end only after a step: resumed from the last checkpoint (a rerun whose
                # adapter was lost) it would train one step past the end, and make another model.
                if start is not None and done_before.global_step >= done_before.max_steps > 0:
                    result = None
                    _restore(trainer, start)
                else:
                    result = trainer.train(resume_from_checkpoint=str(start) if start else None)
            if stop.signal_name is not None and trainer.state.global_step < trainer.state.max_steps:
                raise TrainInterrupted(rung, stop.signal_name, trainer.state.global_step,
                                       str(setup.checkpoints / f"checkpoint-{trainer.state.global_step}"))
            evaluated_last = any("eval_loss" in h and h.get("step") == trainer.state.global_step
                                 for h in trainer.state.log_history)
            metrics = trainer.evaluate() if trainer.eval_dataset is not None and not evaluated_last else {}
        except Exception as e:
            if _is_oom(e):
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise TrainOOM(rung, str(e).splitlines()[0]) from e
            raise
        if not distributed.is_main():
            return None
        adapter_dir = out_dir / ADAPTER_DIR
        with atomic_dir(adapter_dir) as tmp:
            trainer.model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            _same_bytes_each_time(tmp / "adapter_config.json")
        history = trainer.state.log_history
        _plot_losses(history, out_dir / LOSS_PLOT_FILE)
        wall = time.perf_counter() - t0
        train_losses = [h["loss"] for h in history if "loss" in h]
        eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        # The speed of the steps this run trained, not of every step over this run's time.
        steps_now = trainer.state.global_step - done_before.global_step
        runtime = result.metrics.get("train_runtime") if result else None
        final_val = metrics.get("eval_loss", eval_losses[-1] if eval_losses else None)
        train_result = TrainResult(
            out_dir=out_dir, wall_s=round(wall, 2),
            **inputs(config),
            base=config.model.base, resolved_base=base, device=p.device,
            quantization="nf4" if p.quantize else "none", **p.precision.record(), optimizer=p.optimizer, rung=rung,
            steps=trainer.state.global_step, epochs=round(trainer.state.epoch or 0, 3),
            train_examples=lay.examples,
            final_train_loss=train_losses[-1] if train_losses else None,
            mean_train_loss=result.metrics.get("train_loss") if result and steps_now else None,
            final_val_loss=None if final_val is None or math.isnan(final_val) else final_val,
            train_losses=train_losses, val_losses=eval_losses, tokens_seen=tokens,
            tokens_per_s=round((tokens - done_before.num_input_tokens_seen) / runtime, 1) if steps_now and runtime
            else None,
            peak_memory_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if p.device == "cuda"
            else round(peak_rss_mb(), 1),
            peak_memory_kind="cuda_allocated" if p.device == "cuda" else "process_rss",
            adapter_dir=adapter_dir, loss_plot=out_dir / LOSS_PLOT_FILE, checkpoints_dir=setup.checkpoints,
            resumed_from_step=int(start.name.rsplit("-", 1)[1]) if start else None,
            max_seq_length=lay.max_seq_length, truncated_examples=lay.truncated, packing=config.train.packing,
            micro_batch_rows=lay.rows, grad_accum=lay.grad_accum, world_size=config.train.world_size(),
            gradient_checkpointing=lay.gradient_checkpointing,
            attention=p.attention, kernels=p.kernels, estimated_peak_gb=lay.estimated_peak_gb,
        )
        train_result.write(config.to_yaml())
    return train_result
