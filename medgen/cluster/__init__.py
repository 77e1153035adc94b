"""Slurm without Prefect: the sbatch/sacct/scancel wrapper (`slurm`) shared by the Prefect worker (medgen.workers)
and the flows, and the stage deployments of prefect.yaml generated from the registry (`deployments`).
"""
