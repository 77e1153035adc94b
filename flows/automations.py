"""Retry-on-failure for the `retrain` deployment, as a Prefect automation.

    medgen automation --deployment retrain/weekly --max-retries 2

A failed (or crashed) run of the deployment triggers a new run with the same parameters and
`retry_attempt` one higher. The automation itself enforces the limit, reading the failed run's own
record: past `max_retries`, or when the run's `medgen.failure_kind` label says the failure would repeat
identically (bad config or data, a quality gate, every rung out of memory), its parameters do not render
and Prefect creates no run. So the chain ends even when a run fails before the flow body ever runs
(parameters that do not validate, an import error, a crashed worker).
"""

from __future__ import annotations

import asyncio

from medgen.core.constants import FAILURE_KIND_LABEL
from medgen.core.errors import FailureKind

# Failures that a rerun with the same parameters would repeat exactly (a full disk stays full until someone frees it).
NOT_RETRIED = (FailureKind.CONFIG, FailureKind.DATA, FailureKind.GATE, FailureKind.OOM, FailureKind.STORAGE)


def _from_failed_run(expression: str) -> dict:
    """A parameter computed from the failed run when the automation fires, keeping its JSON type."""
    return {"__prefect_kind": "json",
            "value": {"__prefect_kind": "jinja", "template": "{{ (" + expression + ") | tojson }}"}}


def _next_attempt(max_retries: int) -> dict:
    """The failed run's attempt + 1, or text that is not JSON, which fails the action: no run is created."""
    final = ", ".join(repr(k.value) for k in NOT_RETRIED)
    template = ("{% set attempt = (flow_run.parameters.get('retry_attempt') or 0) + 1 %}"
                f"{{% if attempt > {max_retries} or (flow_run.labels or {{}}).get('{FAILURE_KIND_LABEL}') in [{final}] %}}"
                "not retried{% else %}{{ attempt | tojson }}{% endif %}")
    return {"__prefect_kind": "json", "value": {"__prefect_kind": "jinja", "template": template}}


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
                "retry_attempt": _next_attempt(max_retries),
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
