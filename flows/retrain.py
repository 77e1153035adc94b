"""The `retrain` flow: prepare → train (OOM ladder) → merge → export → serve + smoke test → generate →
evaluate → release (when the corpus passes the gate).

    medgen run --config configs/default.yaml
    python -m medgen.flows.retrain configs/default.yaml [KEY.PATH=VALUE ...]

With `orchestration.gpu_pool` set, train and merge run as the deployments `train/<pool>` and
`merge/<pool>` (e.g. on the Slurm pool); otherwise in this process.
"""

from __future__ import annotations

import sys
import time

from prefect import flow, get_run_logger

from medgen.config import PipelineConfig, load_config
from medgen.constants import FAILURE_FILE, FAILURE_KIND_LABEL
from medgen.errors import FailureKind, MedgenError, TrainOOM
from medgen.generate import GenerateResult, out_dir_for
from medgen.results import MergeResult, StageResult, TrainResult, read_failure
from medgen.tasks.stages import (evaluate_task, export_task, generate_task, merge_shards_task, merge_task,
                                 prepare_task, release_task, serve_task, train_task)

POLL_S = 2.0  # how often a waiting orchestrator asks the server about its remote runs


class RemoteStageFailed(MedgenError):
    """A stage's deployment run did not complete; `kind` says why, as the job recorded it."""

    def __init__(self, message: str, kind: FailureKind):
        self.kind = kind
        super().__init__(message)


def _run_name(cfg: PipelineConfig, stage: str) -> str:
    if stage == "generate":
        return f"generate-shard{cfg.generate.shard}-of-{cfg.generate.shards}"
    rung = cfg.rung()
    return f"{stage}-r{rung.r}-seq{rung.max_seq_length}"


def _result_dir(cfg: PipelineConfig, stage: str):
    return out_dir_for(cfg, cfg.generate) if stage == "generate" else cfg.stage_dir(stage)


def run_remote(cfgs: list[PipelineConfig], stage: str, result_type: type[StageResult]) -> list[StageResult]:
    """Run a stage's deployment on the GPU pool once per config, all at once, and wait for every run.

    Outputs land in run_dir on the shared file system. Why a run failed comes as data: the stage's
    failure record (written by the task in the job), or, when Slurm ended the job before it could write
    one, the kind the worker put on the flow run's labels.
    """
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    stage_dir = cfgs[0].stage_dir(stage)
    (stage_dir / FAILURE_FILE).unlink(missing_ok=True)  # a stale record must not speak for these runs
    submitted = []
    for cfg in cfgs:
        submitted.append(run_deployment(f"{stage}/{cfg.orchestration.gpu_pool}", timeout=0,
                                        flow_run_name=_run_name(cfg, stage),
                                        parameters={"config": cfg.model_dump(mode="json")}))
    finished = []
    with get_client(sync_client=True) as client:
        for fr in submitted:
            while fr.state is None or not fr.state.is_final():
                time.sleep(POLL_S)
                fr = client.read_flow_run(fr.id)
            finished.append(fr)
    failed = [fr for fr in finished if not fr.state.is_completed()]
    if not failed:
        return [result_type.from_manifest(_result_dir(cfg, stage)) for cfg in cfgs]
    fr = failed[0]
    failure = read_failure(stage_dir)
    kind = failure.kind if failure else FailureKind(fr.labels.get(FAILURE_KIND_LABEL, FailureKind.OTHER.value))
    where = f"{stage} flow run {fr.name} ended {fr.state.name}"
    if stage == "train" and kind is FailureKind.OOM:
        raise TrainOOM(cfgs[0].rung(), where)
    raise RemoteStageFailed(f"{where} ({kind.value}); see its logs in the Prefect UI", kind)


def _train_attempt(cfg: PipelineConfig) -> TrainResult:
    if cfg.orchestration.gpu_pool:
        return run_remote([cfg], "train", TrainResult)[0]
    # Each rung is its own task run, so the UI shows the parameters it really ran with.
    state = train_task(cfg.model_dump(mode="json"), return_state=True)
    return state.result()  # re-raises the task's exception, e.g. TrainOOM


def _merge(cfg: PipelineConfig) -> MergeResult:
    if cfg.orchestration.gpu_pool:
        return run_remote([cfg], "merge", MergeResult)[0]
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
    if cfg.orchestration.stop_after == "generate":
        return summary
    evaluated = evaluate_task(final.model_dump(mode="json"))
    summary["evaluate"] = evaluated.model_dump(mode="json", include={"gate", "files", "wall_s"})
    if cfg.orchestration.release:
        summary["release"] = release_task(final.model_dump(mode="json"))
    return summary


def generate_corpus(cfg: PipelineConfig) -> GenerateResult:
    """Generate `generate.n` records; with `generate.shards` > 1, one run per shard, then a merge.

    On the GPU pool every shard is its own job, with its own model server, and the shards run at once.
    """
    shard_cfgs = []
    for k in range(cfg.generate.shards):
        shard_cfg = cfg.model_copy(deep=True)
        shard_cfg.generate.shard = k
        shard_cfgs.append(shard_cfg)
    if cfg.orchestration.gpu_pool:
        results = run_remote(shard_cfgs, "generate", GenerateResult)
    else:
        results = [generate_task(c.model_dump(mode="json")) for c in shard_cfgs]
    return results[0] if len(results) == 1 else merge_shards_task(cfg.model_dump(mode="json"))


if __name__ == "__main__":
    retrain(config_path=sys.argv[1] if len(sys.argv) > 1 else "configs/default.yaml", overrides=sys.argv[2:])
