"""The `retrain` flow: prepare → train (OOM ladder) → merge → export → serve + smoke test → generate →
canaries → evaluate → release (when the corpus passes the gate).

    medgen run --config configs/default.yaml
    python -m medgen.flows.retrain configs/default.yaml [KEY.PATH=VALUE ...]

With `orchestration.gpu_pool` set, every stage runs as the deployment `<stage>/<pool>` (flows/pool.py), e.g.
a Slurm job; this flow then moves manifests and decisions only and never imports torch, transformers or
llama.cpp, so it fits a login node. Otherwise each stage is a task in this process.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from prefect import flow, get_run_logger

from medgen.core.config import PipelineConfig, load_config
from medgen.core.constants import FAILURE_FILE, FAILURE_KIND_LABEL, MANIFEST_FILE, SERVER_FILE, SLURM_STATE_LABEL
from medgen.core.errors import FailureKind, RemoteStageFailed, TrainOOM, failure_kind
from medgen.core.lock import run_lock
from medgen.core.registry import STAGES, Stage
from medgen.core.registry import stage as registered
from medgen.core.results import GenerateResult, StageResult, read_failure
from medgen.tasks.stages import TASKS, merge_shards_task, release_task
from medgen.train.ladder import walk_ladder

POLL_S = 2.0  # how often a waiting orchestrator asks the server about its remote runs
WORKER_VERDICT_WAIT_S = 120.0  # how long a crashed run's job end state may take to reach its labels

def _no_worker(client, pool: str) -> bool:
    from prefect.client.schemas.objects import WorkerStatus

    return not any(w.status == WorkerStatus.ONLINE for w in client.read_workers_for_work_pool(pool))


def _wait(client, fr, cfg: PipelineConfig, ready: Callable[[], bool] | None):
    """Poll a run until it ends (or, for a kept server, until it is serving); fail fast when nobody runs it."""
    pool, waited_since = cfg.orchestration.gpu_pool, time.monotonic()
    while fr.state is None or not fr.state.is_final():
        if ready is not None and ready():
            return fr
        if (fr.state is None or fr.state.is_scheduled() or fr.state.is_pending()) and \
                time.monotonic() - waited_since > cfg.orchestration.worker_wait_s and _no_worker(client, pool):
            from prefect.states import Cancelled

            client.set_flow_run_state(fr.id, Cancelled(message="no worker picked it up"), force=True)
            raise RemoteStageFailed(
                f"flow run {fr.name} waited {cfg.orchestration.worker_wait_s:.0f} s and no worker polls work pool "
                f"{pool!r}: start one with `prefect worker start --pool {pool}` (orchestration.worker_wait_s)",
                FailureKind.OTHER)
        if fr.state is not None and fr.state.is_running():
            waited_since = time.monotonic()
        time.sleep(POLL_S)
        fr = client.read_flow_run(fr.id)
    return fr


def _worker_verdict(client, fr, wait_s: float = WORKER_VERDICT_WAIT_S):
    """A run that crashed without a failure record was ended from outside (Slurm's SIGTERM at a time limit or
    preemption makes the engine mark it crashed at once); the worker labels it with the job's end state when
    it sees the job end, a poll later. Wait for that label, which says whether the rung may resume."""
    deadline = time.monotonic() + wait_s
    while fr.state.is_crashed() and SLURM_STATE_LABEL not in fr.labels and time.monotonic() < deadline:
        time.sleep(POLL_S)
        fr = client.read_flow_run(fr.id)
    return fr


def job_variables(cfg: PipelineConfig, stage: str) -> dict:
    """What one run of a stage asks of Slurm beyond its deployment: for data-parallel training, every node
    (one torchrun each, which starts a rank per GPU) and every GPU on it."""
    tc = cfg.train
    if stage != "train" or tc.launcher != "torchrun":
        return {}
    return {"nodes": tc.nnodes, "ntasks_per_node": 1, "gres": f"gpu:{tc.nproc_per_node}"}


def run_remote(cfgs: list[PipelineConfig], stage: str) -> list[StageResult]:
    """Run a stage's deployment on the GPU pool once per config, all at once, and wait for every run.

    Outputs land in run_dir on the shared file system. Why a run failed comes as data: the stage's
    failure record (written by the task in the job) rebuilt into the error it raised there, or, when Slurm
    ended the job before it could write one, the kind the worker put on the flow run's labels.
    """
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    spec = registered(stage)
    stage_dir = cfgs[0].stage_dir(stage)
    # A stale failure record must not speak for these runs (a stale manifest cannot: a job that runs its stage
    # removes it first, medgen/core/skip.py).
    (stage_dir / FAILURE_FILE).unlink(missing_ok=True)
    ready = None
    if stage == "serve" and cfgs[0].serve.keep_running:
        # The job *is* the kept server: it is done with us once it serves, not when it ends.
        (stage_dir / SERVER_FILE).unlink(missing_ok=True)

        def ready() -> bool:
            return (stage_dir / SERVER_FILE).is_file() and (stage_dir / MANIFEST_FILE).is_file()
    submitted = [run_deployment(f"{stage}/{cfg.orchestration.gpu_pool}", timeout=0, flow_run_name=spec.describe_run(cfg),
                                parameters={"config": cfg.model_dump(mode="json")},
                                job_variables=job_variables(cfg, stage)) for cfg in cfgs]
    with get_client(sync_client=True) as client:
        finished = [_wait(client, fr, cfg, ready) for fr, cfg in zip(submitted, cfgs)]
        failed = [fr for fr in finished if fr.state.is_final() and not fr.state.is_completed()]
        if not failed:
            return [spec.result.from_manifest(spec.out_dir(cfg)) for cfg in cfgs]
        failure = read_failure(stage_dir)
        fr = failed[0] if failure is not None else _worker_verdict(client, failed[0])
    where = f"{stage} flow run {fr.name} ended {fr.state.name}"
    if failure is not None:
        raise failure.to_exception(where)
    kind = FailureKind(fr.labels.get(FAILURE_KIND_LABEL, FailureKind.OTHER.value))
    if stage == "train" and kind is FailureKind.OOM:
        raise TrainOOM(cfgs[0].rung(), where)
    raise RemoteStageFailed(f"{where} ({kind.value}); see its logs in the Prefect UI", kind)


def run_stage(cfg: PipelineConfig, stage: str) -> StageResult:
    """One stage: a deployment run on the pool, or a task here. Either way, the stage's typed result."""
    if cfg.orchestration.gpu_pool:
        return run_remote([cfg], stage)[0]
    # Each call is its own task run, so the UI shows the parameters it really ran with (e.g. each rung).
    return TASKS[stage](cfg.model_dump(mode="json"), return_state=True).result()  # re-raises, e.g. TrainOOM


@contextlib.contextmanager
def _failure_kind_labelled() -> Iterator[None]:
    """Put why the run failed on it as a label, before Prefect marks it failed (the retry automation reads the
    label the moment the run fails, and does not rerun failures that would repeat identically)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    try:
        yield
    except BaseException as exc:
        with get_client(sync_client=True) as client:
            client.update_flow_run_labels(flow_run.id, {FAILURE_KIND_LABEL: failure_kind(exc).value})
        raise


@flow(name="retrain")
def retrain(config_path: str = "configs/default.yaml", overrides: list[str] | None = None, force: bool = False,
            retry_attempt: int = 0, max_auto_retries: int = 0) -> dict:
    """Fine-tune the configured base into a discharge-record generator, export it, serve it, generate and
    evaluate a corpus, and release the model when the corpus passes the gate.

    A stage whose outputs were made from the same inputs is skipped (medgen/core/skip.py); `force` redoes every
    stage. `retry_attempt`/`max_auto_retries` are set by the retry automation (flows/automations.py), which
    enforces the limit; they are parameters so that the UI shows which attempt a run is.
    """
    if retry_attempt:
        get_run_logger().info("automatic retry %d of at most %d", retry_attempt, max_auto_retries)
    from prefect.runtime import flow_run

    with _failure_kind_labelled():
        cfg = load_config(config_path, [*(overrides or []), *(["orchestration.force=true"] if force else [])])
        with run_lock(cfg.run_path, f"retrain flow run {flow_run.name}", cfg.orchestration.lock_wait_s):
            return _pipeline(cfg)


def _pipeline(cfg: PipelineConfig) -> dict:
    """Every registered stage in order, each driven as the registry says, up to orchestration.stop_after."""
    logger = get_run_logger()
    summary: dict = {"run_dir": str(cfg.run_path.resolve()), "skipped": []}
    final = cfg  # the config of the rung that trained, once train has run
    for spec in STAGES:
        if not spec.enabled(final):
            continue
        result = _drive(spec, cfg, final)
        if spec.drive == "ladder":
            final = cfg.with_rung(result.rung)
        if result.skipped:
            summary["skipped"].append(spec.name)
        summary[spec.name] = result.model_dump(mode="json", include=set(spec.summary))
        logger.info("%s: %s", spec.name, "skipped (made from these inputs)" if result.skipped else "done")
        if spec.name == "serve" and result.kept_running:
            logger.info("serving at %s; `medgen serve --stop` ends it (%s)", result.url,
                        final.stage_dir("serve") / SERVER_FILE)
        if spec.name == cfg.orchestration.stop_after and spec is not STAGES[-1]:
            return summary
    if cfg.orchestration.release:
        summary["release"] = release_task(final.model_dump(mode="json"))
    return summary


def _drive(spec: Stage, cfg: PipelineConfig, final: PipelineConfig) -> StageResult:
    if spec.drive == "ladder":
        # Here a signal means stop; on the pool it means the job's time or node ran out, and the rung resumes.
        return walk_ladder(cfg, lambda c: run_stage(c, spec.name),
                           cfg.train.max_resumes if cfg.orchestration.gpu_pool else 0)
    if spec.drive == "shards":
        return generate_corpus(final)
    return run_stage(final, spec.name)


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
        results = run_remote(shard_cfgs, "generate")
    else:
        results = [TASKS["generate"](c.model_dump(mode="json")) for c in shard_cfgs]
    return results[0] if len(results) == 1 else merge_shards_task(cfg.model_dump(mode="json"))


if __name__ == "__main__":
    retrain(config_path=sys.argv[1] if len(sys.argv) > 1 else "configs/default.yaml", overrides=sys.argv[2:])
