"""The stage registry: one table of every stage, which the CLI, stage skipping, the `retrain` flow, the
per-stage pool flows and the generated part of prefect.yaml all read.

A stage is a module with `run(config, **kw) -> <result>` and `inputs(config) -> fingerprint` (and optionally
`report(result)`, the lines the CLI prints). The table names it by import path, so reading the table imports no
stage (and no torch): a stage's module loads only when it runs.

Adding a stage: write its package (`run`, `inputs`; its result type in `core/results.py`), add one `Stage(...)`
row here, then `medgen deployments` to add its pool deployment to prefect.yaml (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Literal

from medgen.core import results as r

if TYPE_CHECKING:
    from medgen.core.config import PipelineConfig


@dataclass(frozen=True)
class JobSize:
    """What one run of the stage asks of a pool (a Slurm job): becomes the deployment's job variables."""

    time_limit: str
    mem: str
    gpus: int = 1  # 0: a CPU job (no gres, no GPU constraint)
    cpus_per_task: int | None = None  # None keeps the pool's default
    extra: dict = field(default_factory=dict)  # further job variables (signal, requeue)


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # import path of the module holding run() and inputs()
    result: type[r.StageResult]
    upstream: tuple[str, ...]  # stages whose manifests this one reads
    job: JobSize
    help: str  # one line: the CLI's help and the deployment's description
    summary: tuple[str, ...]  # result fields a task publishes and the flow's summary keeps (figures, paths)
    # How the `retrain` flow drives it: once; once per rung of the OOM ladder; once per generate shard, merged.
    drive: Literal["once", "ladder", "shards"] = "once"
    enabled: Callable[[PipelineConfig], bool] = lambda config: True
    run_name: str = "{stage}-r{r}-seq{seq}"  # the Prefect run name ({stage}, {r}, {seq}, {shard}, {shards})
    # Where its outputs live when not run_dir/<name>/: "module:function(config)", imported only when asked.
    outputs: str | None = None

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def run(self, config: PipelineConfig, **kw) -> r.StageResult:
        return self.load().run(config, **kw)

    def inputs(self, config: PipelineConfig) -> dict:
        return self.load().inputs(config)

    def out_dir(self, config: PipelineConfig) -> Path:
        if self.outputs is None:
            return config.stage_dir(self.name)
        module, _, function = self.outputs.partition(":")
        return getattr(importlib.import_module(module), function)(config)

    def describe_run(self, config: PipelineConfig) -> str:
        rung = config.rung()
        return self.run_name.format(stage=self.name, r=rung.r, seq=rung.max_seq_length,
                                    shard=config.generate.shard, shards=config.generate.shards)


_GPU_SHORT = JobSize("01:00:00", "16G")

STAGES: tuple[Stage, ...] = (
    Stage("prepare", "medgen.data.prepare", r.PrepareResult, (), JobSize("01:00:00", "16G", gpus=0),
          "Build the train/val/test splits, PHI spans and a dataset card (tokenizer only: a CPU job).",
          ("source", "seed", "profile", "phi_markup", "counts", "duplicates_removed", "files", "wall_s")),
    Stage("train", "medgen.train.stage", r.TrainResult, ("prepare",),
          # SIGUSR1 five minutes before the limit: the rung saves a checkpoint and requeues itself, as Slurm does
          # on preemption (--requeue); it resumes there, up to train.max_resumes times.
          JobSize("04:00:00", "32G", extra={"signal": "B:USR1@300", "requeue": True}),
          "Fine-tune a LoRA adapter (QLoRA on CUDA), one rung of the OOM fallback ladder per run.",
          ("device", "quantization", "rung", "steps", "final_train_loss", "final_val_loss", "tokens_per_s",
           "peak_memory_mb", "wall_s", "adapter_dir", "loss_plot"), drive="ladder"),
    Stage("merge", "medgen.export.merge", r.MergeResult, ("train",), JobSize("01:00:00", "48G"),
          "Merge the adapter into the 16-bit base and save safetensors (an 8B base is 16 GB in bf16).",
          ("dtype", "parameters", "merged_vs_adapter", "merged_dir", "wall_s")),
    Stage("export", "medgen.export.stage", r.ExportResult, ("merge",), JobSize("01:00:00", "64G"),
          "Convert the merged model to GGUF and verify its next-token distributions against the merged model.",
          ("gguf", "outtype", "bytes", "parity", "wall_s")),
    Stage("serve", "medgen.serve.stage", r.ServeResult, ("export",), JobSize("08:00:00", "16G"),
          "Serve the GGUF (Ollama, or llama.cpp where Ollama is absent) and smoke-test it.",
          ("backend", "url", "modelfile", "gguf", "smoke", "notes", "wall_s")),
    Stage("generate", "medgen.generate.stage", r.GenerateResult, ("prepare", "export"), JobSize("04:00:00", "16G"),
          "Generate the labelled corpus (one shard of it per run) with its own model server.",
          ("counts", "rejections_by_reason", "phi_category_counts", "tokens_per_s", "records_per_s", "slots",
           "resumed", "torn_lines_dropped", "files", "wall_s"),
          drive="shards", run_name="{stage}-shard{shard}-of-{shards}", outputs="medgen.generate.plan:out_dir"),
    Stage("canaries", "medgen.evaluate.canaries", r.CanaryResult, ("prepare", "export"), _GPU_SHORT,
          "Ask the model for the planted canaries' Sex and Service: how often it emits their PHI.",
          ("backend", "samples_per_canary", "extraction", "wall_s"),
          enabled=lambda config: config.data.canaries.enabled),
    Stage("evaluate", "medgen.evaluate.stage", r.EvaluateResult, ("prepare", "generate", "canaries"),
          JobSize("01:00:00", "16G", gpus=0, cpus_per_task=2),
          "Validity, fidelity, diversity, privacy and utility of the corpus, and the release gate (a CPU job).",
          ("sizes", "gate", "files", "timings_s", "wall_s")),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; expected one of {', '.join(BY_NAME)}") from None
