"""The retry-on-failure automation against a real Prefect server: bounded re-runs of a failing retrain."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the retrain flow as a deployment, on a real Prefect server

ROOT = Path(__file__).resolve().parents[2]


def test_failed_retrain_is_rerun_at_most_n_times(api, tmp_path):
    live_server = api
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from medgen.flows.automations import create_retry_automation

    name = f"auto-test-{uuid.uuid4().hex[:8]}"  # a server kept between sessions holds earlier runs of other names

    env = {**os.environ, "PREFECT_API_URL": live_server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "prefect", *a], env=env, cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True)
    run("work-pool", "create", "auto-test", "--type", "process")

    async def setup():
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("retrain")
            await client.create_deployment(
                flow_id=flow_id, name=name, work_pool_name="auto-test", entrypoint="flows/retrain.py:retrain",
                path=str(ROOT), parameters={"config_path": "configs/default.yaml"},
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}])

    asyncio.run(setup())
    create_retry_automation(f"retrain/{name}", max_retries=2, delay_s=0)
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "auto-test"], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    async def runs():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))

    try:
        from prefect.deployments import run_deployment

        # Parameters that do not validate fail every attempt before the flow body runs: the automation's
        # own count must end the chain. A bad override fails inside the body with a config error, which a
        # rerun would repeat exactly: it is not retried at all.
        run_deployment(f"retrain/{name}", parameters={"overrides": {"not": "a list"}}, timeout=0)
        run_deployment(f"retrain/{name}", parameters={"overrides": ["train.lora.r=abc"]}, timeout=0)
        deadline = time.time() + 180
        while time.time() < deadline:
            found = asyncio.run(runs())
            if len(found) >= 4 and all(r.state.is_final() for r in found):
                break
            time.sleep(2)
        time.sleep(10)  # room for a (wrong) further run to appear
        found = sorted(asyncio.run(runs()), key=lambda r: r.created)
    finally:
        worker.terminate()
        worker.wait(30)
    bad_params = [r for r in found if isinstance(r.parameters.get("overrides"), dict)]
    bad_config = [r for r in found if r.parameters.get("overrides") == ["train.lora.r=abc"]]
    assert len(found) == len(bad_params) + len(bad_config) == 4
    assert [r.parameters.get("retry_attempt", 0) for r in bad_params] == [0, 1, 2]
    assert all(r.state.is_failed() for r in found), [r.state.type for r in found]
    assert len(bad_config) == 1 and bad_config[0].labels.get("medgen.failure_kind") == "config"
