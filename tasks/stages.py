"""One Prefect task per registered stage (medgen/core/registry.py). Each only runs the stage (skipping it when its
outputs were made from the same inputs), records the kind of a failure, and publishes a summary artifact of
figures and paths (never record text: it may be PHI)."""

from __future__ import annotations

import logging
from typing import Callable

from prefect import Task, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from medgen.core.config import PipelineConfig
from medgen.core.errors import is_transient
from medgen.core.registry import STAGES, Stage
from medgen.core.results import GenerateResult, ServeResult, StageResult, failure_recorded


class _RunLogs(APILogHandler):
    """medgen's own log lines (progress, "resuming", a server restart) into the flow run's logs; those of no run
    (a command's own setup) stay on the console."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() or TaskRunContext.get():
            super().emit(record)


def _medgen_logs_to_prefect() -> None:
    logger = logging.getLogger("medgen")
    logger.setLevel(logging.INFO)  # the job log (Prefect's console handler on the root) shows them too
    if not any(isinstance(h, _RunLogs) for h in logger.handlers):
        logger.addHandler(_RunLogs())


_medgen_logs_to_prefect()


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


def publish(result: StageResult, keys: tuple[str, ...]) -> None:
    m = result.to_manifest()
    rows = "\n".join(f"| {k} | {m.get(k)} |" for k in keys if k in m)
    if result.skipped:
        rows = f"| skipped | yes: outputs made from these inputs (fingerprint {result.fingerprint[:12]}) |\n{rows}"
    create_markdown_artifact(
        key=f"medgen-{result.stage}", markdown=f"## medgen {result.stage}\n\n| figure | value |\n|---|---|\n{rows}\n",
        description=f"medgen {result.stage} summary",
    )


def _shell(cmd: list[str], env: dict) -> None:
    """Shell steps (`ollama create`) run through prefect-shell, so their output lands in the flow logs."""
    import shlex

    from prefect_shell import ShellOperation

    ShellOperation(commands=[shlex.join(cmd)], env=env).run()


def _smoke_table(cfg: PipelineConfig) -> None:
    try:
        scores = ServeResult.from_manifest(cfg.stage_dir("serve")).smoke_scores
    except (FileNotFoundError, ValueError):
        return
    create_table_artifact(key="medgen-smoke-test", table=scores, description="Smoke-test scores (no record text)")


def _progress(stage: str, unit: str) -> Callable[[], dict]:
    """A live Prefect progress artifact for the stage, moved at each whole percent (not each record or step)."""

    def extra() -> dict:
        artifact = create_progress_artifact(progress=0.0, key=f"medgen-{stage}", description=f"{unit} done")
        shown = [0]

        def on_progress(done: int, total: int) -> None:
            percent = 100 * done // max(total, 1)
            if percent > shown[0]:
                shown[0] = percent
                update_progress_artifact(artifact, progress=float(percent))

        return {"on_progress": on_progress}

    return extra


# What the Prefect layer adds to a stage's run: shell steps in the flow logs, live progress artifacts.
_EXTRA: dict[str, Callable[[], dict]] = {"serve": lambda: {"run_command": _shell},
                                         "train": _progress("train", "steps"),
                                         "generate": _progress("generate", "records")}
# Published whether the stage passes or fails: the figures a person looks at first.
_ALWAYS: dict[str, Callable[[PipelineConfig], None]] = {"serve": _smoke_table}


def run_stage(spec: Stage, config: dict) -> StageResult:
    from medgen.core import skip

    cfg = PipelineConfig.model_validate(config)
    try:
        with failure_recorded(cfg.stage_dir(spec.name), spec.name):
            result = skip.run(cfg, spec.name, **_EXTRA.get(spec.name, dict)())
    finally:
        if spec.name in _ALWAYS:
            _ALWAYS[spec.name](cfg)
    if result.skipped:
        get_run_logger().info("%s skipped: its outputs were made from these inputs (fingerprint %s)", spec.name,
                              result.fingerprint[:12])
    publish(result, spec.summary)
    return result


def _make_task(spec: Stage) -> Task:
    def stage_task(config: dict) -> StageResult:
        return run_stage(spec, config)

    stage_task.__doc__ = spec.help
    stage_task.__name__ = stage_task.__qualname__ = f"{spec.name}_task"

    # The registry's run name as a template Prefect fills from the task's `config` parameter.
    run_name = spec.run_name.format(stage=spec.name, r="{config[train][lora][r]}",
                                    seq="{config[train][max_seq_length]}", shard="{config[generate][shard]}",
                                    shards="{config[generate][shards]}")
    return task(name=spec.name, task_run_name=run_name, **RETRY)(stage_task)


TASKS: dict[str, Task] = {spec.name: _make_task(spec) for spec in STAGES}


@task(name="merge-shards", **RETRY)
def merge_shards_task(config: dict) -> GenerateResult:
    """Merge the generated shards into one corpus, in plan order."""
    from medgen.generate.shards import merge_shards

    cfg = PipelineConfig.model_validate(config)
    with failure_recorded(cfg.stage_dir("generate"), "generate"):
        r = merge_shards(cfg)
    publish(r, ("counts", "rejections_by_reason", "phi_category_counts", "wall_s"))
    return r


@task(name="release", **RETRY)
def release_task(config: dict) -> dict:
    """Release the model if its corpus passed the gate; otherwise fail with the reasons, leaving the old release."""
    from medgen.evaluate import release

    cfg = PipelineConfig.model_validate(config)
    with failure_recorded(cfg.stage_dir("evaluate"), "release"):
        record = release.run(cfg, run_command=_shell)
    create_markdown_artifact(key="medgen-release", markdown=f"## medgen release\n\n- tag: {record['tag']}\n"
                             f"- run: {record['run_dir']}\n- ollama: {record['ollama']}\n",
                             description="medgen release")
    return record
