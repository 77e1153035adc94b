"""GPU stages as their own deployable flows, so a work pool (e.g. Slurm) can run them on GPU nodes.

    prefect deploy --name slurm-gpu   # see prefect.yaml: train/slurm-gpu, merge/slurm-gpu
"""

from __future__ import annotations

from prefect import flow

from medgen.tasks.stages import generate_task, merge_task, train_task


@flow(name="train")
def train_flow(config: dict) -> dict:
    """Train one rung of the OOM ladder (a whole config, as resolved by the `retrain` flow)."""
    return train_task(config).to_manifest()


@flow(name="merge")
def merge_flow(config: dict) -> dict:
    """Merge the trained adapter into the 16-bit base."""
    return merge_task(config).to_manifest()


@flow(name="generate")
def generate_flow(config: dict) -> dict:
    """Generate one shard of the corpus, with its own model server inside the job."""
    return generate_task(config).to_manifest()
