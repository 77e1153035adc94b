"""Slurm through its command-line tools: sbatch scripts from typed fields, state polling, cancel, log tails.

Prefect-free; the `slurm` worker in `workers/` drives it. Polling prefers sacct (accounting) and falls
back to squeue/scontrol where accounting is disabled.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from medgen.core.errors import FailureKind, MedgenError
from medgen.core.io import LOG_READ_BYTES, QUOTED_LINE_CHARS, ensure_dir, quotable_lines, read_tail

log = logging.getLogger(__name__)

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

# The job script echoes these around the setup lines, so a log tail can tell their output (written before
# the flow has read any record) from the flow's.
SETUP_BANNER = "medgen: setup"
JOB_BANNER = "medgen: Slurm job"
SETUP_LINES_QUOTED = 10
# Slurm's own daemons' words in a job log: never record text.
SLURM_LINE = re.compile(r"(slurmstepd|srun|sbatch): ")

MAX_FIELD_CHARS = 1024
_JOB_ID = re.compile(r"[0-9]+", re.ASCII)
_NAME = r"[A-Za-z0-9_.-]+"
# What sbatch accepts in each field. A value outside it could end the #SBATCH line and start a shell command
# (a line break; sbatch also stops reading directives there, dropping the later limits), add options
# (whitespace) or be cut short as a comment (#).
FIELD_FORMS: dict[str, tuple[str, re.Pattern, str]] = {
    # job variable: (sbatch option, accepted form, the form in words)
    "partition": ("partition", re.compile(rf"{_NAME}(,{_NAME})*", re.ASCII),
                  "partition names separated by commas, e.g. gpu or gpu,gpu-long"),
    "qos": ("qos", re.compile(_NAME, re.ASCII), "a QOS name, e.g. normal"),
    "account": ("account", re.compile(_NAME, re.ASCII), "an account name, e.g. lab-smith"),
    "constraint": ("constraint", re.compile(r"[A-Za-z0-9_.:&|,()\[\]*!-]+", re.ASCII),
                   "feature names joined by & | , with [ ] ( ) and *count, e.g. geforce3090|a5000"),
    "gres": ("gres", re.compile(r"[A-Za-z0-9_.:/=-]+(,[A-Za-z0-9_.:/=-]+)*", re.ASCII),
             "name[:type]:count, comma-separated, e.g. gpu:1 or gpu:a100:2"),
    "time_limit": ("time", re.compile(r"[0-9]+(:[0-9]{1,2}){0,2}|[0-9]+-[0-9]{1,2}(:[0-9]{1,2}){0,2}"
                                      r"|INFINITE|UNLIMITED", re.ASCII),
                   "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. 04:00:00 or 1-00:00:00"),
    "mem": ("mem", re.compile(r"[0-9]+[KMGTkmgt]?", re.ASCII),
            "a size in megabytes or with a unit K, M, G or T, e.g. 32G or 500M"),
    "output": ("output", re.compile(r"[A-Za-z0-9_./%+,=@:-]+", re.ASCII),
               "a path of letters, digits and _ . / % + , = @ : - (no spaces) whose file name holds %j, "
               "e.g. runs/slurm-logs/%j.out"),
    "working_dir": ("chdir", re.compile(r"[A-Za-z0-9_./+,=@:-]+", re.ASCII),
                    "a directory of letters, digits and _ . / + , = @ : - (no spaces), e.g. /shared/medgen"),
    "signal": ("signal", re.compile(r"(?:[RB]:)?(?:SIG)?(?:USR1|USR2|TERM|INT|HUP|QUIT|ALRM|CONT|URG|[0-9]{1,2})"
                                    r"(?:@[0-9]{1,5})?", re.ASCII),
               "[B:]SIGNAL[@SECONDS], e.g. B:USR1@300 (the batch shell gets SIGUSR1 300 s before the time limit)"),
}
SUBMIT_BACKOFF_S = (10.0, 30.0)  # waits between sbatch attempts that timed out
# Set in a job submitted with --requeue, so the job knows that it may ask Slurm to requeue it.
REQUEUE_ENV = "MEDGEN_SLURM_REQUEUE"


class SlurmError(MedgenError):
    """A Slurm command failed (sbatch refused the job, or the cluster cannot be reached)."""


class SlurmTimeout(SlurmError):
    """A Slurm command did not answer in time: the controller is busy; the same call may work later."""

    kind = FailureKind.TRANSIENT


class JobSpecError(SlurmError):
    """Job variables sbatch would misread; `problems` name each field, what is wrong and the accepted form."""

    kind = FailureKind.CONFIG

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid Slurm job variable(s): " + "; ".join(self.problems))


def _shown(value: object) -> str:
    """A value for an error message: its start only, since a job variable can be arbitrarily long."""
    text = str(value)
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}… ({len(text)} characters)"


def _what_is_wrong(value: str) -> str:
    if "\n" in value or "\r" in value:
        return "holds a line break, which would end the #SBATCH line and start a shell command"
    if any(c.isspace() for c in value):
        return "holds whitespace, which sbatch would read as a further option"
    if "#" in value:
        return "holds '#'"
    if any(not c.isprintable() or ord(c) > 127 for c in value):
        return "holds a control or non-ASCII character"
    return "is not a form sbatch accepts"


def safe_job_name(text: str) -> str:
    """A flow-run name (free text) as a job name: each run of characters other than letters, digits, _ . -
    becomes one '-'; at most 64 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text, flags=re.ASCII).strip("-")[:64] or "medgen"


def checked_job_id(job_id: object) -> str:
    """A job id as passed to scancel, scontrol, squeue and sacct: digits only, or SlurmError."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise SlurmError(f"expected a numeric Slurm job id such as 12345, got {_shown(job_id)}")
    return job_id


@dataclass
class JobSpec:
    """One sbatch job. Every optional field maps to one `#SBATCH` line; None or "" leaves Slurm's default.

    Fields are named as the worker's job variables. `command` and `setup_commands` are shell by design and
    come from whoever may run code as the worker's user (see workers/slurm.py); every other field is checked
    against what sbatch accepts, and the job name is made safe, so no value can become a shell line.
    """

    command: str
    name: str = "medgen"
    partition: str | None = None
    gres: str | None = None
    constraint: str | None = None
    time_limit: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    nodes: int | None = None
    ntasks_per_node: int | None = None
    account: str | None = None
    qos: str | None = None
    output: str = "slurm-%j.out"
    working_dir: str | None = None
    signal: str | None = None
    requeue: bool = False
    setup_commands: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = safe_job_name(self.name)
        problems = self.problems()
        if problems:
            raise JobSpecError(problems)

    def problems(self) -> list[str]:
        problems = []
        for key, (option, form, words) in FIELD_FORMS.items():
            value = getattr(self, key)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                problems.append(f"{key} (#SBATCH --{option}): expected text, got {type(value).__name__}; "
                                f"expected {words}")
            elif len(value) > MAX_FIELD_CHARS:
                problems.append(f"{key} (#SBATCH --{option}): {_shown(value)} is longer than {MAX_FIELD_CHARS} "
                                f"characters; expected {words}")
            elif not form.fullmatch(value):
                problems.append(f"{key} (#SBATCH --{option}): {_shown(value)} {_what_is_wrong(value)}; "
                                f"expected {words}")
        log_dir, _, log_file = (self.output or "").rpartition("/")
        if self.output and FIELD_FORMS["output"][1].fullmatch(self.output):
            if "%j" not in log_file:
                problems.append(f"output: {_shown(self.output)} names a fixed file, which a job log would "
                                "overwrite; expected %j (the job id) in the file name, e.g. runs/slurm-logs/%j.out")
            if "%" in log_dir:
                problems.append(f"output: {_shown(self.output)} has a % pattern in its directory, which the "
                                "worker creates before sbatch knows the job; expected e.g. runs/slurm-logs/%j.out")
        if not isinstance(self.requeue, bool):
            problems.append(f"requeue (#SBATCH --requeue): {_shown(self.requeue)}; expected true or false")
        for key, option, example in (("cpus_per_task", "cpus-per-task", 4), ("nodes", "nodes", 2),
                                      ("ntasks_per_node", "ntasks-per-node", 1)):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                problems.append(f"{key} (#SBATCH --{option}): {_shown(value)}; expected a whole number >= 1, "
                                f"e.g. {example}")
        for key, value in self.env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key, re.ASCII):
                problems.append(f"env: {_shown(key)} is not a variable name (it would be shell text in the "
                                "script's export line); expected letters, digits and _, not starting with a "
                                "digit, e.g. CUDA_HOME")
            elif "\0" in str(value):
                problems.append(f"env: {key}'s value holds a NUL byte, which no environment variable can hold")
        return problems

    def sbatch_lines(self) -> list[str]:
        opts = {"job-name": self.name, "cpus-per-task": self.cpus_per_task, "nodes": self.nodes,
                "ntasks-per-node": self.ntasks_per_node,
                **{option: getattr(self, key) for key, (option, _, _) in FIELD_FORMS.items()}}
        return [f"#SBATCH --{k}={v}" for k, v in opts.items() if v not in (None, "")] + \
            (["#SBATCH --requeue"] if self.requeue else [])

    def script(self) -> str:
        env = {**self.env, **({REQUEUE_ENV: "1"} if self.requeue else {})}
        exports = [f"export {k}={shlex.quote(str(v))}" for k, v in sorted(env.items())]
        # umask 077: whatever the job writes (run_dir outputs, caches) is readable by its owner only.
        return "\n".join(["#!/bin/bash", *self.sbatch_lines(), "umask 077", "set -eo pipefail", *exports,
                          f'echo "{SETUP_BANNER}"', *self.setup_commands,
                          f'echo "{JOB_BANNER} $SLURM_JOB_ID on $(hostname)"', f"exec {self.command}", ""])


def _run(cmd: list[str], check: bool = True, umask: int = -1) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, umask=umask)
    except FileNotFoundError:
        raise SlurmError(f"`{cmd[0]}` not found: run the worker where the Slurm client tools are on PATH") from None
    except subprocess.TimeoutExpired:
        raise SlurmTimeout(f"`{cmd[0]}` did not answer in 60 s (a busy or unreachable controller)") from None
    if check and proc.returncode != 0:
        raise SlurmError(f"`{shlex.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


def _submitted_with(comment: str) -> str | None:
    """The job that carries this submission's comment, if sbatch queued it before its answer was lost."""
    proc = _run(["squeue", "-h", "-a", "-t", "all", "-o", "%i|%k"], check=False)
    for line in proc.stdout.splitlines():
        job_id, _, job_comment = line.partition("|")
        if job_comment.strip() == comment and _JOB_ID.fullmatch(job_id.strip()):
            return job_id.strip()
    return None


def submit(spec: JobSpec) -> str:
    """sbatch the spec; return the job id. Its log directory is created owner-only first, and sbatch runs
    with umask 077, which Slurm passes on to the job (SLURM_UMASK), so the job's log is owner-only too.

    An sbatch that times out may still have queued the job, so before trying again the queue is searched
    for this submission's own comment: a job is never submitted twice. After SUBMIT_BACKOFF_S's waits it
    is reported.
    """
    ensure_dir(log_path(spec.output, "0", spec.working_dir).parent)
    comment = f"medgen-submit-{uuid.uuid4().hex}"
    with tempfile.NamedTemporaryFile("w", prefix="medgen-sbatch-", suffix=".sh", delete=False) as f:
        f.write(spec.script())
    try:
        for wait_s in (*SUBMIT_BACKOFF_S, None):
            try:
                out = _run(["sbatch", "--parsable", f"--comment={comment}", f.name], umask=0o077).stdout.strip()
                break
            except SlurmTimeout as e:
                found = _submitted_with(comment)
                if found is not None:
                    log.warning("sbatch timed out, but it had queued job %s", found)
                    return found
                if wait_s is None:
                    raise SlurmTimeout(f"{e}; tried {len(SUBMIT_BACKOFF_S) + 1} times, and no job of this "
                                       "submission is queued") from None
                log.warning("%s; no job of this submission is queued, trying again in %.0f s", e, wait_s)
                time.sleep(wait_s)
    finally:
        Path(f.name).unlink(missing_ok=True)
    job_id = out.split(";")[0]
    if not _JOB_ID.fullmatch(job_id):
        raise SlurmError(f"sbatch: expected a job id, got {_shown(out)}")
    return job_id


def cancel(job_id: str) -> None:
    _run(["scancel", checked_job_id(job_id)])


def requeue_self(max_restarts: int) -> bool:
    """From inside a job submitted with --requeue: ask Slurm to run this same job again (same id, same flow
    run), while it has been restarted fewer than `max_restarts` times. True when Slurm took the request."""
    job_id = os.environ.get("SLURM_JOB_ID", "")
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if os.environ.get(REQUEUE_ENV) != "1" or not _JOB_ID.fullmatch(job_id):
        return False
    if restarts >= max_restarts:
        log.warning("Slurm job %s was requeued %d time(s) already (the limit); not requeueing it", job_id, restarts)
        return False
    try:
        _run(["scontrol", "requeue", job_id])
    except SlurmError as e:
        log.warning("Slurm job %s: could not requeue it (%s)", job_id, e)
        return False
    return True


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
    job_id = checked_job_id(job_id)
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


def job_log_tail(path: Path, n: int = 30) -> str:
    """The end of a job's log as a state message may quote it: the setup lines' output (at most
    SETUP_LINES_QUOTED lines, written before the flow read any record), Slurm's own lines, and what
    io.quotable_lines keeps of the flow's output (tracebacks, medgen's log lines); other lines are counted."""
    text = read_tail(path)
    if text is None:
        return f"(no log at {path})"
    rest = text.splitlines()
    head: list[str] = []
    setup: list[str] = []
    try:
        whole = path.stat().st_size <= LOG_READ_BYTES
    except OSError:
        whole = False
    # Only the script's own banner counts: the first line of a log read from its start, after Slurm's lines.
    # A later line that merely reads like it is the flow's output.
    start = next((i for i, line in enumerate(rest) if line.strip() and not SLURM_LINE.match(line)), None)
    if whole and start is not None and rest[start] == SETUP_BANNER:
        end = next((i for i in range(start + 1, len(rest)) if rest[i].startswith(JOB_BANNER)), len(rest))
        head = [line for line in rest[:start] if line.strip()]
        setup = [line[:QUOTED_LINE_CHARS] for line in rest[start + 1:end] if line.strip()][-SETUP_LINES_QUOTED:]
        rest = rest[end:]
    return "\n".join((head + setup + quotable_lines(rest, path, SLURM_LINE))[-n:])
