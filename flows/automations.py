"""Retry-on-failure for the `retrain` deployment, as a Prefect automation.

    medgen automation --deployment retrain/weekly --max-retries 2

A failed (or crashed) run of the deployment triggers a new run with the same parameters and
`retry_attempt` one higher. The flow skips its work once `retry_attempt` exceeds `max_auto_retries`,
so a chain of failures ends after N re-runs instead of looping forever.
"""

from __future__ import annotations

import asyncio


def _from_failed_run(expression: str) -> dict:
    """A parameter computed from the failed run when the automation fires, keeping its JSON type."""
    return {"__prefect_kind": "json",
            "value": {"__prefect_kind": "jinja", "template": "{{ (" + expression + ") | tojson }}"}}


def automation_name(deployment: str) -> str:
    return f"medgen: retry failed {deployment}"


async def _create(deployment: str, max_retries: int, delay_s: int) -> str:
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    async with get_client() as client:
        dep = await client.read_deployment_by_name(deployment)
        name = automation_name(deployment)
        for existing in await client.read_automations_by_name(name):
            await client.delete_automation(existing.id)  # idempotent: one automation per deployment
    automation = Automation(
        name=name,
        description=f"Re-run {deployment} after a failure, at most {max_retries} time(s) in a row.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{dep.id}"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[RunDeployment(
            source="selected",
            deployment_id=dep.id,
            parameters={
                "config_path": _from_failed_run("flow_run.parameters.get('config_path') or 'configs/default.yaml'"),
                "overrides": _from_failed_run("flow_run.parameters.get('overrides') or []"),
                "retry_attempt": _from_failed_run("(flow_run.parameters.get('retry_attempt') or 0) + 1"),
                "max_auto_retries": max_retries,
            },
            schedule_after=timedelta(seconds=delay_s),
        )],
    )
    created = await automation.acreate()
    return str(created.id)


def create_retry_automation(deployment: str, max_retries: int = 2, delay_s: int = 60) -> str:
    """Create (or replace) the retry automation for `deployment` ('flow/deployment'); return its id."""
    if max_retries < 0:
        raise ValueError(f"max_retries: expected >= 0, got {max_retries}")
    return asyncio.run(_create(deployment, max_retries, delay_s))
