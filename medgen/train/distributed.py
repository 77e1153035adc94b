"""Data-parallel training (`train.launcher: torchrun`): one process per GPU (train.nproc_per_node) on each of
train.nnodes nodes, each with its own copy of the (4-bit) base on its own device, the token budget per step global.

`launch` is the parent: it writes the resolved config beside the outputs and starts

    python -m torch.distributed.run --standalone --nproc_per_node N ... -m medgen.train.distributed CONFIG

or, inside a Slurm job, `srun --nodes M --ntasks-per-node 1 python -m torch.distributed.run --nnodes M ...` with the
rendezvous on the job's first node, named after the job. Each rank runs `medgen.train.stage.run` (which sees it is a
rank) and leaves its outcome in `train/ranks/rank-<r>.json`, because torchrun's own exit code says only that a rank
failed. The parent forwards SIGUSR1 and SIGTERM (Slurm's time-limit warning, preemption) to the launcher, which
passes them to every rank; the ranks agree on the step to stop at (`largest`), rank 0 saves, and the parent raises
TrainInterrupted as a single process would. An out-of-memory on any rank is the job's: the ladder moves down.

Inside the ranks rank 0 alone takes the lock, chooses the checkpoint to resume from (and tells the others), writes
completeness markers, the adapter and the manifest; every rank trains and evaluates.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from medgen.core.config import PipelineConfig, load_config
from medgen.core.errors import FailureKind, RemoteStageFailed, TrainInterrupted
from medgen.core.io import atomic_write_text, ensure_dir, write_json
from medgen.core.results import StageFailure, TrainResult


class RankOutcome(BaseModel):
    """How one rank ended: done, or its failure as data."""

    model_config = ConfigDict(extra="forbid")

    rank: int
    failure: Optional[StageFailure] = None

log = logging.getLogger(__name__)

RANKS_DIR = "ranks"
LAUNCH_CONFIG = ".launch-config.yaml"
# The launcher passes these on to every rank; it must wait for a rank to finish its step and save before it gives
# up on it (Slurm's --signal grace, 300 s, bounds what is left).
FORWARDED = (signal.SIGUSR1, signal.SIGTERM)
SHUTDOWN_TIMEOUT_S = 240
RDZV_PORT_BASE = 29400


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_rank() -> bool:
    """Whether this process is one of torchrun's ranks."""
    return "TORCHELASTIC_RUN_ID" in os.environ or world_size() > 1


def is_main() -> bool:
    return rank() == 0


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


def barrier() -> None:
    if dist := _dist():
        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's `value`, on every rank."""
    if not (dist := _dist()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def largest(value: int) -> int:
    """The largest of the ranks' `value`s, on every rank (a collective: every rank must call it at the same point)."""
    if not (dist := _dist()):
        return value
    import torch

    device = "cpu" if dist.get_backend() == "gloo" else f"cuda:{local_rank()}"
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


# --- the parent ---------------------------------------------------------------------------------------------

def slurm_first_node(env: dict[str, str]) -> str:
    out = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True,
                         text=True, check=True)
    return out.stdout.split()[0]


def launch_command(config: PipelineConfig, config_path: Path, env: dict[str, str]) -> list[str]:
    """The command that starts every rank: `srun` over the job's nodes inside a Slurm job, torchrun alone elsewhere."""
    tc = config.train
    run = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={tc.nproc_per_node}",
           "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}"]
    worker = ["-m", "medgen.train.distributed", str(config_path)]
    if "SLURM_JOB_ID" not in env:
        if tc.nnodes > 1:
            raise RemoteStageFailed(f"train.nnodes={tc.nnodes}: expected a Slurm job spanning the nodes (run train on "
                                    "the pool, orchestration.gpu_pool), got none here; set train.nnodes=1 to train on "
                                    "this machine's processes only", FailureKind.CONFIG)
        return [*run, "--standalone", "--nnodes=1", *worker]
    job = env["SLURM_JOB_ID"]
    endpoint = f"{slurm_first_node(env)}:{RDZV_PORT_BASE + int(job) % 1000}"
    # A step gets the job's GPUs only when it asks for them.
    gpus = [f"--gres=gpu:{tc.nproc_per_node}"] if env.get("SLURM_GPUS_ON_NODE") or env.get("SLURM_JOB_GPUS") else []
    return ["srun", f"--nodes={tc.nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *gpus,
            f"--cpus-per-task={env.get('SLURM_CPUS_PER_TASK', '1')}", *run, f"--nnodes={tc.nnodes}",
            "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}", f"--rdzv_id=medgen-{job}", *worker]


def launch(config: PipelineConfig) -> TrainResult:
    """Train with train.nproc_per_node x train.nnodes ranks and return rank 0's result; failures as one process's."""
    out_dir = ensure_dir(config.stage_dir("train"))
    ranks_dir = out_dir / RANKS_DIR
    for old in ranks_dir.glob("rank-*.json"):
        old.unlink()
    config_path = atomic_write_text(out_dir / LAUNCH_CONFIG, config.to_yaml())
    cmd = launch_command(config, config_path, dict(os.environ))
    log.info("train: %d rank(s) on %d node(s): %s", config.train.world_size(), config.train.nnodes,
             " ".join(cmd[:cmd.index("-m", 2)] if "-m" in cmd[2:] else cmd))
    t0 = time.time()
    proc = subprocess.Popen(cmd, start_new_session=True)
    forwarded: list[str] = []

    def forward(signum, frame) -> None:
        forwarded.append(signal.Signals(signum).name)
        proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        code = proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return _outcome(config, ranks_dir, code, t0, forwarded)


def _outcome(config: PipelineConfig, ranks_dir: Path, code: int, since: float, forwarded: list[str]) -> TrainResult:
    reports = [RankOutcome.model_validate_json(p.read_text()) for p in sorted(ranks_dir.glob("rank-*.json"))
               if p.stat().st_mtime >= since - 1]
    failures = {o.rank: o.failure for o in reports if o.failure is not None}
    where = "train (data-parallel)"
    # One rank out of memory is the whole job's: the ladder moves down for all of them.
    for kind in (FailureKind.OOM, FailureKind.TIMEOUT, FailureKind.PREEMPTED):
        for r, f in sorted(failures.items()):
            if f.kind is kind:
                raise f.to_exception(f"{where}, rank {r}")
    if failures:
        r, f = min(failures.items())
        raise f.to_exception(f"{where}, rank {r}")
    if code != 0 or 0 not in {o.rank for o in reports}:
        why = f"after {forwarded[0]}" if forwarded else "with no rank reporting"
        raise RemoteStageFailed(f"{where}: the launcher exited with code {code} {why}; see the ranks' output above "
                                "(the job log)", FailureKind.OTHER)
    return TrainResult.from_manifest(config.stage_dir("train"))


# --- a rank -------------------------------------------------------------------------------------------------

def report(out_dir: Path, exc: BaseException | None) -> None:
    """Leave this rank's outcome for the parent: done, or the failure as data (medgen.core.results.StageFailure)."""
    outcome = RankOutcome(rank=rank(), failure=None if exc is None else StageFailure.from_exception("train", exc))
    write_json(ensure_dir(out_dir / RANKS_DIR) / f"rank-{rank()}.json", outcome.model_dump(mode="json"))


def main(argv: list[str] | None = None) -> int:
    from medgen.core.progress import log_to_console
    from medgen.train import stage

    config = load_config(str((argv or sys.argv[1:])[0]))
    log_to_console(logging.INFO if is_main() else logging.ERROR)  # one voice in the job log
    out_dir = config.stage_dir("train")
    try:
        stage.run(config)
    except BaseException as e:  # every outcome is reported, then the rank ends as it would have
        report(out_dir, e)
        if isinstance(e, TrainInterrupted):
            return 0  # a clean stop: the parent reads it from the report
        raise
    report(out_dir, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

