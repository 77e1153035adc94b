"""The `slurm` worker against a real one-node Slurm cluster (started by .ci/run) and a real Prefect server."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgen import slurm

ROOT = Path(__file__).resolve().parent.parent
POOL = "slurm-test"
pytestmark = pytest.mark.slurm


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture(scope="module")
def cluster():
    if not _cluster_up():
        pytest.skip("no Slurm cluster answers here; .ci/run starts one with deployments/slurm/local-cluster.sh start")


@pytest.fixture
def server(cluster, api):
    return api


def _prefect(url, *args, check=True):
    env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True,
                          check=check, cwd=ROOT)


@pytest.fixture(scope="module")
def slurm_worker(cluster, live_server, tmp_path_factory):
    """`prefect work-pool create --type slurm` and `prefect worker start` find the worker through its entry point."""
    server = live_server
    _prefect(server, "work-pool", "delete", POOL, check=False)
    created = _prefect(server, "work-pool", "create", POOL, "--type", "slurm")
    assert POOL in created.stdout + created.stderr
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
                                 "--name", "slurm-test-worker"], env=env, stdout=f, stderr=subprocess.STDOUT,
                                cwd=ROOT, start_new_session=True)
    yield log
    proc.terminate()
    proc.wait(30)


@pytest.fixture
def worker(slurm_worker, server):
    """The module's slurm worker's log, with this test's client pointed at its server."""
    return slurm_worker


def _run(coro):
    return asyncio.run(coro)


async def _deploy(flow_name: str, entrypoint: str, deployment: str, job_variables: dict) -> str:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name(flow_name)
        dep_id = await client.create_deployment(
            flow_id=flow_id, name=deployment, work_pool_name=POOL, entrypoint=entrypoint, path=str(ROOT),
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
            job_variables=job_variables)
    return f"{flow_name}/{deployment}"


def deploy(flow_name, fn, tmp_path, **job_variables):
    job_variables.setdefault("output", str(tmp_path / "%j.out"))
    job_variables.setdefault("cpus_per_task", 1)  # the test node has 2 CPUs; the pool default asks for 4
    job_variables.setdefault("poll_interval_s", 1)
    return _run(_deploy(flow_name, f"tests/slurm_flows.py:{fn}", "test", job_variables))


def trigger(name, parameters=None, timeout=300):
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters or {}, timeout=timeout, poll_interval=1)


def final_state(job: str, timeout: float = 60) -> str:
    """The job's terminal state (the flow run can finish a moment before its job does)."""
    deadline = time.time() + timeout
    while True:
        state = slurm.job_state(job)
        if state.terminal or time.time() > deadline:
            return state.state
        time.sleep(0.5)


def job_of(flow_run) -> str:
    assert flow_run.infrastructure_pid, "the worker must record the Slurm job id on the flow run"
    return flow_run.infrastructure_pid


def test_success(worker, tmp_path):
    name = deploy("slurm-ok", "ok", tmp_path, partition="gpu", gres="gpu:1", time_limit="00:05:00", mem="1G")
    fr = trigger(name, {"x": 21})
    assert fr.state.is_completed(), fr.state
    job = job_of(fr)
    assert final_state(job) == "COMPLETED"
    log = (tmp_path / f"{job}.out").read_text()
    assert f"Slurm job {job}" in log and "gpus=0" in log  # the fake GPU was allocated
    assert f"Submitted Slurm job {job}" in worker.read_text()


def test_job_failure_reports_exit_code_and_log_tail(worker, tmp_path):
    # A broken setup line (a missing module, say) fails the job before the flow starts.
    name = deploy("slurm-ok", "ok", tmp_path, time_limit="00:05:00", mem="1G",
                  setup_commands=["echo 'module: cuda/12.1 not found' >&2", "exit 3"])
    fr = trigger(name)
    assert fr.state.is_crashed(), fr.state
    job = job_of(fr)
    assert final_state(job) == "FAILED" and slurm.job_state(job).exit_code == "3:0"
    assert f"Slurm job {job} ended FAILED" in fr.state.message
    assert "exit code 3:0" in fr.state.message and "module: cuda/12.1 not found" in fr.state.message


def test_flow_exception_fails_the_run(worker, tmp_path):
    name = deploy("slurm-fail", "fail", tmp_path, time_limit="00:05:00", mem="1G")
    fr = trigger(name)
    assert fr.state.is_failed(), fr.state
    assert "deliberate failure for the test" in fr.state.message
    # Prefect's runner records the failure on the run and exits cleanly, so the job itself completes.
    assert final_state(job_of(fr)) == "COMPLETED"


def test_time_limit(worker, tmp_path):
    name = deploy("slurm-sleep", "sleep", tmp_path, time_limit="00:01:00", mem="1G")
    fr = trigger(name, {"seconds": 600}, timeout=240)
    assert fr.state.is_crashed(), fr.state
    assert "TIMEOUT" in fr.state.message and "time limit" in fr.state.message
    assert final_state(job_of(fr)) == "TIMEOUT"


def test_memory_kill_maps_to_out_of_memory(worker, tmp_path):
    name = deploy("slurm-hog", "hog", tmp_path, time_limit="00:05:00", mem="200M")
    fr = trigger(name, {"mb": 800})
    assert not fr.state.is_completed(), fr.state
    assert "OUT_OF_MEMORY" in fr.state.message, fr.state.message


def test_cancel_from_prefect_scancels_the_job(worker, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    name = deploy("slurm-sleep", "sleep", tmp_path, time_limit="00:05:00", mem="1G")
    fr = trigger(name, {"seconds": 600}, timeout=0)

    async def wait_running_then_cancel():
        async with get_client() as client:
            for _ in range(120):
                run = await client.read_flow_run(fr.id)
                # The flow itself must be running (sleeping): a run cancelled while its executor is still
                # starting is marked cancelled by the executor, and the job then exits cleanly without scancel.
                if (run.infrastructure_pid and run.state is not None and run.state.is_running()
                        and slurm.job_state(run.infrastructure_pid).state == "RUNNING"):
                    break
                await asyncio.sleep(1)
            else:
                pytest.fail("job never started running")
            await client.set_flow_run_state(fr.id, Cancelling(), force=True)
            for _ in range(90):
                if slurm.job_state(run.infrastructure_pid).state == "CANCELLED":
                    return run.infrastructure_pid
                await asyncio.sleep(1)
            pytest.fail("job was not cancelled")

    job = _run(wait_running_then_cancel())
    assert "scancel" in worker.read_text() and job in worker.read_text()


def test_retrain_runs_gpu_stages_as_slurm_jobs_and_walks_the_ladder(worker, server, tmp_path):
    """retrain triggered through the API; train and merge run as Slurm jobs; rank 8 OOMs, rank 4 completes."""
    from conftest import TINY

    jv = dict(partition="gpu", gres="gpu:1", time_limit="00:20:00", mem="6G", output=str(tmp_path / "%j.out"),
              poll_interval_s=1, cpus_per_task=2)
    _run(_deploy("train", "tests/slurm_flows.py:train_oom_at_r8", POOL, jv))
    _run(_deploy("merge", "flows/gpu.py:merge_flow", POOL, jv))
    # The orchestrating flow on a process pool, as on a login node.
    _prefect(server, "work-pool", "delete", "local-test", check=False)
    _prefect(server, "work-pool", "create", "local-test", "--type", "process")

    async def deploy_retrain():
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            flow_id = await client.create_flow_from_name("retrain")
            await client.create_deployment(
                flow_id=flow_id, name="test", work_pool_name="local-test", entrypoint="flows/retrain.py:retrain",
                path=str(ROOT),
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}])

    _run(deploy_retrain())
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    log = tmp_path / "process-worker.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "local-test"],
                                env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        overrides = [f"run_dir={tmp_path / 'run'}", *TINY, f"orchestration.gpu_pool={POOL}",
                     "orchestration.stop_after=merge",
                     "train.fallback=[{r: 8, max_seq_length: 128}, {r: 4, max_seq_length: 96}]"]
        fr = trigger("retrain/test", {"config_path": "configs/default.yaml", "overrides": overrides}, timeout=900)
    finally:
        proc.terminate()
        proc.wait(30)
    assert fr.state.is_completed(), (fr.state, log.read_text()[-3000:])
    train = json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())
    assert train["rung"] == {"r": 4, "max_seq_length": 96} and train["steps"] == 2
    assert (tmp_path / "run" / "merge" / "merged" / "model.safetensors").is_file()

    runs = {r.name: r for r in _run(_runs_of_deployment(POOL))}
    assert runs["train-r8-seq128"].state.is_failed() and runs["train-r4-seq96"].state.is_completed()
    assert runs["merge-r4-seq96"].state.is_completed()
    for name in ("train-r4-seq96", "merge-r4-seq96"):
        assert final_state(runs[name].infrastructure_pid) == "COMPLETED"


def test_generate_shards_run_as_slurm_jobs_and_merge_to_the_plan(worker, server, trained, tmp_path):
    """Two shards of generate as two Slurm jobs, each with its own llama.cpp server; the merge has the plan's ids."""
    from medgen import export, generate, merge

    cfg, _ = trained
    cfg = cfg.model_copy(deep=True)
    merge.run(cfg)
    cfg.export.verify = False
    export.run(cfg)
    cfg.generate.n, cfg.generate.shards, cfg.generate.max_attempts, cfg.generate.max_tokens = 6, 2, 1, 24
    cfg.serve.parallel = 2
    jv = dict(partition="gpu", gres="gpu:1", time_limit="00:10:00", mem="4G", output=str(tmp_path / "%j.out"),
              poll_interval_s=1, cpus_per_task=1)
    _run(_deploy("generate", "flows/gpu.py:generate_flow", POOL, jv))
    cfg.orchestration.gpu_pool = POOL

    from prefect import flow

    from medgen.flows.retrain import generate_corpus

    merged = flow(name="generate-corpus-test")(generate_corpus)(cfg)
    plan_ids = {r.id for r in generate.plan(cfg, cfg.generate)}
    valid = [json.loads(x)["id"] for x in (cfg.stage_dir("generate") / "records.jsonl").read_text().splitlines()]
    rejected = [json.loads(x)["id"] for x in (cfg.stage_dir("generate") / "rejected.jsonl").read_text().splitlines()]
    assert sorted(valid + rejected) == sorted(plan_ids) and merged.counts["planned"] == 6
    for k in range(2):
        shard = generate.GenerateResult.from_manifest(cfg.stage_dir("generate") / f"shard-{k}-of-2")
        assert shard.counts["planned"] == 3 and shard.backend == "llamacpp"
    jobs = {r.name: r for r in _run(_runs_of_deployment(POOL)) if r.name.startswith("generate-shard")}
    assert {"generate-shard0-of-2", "generate-shard1-of-2"} <= set(jobs)
    for name in ("generate-shard0-of-2", "generate-shard1-of-2"):
        assert final_state(jobs[name].infrastructure_pid) == "COMPLETED"


async def _runs_of_deployment(name):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        return await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
