"""The `slurm` worker against a real one-node Slurm cluster (started by .ci/run) and a real Prefect server."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgen.cluster import slurm

ROOT = Path(__file__).resolve().parents[2]
POOL = "slurm-test"
pytestmark = pytest.mark.slurm


@pytest.fixture
def server(cluster, api):
    return api


def _prefect(url, *args, check=True):
    env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True,
                          check=check, cwd=ROOT)


def _run(coro):
    return asyncio.run(coro)


async def _deploy(flow_name: str, entrypoint: str, deployment: str, job_variables: dict) -> str:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name(flow_name)
        await client.create_deployment(
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


def worker_verdict(fr, timeout: float = 120):
    """The run once the worker has said how its job ended: at a time limit the engine marks the run crashed
    on Slurm's SIGTERM at once, and the worker adds the job's state when it sees the job end."""
    from prefect.client.orchestration import get_client

    from medgen.core.constants import SLURM_STATE_LABEL

    deadline = time.time() + timeout
    with get_client(sync_client=True) as client:
        while SLURM_STATE_LABEL not in fr.labels and time.time() < deadline:
            time.sleep(1)
            fr = client.read_flow_run(fr.id)
    return fr


@pytest.mark.slow  # waits for Slurm's time limit (a minute at least)
def test_time_limit(worker, tmp_path):
    from medgen.core.constants import FAILURE_KIND_LABEL, SLURM_STATE_LABEL

    name = deploy("slurm-sleep", "sleep", tmp_path, time_limit="00:01:00", mem="1G")
    fr = worker_verdict(trigger(name, {"seconds": 600}, timeout=240))
    assert fr.state.is_crashed(), fr.state
    assert fr.labels[SLURM_STATE_LABEL] == "TIMEOUT" and fr.labels[FAILURE_KIND_LABEL] == "timeout"
    # Not the state message: the engine's own crash report, sent while Slurm waits KillWait for the job's
    # processes, can land after the worker's and replace it. The labels, set last, always say it.
    job = job_of(fr)
    assert f"Slurm job {job} ended TIMEOUT (the job hit its time limit" in worker.read_text()
    assert final_state(job) == "TIMEOUT"


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


# The orchestrator as on a login node: the retrain flow in its own process, reporting what it loaded.
ORCHESTRATOR = """
import json, sys
from medgen.flows.retrain import retrain
summary = retrain(config_path="configs/default.yaml", overrides=json.loads(sys.argv[1]))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "peft", "trl", "xllamacpp",
                                                             "llama_cpp", "bitsandbytes", "accelerate"))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the pytest parent's size.
hwm_kb = int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1])
print("ORCHESTRATOR " + json.dumps({"summary": summary, "heavy_modules": heavy, "peak_rss_mb": hwm_kb / 1024}))
"""


def _pool_deployments():
    """The stage deployments of prefect.yaml, each with its own job sizes, deployed to the test pool."""
    import yaml

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return [d for d in spec["deployments"] if d["entrypoint"].startswith("flows/pool.py:")]


@pytest.mark.slow
def test_whole_pipeline_runs_on_the_pool_and_the_orchestrator_stays_light(worker, server, tmp_path):
    """`retrain` with orchestration.gpu_pool: every stage a Slurm job (train walks the OOM ladder across jobs),
    the smoke test passes inside its job, and the orchestrating process loads no ML library."""
    import medgen.flows.pool as pool

    sizes = {}
    for d in _pool_deployments():
        fn = d["entrypoint"].split(":")[1]
        name = getattr(pool, fn).name
        sizes[name] = d["work_pool"]["job_variables"]
        # This node's shape instead of the production one, keeping each stage's own GPU request and time.
        jv = {**sizes[name], "partition": "gpu", "constraint": None, "cpus_per_task": 2, "mem": "6G",
              "output": str(tmp_path / "%j.out"), "setup_commands": [], "poll_interval_s": 1}
        entry = "tests/slurm_flows.py:train_oom_at_r8" if name == "train" else d["entrypoint"]
        _run(_deploy(name, entry, POOL, jv))
    assert {"prepare", "train", "merge", "export", "serve", "generate", "canaries", "evaluate"} <= set(sizes)
    assert sizes["evaluate"]["gres"] is None and sizes["prepare"]["gres"] is None and sizes["train"]["gres"]

    # Rows long enough for every compact record: a shorter rung cuts records before their end, and the model it
    # trains fails the smoke test's "no stop token" and markup checks far more often than the demo's.
    overrides = [f"run_dir={tmp_path / 'run'}", f"orchestration.gpu_pool={POOL}",
                 "train.fallback=[{r: 8, max_seq_length: 1024}, {r: 16, max_seq_length: 1024}]",
                 "generate.n=6", "generate.shards=2", "generate.max_attempts=1", "serve.parallel=2",
                 "generate.max_tokens=256"]
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run([sys.executable, "-c", ORCHESTRATOR, json.dumps(overrides)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.split("ORCHESTRATOR ", 1)[1])
    summary = report["summary"]
    assert report["heavy_modules"] == [], report["heavy_modules"]
    assert report["peak_rss_mb"] < 500, report["peak_rss_mb"]
    assert summary["train"]["rung"] == {"r": 16, "max_seq_length": 1024}
    assert summary["serve"]["smoke"]["passed"], summary["serve"]["smoke"]
    # The export job checked its GGUF (the demo's Q8_0) against the merged model and passed its out-type's gate.
    parity = summary["export"]["parity"]
    assert parity["top1_agreement"] >= parity["required_top1"] and parity["kl_mean"] <= parity["required_max_kl_mean"]

    run = tmp_path / "run"
    from medgen.core.config import load_config
    from medgen.generate import stage as generate

    cfg = load_config("configs/default.yaml", overrides)
    plan_ids = {r.id for r in generate.plan(cfg, cfg.generate)}
    ids = [json.loads(x)["id"] for f in ("records.jsonl", "rejected.jsonl")
           for x in (run / "generate" / f).read_text().splitlines()]
    assert sorted(ids) == sorted(plan_ids)
    assert (run / "evaluate" / "REPORT.md").is_file()

    runs = {r.name: r for r in _run(_runs_of_deployment(POOL))}
    assert runs["train-r8-seq1024"].state.is_failed()
    # prepare runs before the ladder, under the config's own rung; the stages after train under the rung that trained.
    expected = ["prepare-r16-seqauto", "train-r16-seq1024", "merge-r16-seq1024", "export-r16-seq1024",
                "serve-r16-seq1024", "generate-shard0-of-2", "generate-shard1-of-2", "evaluate-r16-seq1024"]
    jobs = {name: runs[name].infrastructure_pid for name in expected}
    for job in jobs.values():
        final_state(job)  # a flow run can complete a moment before its job has exited
    table = subprocess.run(["sacct", "-X", "-P", "-n", "-j", ",".join(jobs.values()), "-o",
                            "JobID,State,Elapsed,ReqTRES"], capture_output=True, text=True).stdout
    rows = {line.split("|")[0]: line.split("|") for line in table.splitlines()}
    # The GPU request is the deployments' (asserted above): this cluster's accounting does not track gres.
    print("\n".join(f"{name:22s} job {job:>5s} {rows[job][1]:10s} {rows[job][2]}" for name, job in jobs.items()))
    for name, job in jobs.items():
        assert rows[job][1] == "COMPLETED", (name, rows[job])

    # serve.keep_running: the job is the server; the orchestrator returns once it serves, leaving the job
    # running with its URL recorded, until `medgen serve --stop` cancels it.
    from prefect import flow

    from medgen.core.constants import SERVER_FILE
    from medgen.flows.retrain import run_stage

    cfg.serve.keep_running = True
    cfg.smoke.prompts = cfg.smoke.prompts[:1]
    served = flow(name="serve-kept-test")(run_stage)(cfg, "serve")
    info = json.loads((run / "serve" / SERVER_FILE).read_text())
    job = info["slurm_job_id"]
    assert served.kept_running and info["url"] == served.url and job
    assert slurm.job_state(job).state == "RUNNING"
    (tmp_path / "kept.yaml").write_text(cfg.to_yaml())
    stopped = subprocess.run([str(Path(sys.executable).parent / "medgen"), "serve", "--stop", "--config",
                              str(tmp_path / "kept.yaml")], capture_output=True, text=True, cwd=ROOT)
    assert stopped.returncode == 0 and f"Slurm job {job}" in stopped.stderr, stopped.stderr
    assert final_state(job) == "CANCELLED"
    assert not (run / "serve" / SERVER_FILE).exists()


async def _runs_of_deployment(name):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        return await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))


@pytest.mark.slow
def test_signalled_training_job_requeues_itself_and_resumes_in_the_same_flow_run(worker, server, tmp_path):
    """The two ways Slurm interrupts a training job: the warning before a time limit (`--signal=B:USR1@<grace>`,
    sent here with scancel), after which the job requeues itself, and a requeue (preemption, or `scontrol
    requeue`), which sends SIGTERM. Each time the job saves a checkpoint, and the same job and flow run
    resume from that step."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment

    from medgen.core.constants import CHECKPOINT_COMPLETE_FILE
    from medgen.data import prepare

    from conftest import tiny_config

    cfg = tiny_config(tmp_path / "run", "train.max_steps=16", "train.save_steps=2", "train.eval_steps=100")
    prepare.run(cfg)
    jv = {"partition": "gpu", "gres": "gpu:1", "cpus_per_task": 2, "mem": "6G", "time_limit": "00:15:00",
          "output": str(tmp_path / "%j.out"), "poll_interval_s": 1, "requeue": True, "signal": "B:USR1@60"}
    name = _run(_deploy("train", "flows/pool.py:train_flow", "requeue-test", jv))
    fr = run_deployment(name, parameters={"config": cfg.model_dump(mode="json")}, timeout=0)
    checkpoints = tmp_path / "run" / "train" / "checkpoints"
    deadline = time.monotonic() + 1200

    def newest_checkpoint() -> int:
        return max((int(m.parent.name.split("-")[1])
                    for m in checkpoints.glob(f"*/checkpoint-*/{CHECKPOINT_COMPLETE_FILE}")), default=0)

    def interrupt_after_checkpoint(past: int, command: list[str]) -> None:
        while newest_checkpoint() <= past:
            assert time.monotonic() < deadline, f"no checkpoint after step {past}"
            time.sleep(0.2)
        subprocess.run(command, check=True)
        # Slurm holds a requeued job back for a while (BeginTime); let it start again at once.
        while slurm.job_state(job).state != "PENDING":
            assert time.monotonic() < deadline, "the job was not requeued"
            time.sleep(0.5)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)

    with get_client(sync_client=True) as client:
        while not client.read_flow_run(fr.id).infrastructure_pid:
            assert time.monotonic() < deadline, "the worker never submitted the run"
            time.sleep(0.5)
        job = job_of(client.read_flow_run(fr.id))
        interrupt_after_checkpoint(0, ["scancel", "--signal=USR1", "--batch", job])
        first_stop = newest_checkpoint()
        interrupt_after_checkpoint(first_stop, ["scontrol", "requeue", job])
        while not (run := client.read_flow_run(fr.id)).state.is_final():
            assert time.monotonic() < deadline, f"flow run still {run.state.name}"
            time.sleep(1)
        logs = [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])))]
    assert run.state.is_completed(), run.state
    assert job_of(run) == job, "the same Slurm job ran again"
    assert any(f"stopped by SIGUSR1 at step {first_stop}" in m and f"requeued Slurm job {job}" in m for m in logs)
    assert any("stopped by SIGTERM at step" in m and f"Slurm job {job} is left to Slurm" in m for m in logs), logs
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=2" in shown, shown
    manifest = json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())
    assert manifest["steps"] == 16 and first_stop < manifest["resumed_from_step"] < 16, manifest
    assert (tmp_path / "run" / "train" / "adapter" / "adapter_model.safetensors").is_file()
    print(f"job {job}: stopped by SIGUSR1 at step {first_stop} and by scontrol requeue at step "
          f"{manifest['resumed_from_step']} of 16; each time requeued and resumed in the same flow run")
