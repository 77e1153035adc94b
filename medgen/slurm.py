"""Slurm through its command-line tools: sbatch scripts from typed fields, state polling, cancel, log tails.

Prefect-free; the `slurm` worker in `workers/` drives it. Polling prefers sacct (accounting) and falls
back to squeue/scontrol where accounting is disabled.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from medgen.errors import FailureKind, MedgenError

# Terminal states and what they mean for a flow run; anything else is still queued or running.
TERMINAL_STATES = {
    "COMPLETED": "the job finished with exit code 0",
    "FAILED": "the job exited non-zero",
    "TIMEOUT": "the job hit its time limit",
    "OUT_OF_MEMORY": "the job exceeded its memory limit",
    "CANCELLED": "the job was cancelled (scancel or an administrator)",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "the job missed its deadline",
}
# What each failure state means for the pipeline: OOM moves the training ladder down; the others do not.
STATE_KINDS = {"OUT_OF_MEMORY": FailureKind.OOM, "TIMEOUT": FailureKind.TIMEOUT, "DEADLINE": FailureKind.TIMEOUT,
               "PREEMPTED": FailureKind.PREEMPTED, "NODE_FAIL": FailureKind.PREEMPTED,
               "BOOT_FAIL": FailureKind.PREEMPTED}
# Distinct non-zero codes, so the worker result tells states apart even without the log.
STATE_EXIT_CODES = {"COMPLETED": 0, "FAILED": 1, "TIMEOUT": 124, "OUT_OF_MEMORY": 137, "CANCELLED": 130,
                    "NODE_FAIL": 75, "PREEMPTED": 75, "BOOT_FAIL": 75, "DEADLINE": 124}


class SlurmError(MedgenError):
    """A Slurm command failed (sbatch refused the job, or the cluster cannot be reached)."""


@dataclass
class JobSpec:
    """One sbatch job. Every field maps to one `#SBATCH` line; None leaves Slurm's default."""

    command: str
    job_name: str = "medgen"
    partition: str | None = None
    gres: str | None = None
    constraint: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    account: str | None = None
    qos: str | None = None
    output: str = "slurm-%j.out"
    workdir: str | None = None
    setup: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def sbatch_lines(self) -> list[str]:
        opts = {"job-name": self.job_name, "partition": self.partition, "gres": self.gres,
                "constraint": self.constraint, "time": self.time, "mem": self.mem,
                "cpus-per-task": self.cpus_per_task, "account": self.account, "qos": self.qos,
                "output": self.output, "chdir": self.workdir}
        return [f"#SBATCH --{k}={v}" for k, v in opts.items() if v not in (None, "")]

    def script(self) -> str:
        exports = [f"export {k}={shlex.quote(str(v))}" for k, v in sorted(self.env.items())]
        return "\n".join(["#!/bin/bash", *self.sbatch_lines(), "set -eo pipefail", *exports, *self.setup,
                          f'echo "medgen: Slurm job $SLURM_JOB_ID on $(hostname)"', f"exec {self.command}", ""])


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SlurmError(f"`{cmd[0]}` not found: run the worker where the Slurm client tools are on PATH") from None
    if check and proc.returncode != 0:
        raise SlurmError(f"`{shlex.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


def submit(script_path: Path) -> str:
    out = _run(["sbatch", "--parsable", str(script_path)]).stdout.strip()
    job_id = out.split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch: expected a job id, got {out!r}")
    return job_id


def cancel(job_id: str) -> None:
    _run(["scancel", job_id])


@dataclass(frozen=True)
class JobState:
    state: str
    exit_code: str = ""
    source: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def _sacct(job_id: str) -> JobState | None:
    proc = _run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None  # accounting disabled, or the job not yet recorded
    state, _, code = proc.stdout.strip().splitlines()[0].partition("|")
    return JobState(state.split()[0].rstrip("+"), code, "sacct")


def _squeue(job_id: str) -> JobState | None:
    proc = _run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return JobState(proc.stdout.strip().splitlines()[0], "", "squeue")


def _scontrol(job_id: str) -> JobState | None:
    proc = _run(["scontrol", "show", "job", job_id], check=False)
    m = re.search(r"JobState=(\S+)", proc.stdout)
    if proc.returncode != 0 or not m:
        return None
    code = re.search(r"\bExitCode=(\S+)", proc.stdout)
    return JobState(m.group(1), code.group(1) if code else "", "scontrol")


def job_state(job_id: str, use_sacct: bool = True) -> JobState:
    for probe in ((_sacct,) if use_sacct else ()) + (_squeue, _scontrol):
        state = probe(job_id)
        if state is not None:
            if state.terminal and not state.exit_code:
                # squeue has no exit code, and sacct may not have recorded the job yet: scontrol has both.
                detail = _scontrol(job_id)
                if detail is not None and detail.exit_code:
                    return JobState(state.state, detail.exit_code, f"{state.source}+scontrol")
            return state
    return JobState("UNKNOWN", "", "none")


# Without cgroups Slurm kills an over-memory job by polling and records it FAILED (signal 9); the step
# daemon's words in the job log are what tell it apart from any other failure.
MEMORY_KILL_MARKERS = ("exceeded memory limit", "Exceeded job memory limit", "oom-kill", "oom_kill")


def effective_state(state: JobState, log_text: str) -> str:
    """The state a flow run should be told: FAILED after a memory kill is OUT_OF_MEMORY."""
    if state.state == "FAILED" and any(m in log_text for m in MEMORY_KILL_MARKERS):
        return "OUT_OF_MEMORY"
    return state.state


def accounting_available() -> bool:
    return _run(["sacct", "-n", "-X", "-j", "1"], check=False).returncode == 0


def log_path(output: str, job_id: str, workdir: str | None) -> Path:
    path = Path(output.replace("%j", job_id).replace("%A", job_id))
    return path if path.is_absolute() or not workdir else Path(workdir) / path
