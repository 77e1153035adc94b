"""The `retrain` flow: prepare → train (OOM ladder) → merge → export → serve + smoke test.

    medgen run --config configs/default.yaml
    python -m flows.retrain configs/default.yaml [KEY.PATH=VALUE ...]

With `orchestration.gpu_pool` set, train and merge run as the deployments `train/<pool>` and
`merge/<pool>` (e.g. on the Slurm pool); otherwise in this process.
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger

from medgen.config import PipelineConfig, Rung, load_config
from medgen.errors import TrainOOM
from medgen.io import read_manifest
from tasks.stages import export_task, merge_task, prepare_task, serve_task, train_task

# Words by which a failed remote run says it ran out of memory: CUDA OOM raised in the flow (TrainOOM),
# or Slurm killing the job (OUT_OF_MEMORY).
OOM_MARKERS = ("TrainOOM", "out of memory", "OUT_OF_MEMORY")


def run_remote(deployment: str, cfg: PipelineConfig, stage: str) -> dict:
    """Run a stage's deployment and wait; its outputs land in run_dir on the shared file system."""
    from prefect.deployments import run_deployment

    rung = {"r": cfg.train.lora.r, "max_seq_length": cfg.train.max_seq_length}
    fr = run_deployment(deployment, parameters={"config": cfg.model_dump(mode="json")}, timeout=None,
                        flow_run_name=f"{stage}-r{rung['r']}-seq{rung['max_seq_length']}")
    state = fr.state
    if state is None or not state.is_completed():
        message = (state.message if state else "") or ""
        if stage == "train" and any(m in message for m in OOM_MARKERS):
            raise TrainOOM(rung, f"flow run {fr.name}: {message.splitlines()[0] if message else ''}")
        raise RuntimeError(f"{deployment} flow run {fr.name} ended {state.name if state else 'without a state'}: "
                           f"{message}")
    return read_manifest(cfg.stage_dir(stage))


def _train_attempt(cfg: PipelineConfig) -> dict:
    if cfg.orchestration.gpu_pool:
        return run_remote(f"train/{cfg.orchestration.gpu_pool}", cfg, "train")
    # Each rung is its own task run, so the UI shows the parameters it really ran with.
    state = train_task(cfg.model_dump(mode="json"), return_state=True)
    return state.result()  # re-raises the task's exception, e.g. TrainOOM


def _merge(cfg: PipelineConfig) -> dict:
    if cfg.orchestration.gpu_pool:
        return run_remote(f"merge/{cfg.orchestration.gpu_pool}", cfg, "merge")
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
    logger.info("prepare: %s", prepared["counts"])
    trained = walk_ladder(cfg, _train_attempt)
    logger.info("train: rung %s, val loss %s", trained["rung"], trained["final_val_loss"])
    final = cfg.with_rung(Rung(**trained["rung"]))
    merged = _merge(final)
    summary = {
        "run_dir": str(cfg.run_path.resolve()),
        "prepare": {"counts": prepared["counts"], "wall_s": prepared["wall_s"]},
        "train": {k: trained[k] for k in ("rung", "steps", "final_train_loss", "final_val_loss",
                                          "tokens_per_s", "wall_s", "adapter_dir")},
        "merge": {k: merged[k] for k in ("merged_dir", "wall_s")},
    }
    if cfg.orchestration.stop_after == "merge":
        return summary
    exported = export_task(final.model_dump(mode="json"))
    summary["export"] = {k: exported[k] for k in ("gguf", "outtype", "parity", "wall_s")}
    summary["serve"] = serve_task(final.model_dump(mode="json"))
    return summary


if __name__ == "__main__":
    retrain(config_path=sys.argv[1] if len(sys.argv) > 1 else "configs/default.yaml", overrides=sys.argv[2:])
