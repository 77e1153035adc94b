"""Every stage as its own deployable flow, so that with `orchestration.gpu_pool` set each runs as a job on
that work pool (a Slurm GPU node; a CPU-sized job for prepare and evaluate) and the orchestrating `retrain`
flow on the login node only moves manifests and decisions.

    prefect --no-prompt deploy --all   # prefect.yaml: <stage>/slurm-gpu for each stage below

Each takes the whole resolved config, so a job runs exactly what the orchestrator decided.
"""

from __future__ import annotations

import os
import signal

from prefect import flow, get_run_logger
from prefect.logging.handlers import APILogHandler

from medgen import slurm
from medgen.constants import EXIT_REQUEUE
from medgen.errors import TrainInterrupted
from medgen.tasks.stages import (canaries_task, evaluate_task, export_task, generate_task, merge_task,
                                 prepare_task, serve_task, train_task)


@flow(name="prepare")
def prepare_flow(config: dict) -> dict:
    """Build the splits (tokenizes, so it runs where the tokenizer may be loaded)."""
    return prepare_task(config).to_manifest()


@flow(name="train")
def train_flow(config: dict) -> dict:
    """Train one rung of the OOM ladder (a whole config, as resolved by the `retrain` flow).

    Stopped by a signal, it has saved a checkpoint. In a job submitted with --requeue it then leaves the flow
    run running and exits, so that the same job, requeued, runs this same flow run again and resumes, while
    the orchestrator simply goes on waiting: after SIGUSR1 (the time-limit warning) it asks Slurm for the
    requeue itself, up to train.max_resumes times; after SIGTERM (preemption, `scontrol requeue`) Slurm
    requeues it, or ends it and the worker says why. Otherwise it fails, and the orchestrator decides
    (flows/retrain.py).
    """
    try:
        return train_task(config).to_manifest()
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


@flow(name="merge")
def merge_flow(config: dict) -> dict:
    """Merge the trained adapter into the 16-bit base."""
    return merge_task(config).to_manifest()


@flow(name="export")
def export_flow(config: dict) -> dict:
    """Convert to GGUF and verify it against the merged model (on the job's GPU where there is one)."""
    return export_task(config).to_manifest()


@flow(name="serve")
def serve_flow(config: dict) -> dict:
    """Serve and smoke-test inside the job; the server stops with it.

    With `serve.keep_running` the job is the server: it stays up until the job's time limit, a cancel from
    the UI, or `medgen serve --stop` (which cancels the job); its URL is in serve/server.json and the logs.
    """
    import time

    result = serve_task(config)
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


@flow(name="generate")
def generate_flow(config: dict) -> dict:
    """Generate one shard of the corpus, with its own model server inside the job."""
    return generate_task(config).to_manifest()


@flow(name="canaries")
def canaries_flow(config: dict) -> dict:
    """Prompt the model for the planted canaries' metadata, with its own model server inside the job."""
    return canaries_task(config).to_manifest()


@flow(name="evaluate")
def evaluate_flow(config: dict) -> dict:
    """The corpus statistics and the gate's verdict (CPU only: the pool gives it no GPU)."""
    return evaluate_task(config).to_manifest()
