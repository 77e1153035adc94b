"""Flows the Slurm tests deploy to the `slurm` work pool (entrypoints tests/slurm_flows.py:<fn>)."""

import os
import time

from prefect import flow


@flow(name="slurm-ok")
def ok(x: int = 1) -> int:
    print(f"job {os.environ.get('SLURM_JOB_ID')} gpus={os.environ.get('CUDA_VISIBLE_DEVICES')}")
    return 2 * x


@flow(name="slurm-fail")
def fail() -> None:
    print("about to fail")
    raise ValueError("deliberate failure for the test")


@flow(name="slurm-sleep")
def sleep(seconds: int = 600) -> None:
    time.sleep(seconds)


@flow(name="slurm-hog")
def hog(mb: int = 600) -> None:
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(30)


@flow(name="train")
def train_oom_at_r8(config: dict) -> dict:
    """The real train flow, except that rank 8 runs out of memory the way a too-small GPU would."""
    from medgen.core.config import PipelineConfig
    from medgen.core.errors import TrainOOM
    from medgen.core.results import failure_recorded
    from medgen.flows.pool import train_flow

    cfg = PipelineConfig.model_validate(config)
    if cfg.train.lora.r == 8:
        # Recorded the way the train task records a real CUDA OOM, so the orchestrator reads it as data.
        with failure_recorded(cfg.stage_dir("train"), "train"):
            raise TrainOOM(cfg.rung(), "CUDA out of memory. Tried to allocate 20.00 GiB")
    return train_flow.fn(config)
