"""One Prefect task per stage. Each only calls `medgen.<stage>.run`, records the kind of a failure, and
publishes a summary artifact of figures and paths (never record text: it may be PHI)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from medgen.config import PipelineConfig
from medgen.errors import is_transient
from medgen.results import (ExportResult, MergeResult, PrepareResult, ServeResult, StageResult, TrainResult,
                            failure_recorded)


def transient_only(task, task_run, state) -> bool:
    """Retry flaky I/O; never retry OOM, bad config or bad data (retrying would fail the same way)."""
    exc = state.data
    if not isinstance(exc, BaseException):
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:
            return False
    return isinstance(exc, BaseException) and is_transient(exc)


# Results stay in memory: a stage's truth is its manifest on disk, and results may carry paths to PHI.
RETRY = dict(retries=2, retry_delay_seconds=10, retry_condition_fn=transient_only, persist_result=False)


def _artifact(result: StageResult, keys: list[str]) -> None:
    m = result.to_manifest()
    rows = "\n".join(f"| {k} | {m.get(k)} |" for k in keys if k in m)
    if result.skipped:
        rows = f"| skipped | yes: outputs made from these inputs (fingerprint {result.fingerprint[:12]}) |\n{rows}"
    create_markdown_artifact(
        key=f"medgen-{result.stage}", markdown=f"## medgen {result.stage}\n\n| figure | value |\n|---|---|\n{rows}\n",
        description=f"medgen {result.stage} summary",
    )


def _run(stage: str, config: dict, **kw) -> StageResult:
    from medgen import skip

    cfg = PipelineConfig.model_validate(config)
    with failure_recorded(cfg.stage_dir(stage), stage):
        result = skip.run(cfg, stage, **kw)
    if result.skipped:
        get_run_logger().info("%s skipped: its outputs were made from these inputs (fingerprint %s)", stage,
                              result.fingerprint[:12])
    return result


@task(name="prepare", **RETRY)
def prepare_task(config: dict) -> PrepareResult:
    """Build the train/val/test splits."""
    r = _run("prepare", config)
    _artifact(r, ["source", "seed", "profile", "phi_markup", "counts", "duplicates_removed", "files", "wall_s"])
    return r


@task(name="train", task_run_name="train-r{config[train][lora][r]}-seq{config[train][max_seq_length]}", **RETRY)
def train_task(config: dict) -> TrainResult:
    """Train one rung of the OOM ladder."""
    r = _run("train", config)
    _artifact(r, ["device", "quantization", "rung", "steps", "final_train_loss", "final_val_loss",
                  "tokens_per_s", "peak_memory_mb", "wall_s", "adapter_dir", "loss_plot"])
    return r


@task(name="merge", **RETRY)
def merge_task(config: dict) -> MergeResult:
    """Merge the adapter into the 16-bit base."""
    r = _run("merge", config)
    _artifact(r, ["dtype", "parameters", "merged_vs_adapter", "merged_dir", "wall_s"])
    return r


@task(name="export", **RETRY)
def export_task(config: dict) -> ExportResult:
    """Convert the merged model to GGUF and verify its next-token distributions."""
    r = _run("export", config)
    _artifact(r, ["gguf", "outtype", "bytes", "parity", "wall_s"])
    return r


def _shell(cmd: list[str], env: dict) -> None:
    """Shell steps (`ollama create`) run through prefect-shell, so their output lands in the flow logs."""
    import shlex

    from prefect_shell import ShellOperation

    ShellOperation(commands=[shlex.join(cmd)], env=env).run()


@task(name="serve", **RETRY)
def serve_task(config: dict) -> ServeResult:
    """Serve the GGUF and smoke-test it; publish the scores (figures only)."""
    cfg = PipelineConfig.model_validate(config)
    try:
        r = _run("serve", config, run_command=_shell)
    finally:
        _smoke_table(cfg)  # pass or fail, the scores are what a person looks at
    _artifact(r, ["backend", "url", "modelfile", "gguf", "smoke", "notes", "wall_s"])
    return r


def _smoke_table(cfg: PipelineConfig) -> None:
    try:
        scores = ServeResult.from_manifest(cfg.stage_dir("serve")).smoke_scores
    except (FileNotFoundError, ValueError):
        return
    create_table_artifact(key="medgen-smoke-test", table=scores, description="Smoke-test scores (no record text)")


@task(name="generate", task_run_name="generate-shard{config[generate][shard]}-of-{config[generate][shards]}",
      **RETRY)
def generate_task(config: dict):
    """Generate the labelled corpus (one shard of it); a progress artifact tracks it (counts only)."""
    progress = create_progress_artifact(progress=0.0, key="medgen-generate", description="records done")

    def on_progress(done: int, total: int) -> None:
        update_progress_artifact(progress, progress=100.0 * done / max(total, 1))

    r = _run("generate", config, on_progress=on_progress)
    _artifact(r, ["counts", "rejections_by_reason", "phi_category_counts", "tokens_per_s", "records_per_s",
                  "slots", "resumed", "torn_lines_dropped", "wall_s"])
    return r


@task(name="merge-shards", **RETRY)
def merge_shards_task(config: dict):
    """Merge the generated shards into one corpus, in plan order."""
    from medgen.generate import merge_shards

    cfg = PipelineConfig.model_validate(config)
    with failure_recorded(cfg.stage_dir("generate"), "generate"):
        r = merge_shards(cfg)
    _artifact(r, ["counts", "rejections_by_reason", "phi_category_counts", "wall_s"])
    return r


@task(name="canaries", **RETRY)
def canaries_task(config: dict):
    """How often the model emits the planted canaries' PHI, per repeat count (figures only)."""
    r = _run("canaries", config)
    _artifact(r, ["backend", "samples_per_canary", "extraction", "wall_s"])
    return r


@task(name="evaluate", **RETRY)
def evaluate_task(config: dict):
    """Validity, fidelity, diversity, privacy and utility of the corpus, and the gate's verdict (figures only)."""
    r = _run("evaluate", config)
    _artifact(r, ["sizes", "gate", "timings_s", "wall_s"])
    return r


@task(name="release", **RETRY)
def release_task(config: dict) -> dict:
    """Release the model if its corpus passed the gate; otherwise fail with the reasons, leaving the old release."""
    from medgen import release

    cfg = PipelineConfig.model_validate(config)
    with failure_recorded(cfg.stage_dir("evaluate"), "release"):
        record = release.run(cfg, run_command=_shell)
    create_markdown_artifact(key="medgen-release", markdown=f"## medgen release\n\n- tag: {record['tag']}\n"
                             f"- run: {record['run_dir']}\n- ollama: {record['ollama']}\n",
                             description="medgen release")
    return record
