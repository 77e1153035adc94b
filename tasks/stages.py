"""One Prefect task per stage. Each only calls `medgen.<stage>.run` and publishes a markdown artifact."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from medgen.config import PipelineConfig
from medgen.errors import is_transient


def transient_only(task, task_run, state) -> bool:
    """Retry flaky I/O; never retry OOM, bad config or bad data (retrying would fail the same way)."""
    exc = state.data
    if not isinstance(exc, BaseException):
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:
            return False
    return isinstance(exc, BaseException) and is_transient(exc)


RETRY = dict(retries=2, retry_delay_seconds=10, retry_condition_fn=transient_only)


def _artifact(stage: str, manifest: dict, keys: list[str]) -> None:
    rows = "\n".join(f"| {k} | {manifest.get(k)} |" for k in keys if k in manifest)
    create_markdown_artifact(
        key=f"medgen-{stage}", markdown=f"## medgen {stage}\n\n| figure | value |\n|---|---|\n{rows}\n",
        description=f"medgen {stage} summary",
    )


@task(name="prepare", **RETRY)
def prepare_task(config: dict) -> dict:
    """Build the train/val/test splits."""
    from medgen import prepare

    m = prepare.run(PipelineConfig.model_validate(config)).manifest
    _artifact("prepare", m, ["source", "seed", "profile", "counts", "duplicates_removed", "files", "wall_s"])
    return m


@task(name="train", task_run_name="train-r{config[train][lora][r]}-seq{config[train][max_seq_length]}", **RETRY)
def train_task(config: dict) -> dict:
    """Train one rung of the OOM ladder."""
    from medgen import train

    m = train.run(PipelineConfig.model_validate(config)).manifest
    _artifact("train", m, ["device", "quantization", "rung", "steps", "final_train_loss", "final_val_loss",
                           "tokens_per_s", "peak_memory_mb", "wall_s", "adapter_dir", "loss_plot"])
    return m


@task(name="merge", **RETRY)
def merge_task(config: dict) -> dict:
    """Merge the adapter into the 16-bit base."""
    from medgen import merge

    m = merge.run(PipelineConfig.model_validate(config)).manifest
    _artifact("merge", m, ["dtype", "parameters", "merged_vs_adapter", "merged_dir", "wall_s"])
    return m


@task(name="export", **RETRY)
def export_task(config: dict) -> dict:
    """Convert the merged model to GGUF and verify its logits."""
    from medgen import export

    m = export.run(PipelineConfig.model_validate(config)).manifest
    _artifact("export", m, ["gguf", "outtype", "bytes", "tokenizer_pre", "parity", "wall_s"])
    return m


def _shell(cmd: list[str], env: dict) -> None:
    """Shell steps (`ollama create`) run through prefect-shell, so their output lands in the flow logs."""
    import shlex

    from prefect_shell import ShellOperation

    ShellOperation(commands=[shlex.join(cmd)], env=env).run()


@task(name="serve", **RETRY)
def serve_task(config: dict) -> dict:
    """Serve the GGUF, smoke-test it, and publish the generated records and scores."""
    from medgen import serve

    cfg = PipelineConfig.model_validate(config)
    try:
        m = serve.run(cfg, run_command=_shell).manifest
    finally:
        _smoke_table(cfg)  # pass or fail, the records and scores are what a person looks at
    _artifact("serve", m, ["backend", "url", "modelfile", "gguf", "smoke", "notes", "wall_s"])
    return m


def _smoke_table(cfg: PipelineConfig) -> None:
    import json

    from prefect.artifacts import create_table_artifact

    from medgen.constants import SMOKE_FILE

    path = cfg.stage_dir("serve") / SMOKE_FILE
    if path.is_file():
        rows = json.loads(path.read_text())["results"]
        create_table_artifact(key="medgen-smoke-test", table=rows, description="Smoke-test records and scores")
