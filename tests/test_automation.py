"""The retry-on-failure automation against a real Prefect server: bounded re-runs of a failing retrain."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_failed_retrain_is_rerun_at_most_n_times(api, tmp_path):
    live_server = api
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from medgen.flows.automations import create_retry_automation

    env = {**os.environ, "PREFECT_API_URL": live_server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "prefect", *a], env=env, cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True)
    run("work-pool", "create", "auto-test", "--type", "process")

    async def setup():
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("retrain")
            await client.create_deployment(
                flow_id=flow_id, name="auto-test", work_pool_name="auto-test", entrypoint="flows/retrain.py:retrain",
                path=str(ROOT), parameters={"config_path": "configs/default.yaml"},
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}])

    asyncio.run(setup())
    create_retry_automation("retrain/auto-test", max_retries=2, delay_s=0)
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "auto-test"], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    async def runs():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["auto-test"])))

    try:
        # A bad override fails every attempt the same way, as a persistent error would.
        from prefect.deployments import run_deployment

        run_deployment("retrain/auto-test", parameters={"overrides": ["train.lora.r=abc"]}, timeout=0)
        deadline = time.time() + 150
        while time.time() < deadline:
            found = asyncio.run(runs())
            if len(found) >= 4 and all(r.state.is_final() for r in found):
                break
            time.sleep(2)
        time.sleep(5)  # room for a (wrong) fifth run to appear
        found = sorted(asyncio.run(runs()), key=lambda r: r.created)
    finally:
        worker.terminate()
        worker.wait(30)
    states = [r.state.type.value for r in found]
    attempts = [r.parameters.get("retry_attempt", 0) for r in found]
    assert states == ["FAILED", "FAILED", "FAILED", "COMPLETED"], states
    assert attempts == [0, 1, 2, 3]
    assert all(r.parameters.get("overrides") == ["train.lora.r=abc"] for r in found[1:])
