"""The `retrain` flow: prepare → train (OOM ladder) → merge → export → serve + smoke test → generate.

    medgen run --config configs/default.yaml
    python -m medgen.flows.retrain configs/default.yaml [KEY.PATH=VALUE ...]

With `orchestration.gpu_pool` set, train and merge run as the deployments `train/<pool>` and
`merge/<pool>` (e.g. on the Slurm pool); otherwise in this process.
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger

from medgen.config import PipelineConfig, load_config
from medgen.constants import FAILURE_FILE, FAILURE_KIND_LABEL
from medgen.errors import FailureKind, MedgenError, TrainOOM
from medgen.results import MergeResult, StageResult, TrainResult, read_failure
from medgen.tasks.stages import (export_task, generate_task, merge_shards_task, merge_task, prepare_task, serve_task,
                                 train_task)

class RemoteStageFailed(MedgenError):
    """A stage's deployment run did not complete; `kind` says why, as the job recorded it."""

    def __init__(self, message: str, kind: FailureKind):
        self.kind = kind
        super().__init__(message)


def run_remote(cfg: PipelineConfig, stage: str, result_type: type[StageResult]) -> StageResult:
    """Run a stage's deployment on the GPU pool and wait; outputs land in run_dir on the shared file system.

    Why a run failed comes as data: the stage's failure record (written by the task in the job), or, when
    Slurm ended the job before it could write one, the kind the worker put on the flow run's labels.
    """
    from prefect.deployments import run_deployment

    rung = cfg.rung()
    stage_dir = cfg.stage_dir(stage)
    (stage_dir / FAILURE_FILE).unlink(missing_ok=True)  # a stale record must not speak for this run
    fr = run_deployment(f"{stage}/{cfg.orchestration.gpu_pool}", parameters={"config": cfg.model_dump(mode="json")},
                        timeout=None, flow_run_name=f"{stage}-r{rung.r}-seq{rung.max_seq_length}")
    state = fr.state
    if state is not None and state.is_completed():
        return result_type.from_manifest(stage_dir)
    failure = read_failure(stage_dir)
    kind = failure.kind if failure else FailureKind(fr.labels.get(FAILURE_KIND_LABEL, FailureKind.OTHER.value))
    where = f"{stage} flow run {fr.name} ended {state.name if state else 'without a state'}"
    if stage == "train" and kind is FailureKind.OOM:
        raise TrainOOM(rung, where)
    raise RemoteStageFailed(f"{where} ({kind.value}); see its logs in the Prefect UI", kind)


def _train_attempt(cfg: PipelineConfig) -> TrainResult:
    if cfg.orchestration.gpu_pool:
        return run_remote(cfg, "train", TrainResult)
    # Each rung is its own task run, so the UI shows the parameters it really ran with.
    state = train_task(cfg.model_dump(mode="json"), return_state=True)
    return state.result()  # re-raises the task's exception, e.g. TrainOOM


def _merge(cfg: PipelineConfig) -> MergeResult:
    if cfg.orchestration.gpu_pool:
        return run_remote(cfg, "merge", MergeResult)
    return merge_task(cfg.model_dump(mode="json"))


@flow(name="retrain")
def retrain(config_path: str = "configs/default.yaml", overrides: list[str] | None = None,
            retry_attempt: int = 0, max_auto_retries: int = 0) -> dict:
    """Fine-tune the configured base into a discharge-record generator, export it and serve it.

    `retry_attempt`/`max_auto_retries` are set by the retry automation (flows/automations.py).
    """
    from medgen.train import walk_ladder

    logger = get_run_logger()
    if retry_attempt > max_auto_retries:
        # Completing (not failing) here is what ends a chain of automatic re-runs.
        logger.warning("retry %d exceeds max_auto_retries=%d: not running again", retry_attempt, max_auto_retries)
        return {"skipped": True, "retry_attempt": retry_attempt, "max_auto_retries": max_auto_retries}
    cfg = load_config(config_path, overrides or [])
    prepared = prepare_task(cfg.model_dump(mode="json"))
    logger.info("prepare: %s", prepared.counts)
    trained = walk_ladder(cfg, _train_attempt)
    logger.info("train: rung %s, val loss %s", trained.rung, trained.final_val_loss)
    final = cfg.with_rung(trained.rung)
    merged = _merge(final)
    summary = {
        "run_dir": str(cfg.run_path.resolve()),
        "prepare": {"counts": prepared.counts, "wall_s": prepared.wall_s},
        "train": trained.model_dump(mode="json", include={"rung", "steps", "final_train_loss", "final_val_loss",
                                                          "tokens_per_s", "wall_s", "adapter_dir"}),
        "merge": merged.model_dump(mode="json", include={"merged_dir", "wall_s"}),
    }
    if cfg.orchestration.stop_after == "merge":
        return summary
    exported = export_task(final.model_dump(mode="json"))
    summary["export"] = exported.model_dump(mode="json", include={"gguf", "outtype", "parity", "wall_s"})
    summary["serve"] = serve_task(final.model_dump(mode="json")).to_manifest()
    if cfg.orchestration.stop_after == "serve":
        return summary
    generated = generate_corpus(final)
    summary["generate"] = generated.model_dump(mode="json", include={"counts", "rejections_by_reason", "tokens_per_s",
                                                                     "records_per_s", "files", "wall_s"})
    return summary


def generate_corpus(cfg: PipelineConfig):
    """Generate `generate.n` records; with `generate.shards` > 1, one task run per shard, then a merge."""
    shards = cfg.generate.shards
    if shards == 1:
        return generate_task(cfg.model_dump(mode="json"))
    for k in range(shards):
        shard_cfg = cfg.model_copy(deep=True)
        shard_cfg.generate.shard = k
        generate_task(shard_cfg.model_dump(mode="json"))
    return merge_shards_task(cfg.model_dump(mode="json"))


if __name__ == "__main__":
    retrain(config_path=sys.argv[1] if len(sys.argv) > 1 else "configs/default.yaml", overrides=sys.argv[2:])
