"""Every registered stage as its own deployable flow, `<stage>_flow`, so that with `orchestration.gpu_pool` set each
runs as a job on that work pool (a Slurm GPU node; a CPU-sized job for prepare and evaluate) and the
orchestrating `retrain` flow on the login node only moves manifests and decisions.

    medgen deployments                # prefect.yaml: <stage>/slurm-gpu for each stage, sized by the registry
    prefect --no-prompt deploy --all

Each takes the whole resolved config, so a job runs exactly what the orchestrator decided. A stage runs its task
and returns the manifest; train and serve have their own bodies below (requeue on a signal; a kept server).
"""

from __future__ import annotations

import os
import signal
from typing import Callable

from prefect import Flow, flow, get_run_logger
from prefect.logging.handlers import APILogHandler

from medgen.cluster import slurm
from medgen.core.constants import EXIT_REQUEUE
from medgen.core.errors import TrainInterrupted
from medgen.core.registry import STAGES, Stage
from medgen.tasks.stages import TASKS


def _train(config: dict) -> dict:
    """Train one rung of the OOM ladder (a whole config, as resolved by the `retrain` flow).

    Stopped by a signal, it has saved a checkpoint. In a job submitted with --requeue it then leaves the flow
    run running and exits, so that the same job, requeued, runs this same flow run again and resumes, while
    the orchestrator simply goes on waiting: after SIGUSR1 (the time-limit warning) it asks Slurm for the
    requeue itself, up to train.max_resumes times; after SIGTERM (preemption, `scontrol requeue`) Slurm
    requeues it, or ends it and the worker says why. Otherwise it fails, and the orchestrator decides
    (flows/retrain.py).
    """
    try:
        return TASKS["train"](config).to_manifest()
    except TrainInterrupted as e:
        # Slurm's own SIGTERM follows a requeue: it must not turn this run into a crashed one on its way out.
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        requeued = os.environ.get(slurm.REQUEUE_ENV) == "1" and (
            e.signal_name == "SIGTERM" or slurm.requeue_self(config["train"]["max_resumes"]))
        if not requeued:
            signal.signal(signal.SIGTERM, previous)
            raise
        job = os.environ.get("SLURM_JOB_ID")
        get_run_logger().warning(
            "%s; " + ("requeued Slurm job %s, which resumes there" if e.signal_name == "SIGUSR1" else
                      "Slurm job %s is left to Slurm: requeued (preemption, scontrol requeue), it resumes there; "
                      "ended, the worker reports how"), e, job)
        APILogHandler().flush()
        os._exit(EXIT_REQUEUE)


def _serve(config: dict) -> dict:
    """Serve and smoke-test inside the job; the server stops with it.

    With `serve.keep_running` the job is the server: it stays up until the job's time limit, a cancel from
    the UI, or `medgen serve --stop` (which cancels the job); its URL is in serve/server.json and the logs.
    """
    import time

    result = TASKS["serve"](config)
    server = result.server
    if server is None:
        return result.to_manifest()
    logger = get_run_logger()
    logger.info("serving %s at %s (PID %s); stop it with `medgen serve --stop` or by cancelling this run",
                server.model, server.url, server.pid)
    try:
        while server.alive():
            time.sleep(5)
    finally:
        server.stop()
    logger.warning("the server exited on its own; see %s", server.log_path)
    return result.to_manifest()


def _make_flow(spec: Stage) -> Flow:
    body = _BODIES.get(spec.name)

    def stage_flow(config: dict) -> dict:
        return body(config) if body else TASKS[spec.name](config).to_manifest()

    stage_flow.__doc__ = spec.help
    stage_flow.__name__ = stage_flow.__qualname__ = f"{spec.name}_flow"
    return flow(name=spec.name)(stage_flow)


_BODIES: dict[str, Callable[[dict], dict]] = {"train": _train, "serve": _serve}
FLOWS: dict[str, Flow] = {spec.name: _make_flow(spec) for spec in STAGES}
# Deployment entrypoints name them as module attributes: flows/pool.py:<stage>_flow.
globals().update({f"{name}_flow": f for name, f in FLOWS.items()})
