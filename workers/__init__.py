"""Prefect worker types shipped with medgen (registered through the `prefect.collections` entry point)."""

from workers.slurm import SlurmWorker

__all__ = ["SlurmWorker"]
