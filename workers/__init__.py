"""Prefect worker types shipped with medgen (registered through the `prefect.collections` entry point)."""

from medgen.workers.slurm import SlurmWorker

__all__ = ["SlurmWorker"]
