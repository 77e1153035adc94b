"""Typed errors. Messages say what was expected, what was found, and what to do.

Every error carries a `FailureKind`, so a failure crosses process and job boundaries as data (a stage's
failure record, a Slurm job's state), never as text to be matched.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from medgen.core.constants import EXIT_REQUEUE

if TYPE_CHECKING:
    from medgen.core.config import Rung


class FailureKind(str, enum.Enum):
    OOM = "oom"  # out of accelerator or job memory: the next rung of the ladder may fit
    TIMEOUT = "timeout"  # a time limit
    PREEMPTED = "preempted"  # the scheduler took the node back (preemption, node failure)
    DATA = "data"  # input data is malformed: retrying fails the same way
    CONFIG = "config"  # the config is invalid: retrying fails the same way
    GATE = "gate"  # a quality gate (export parity, smoke test) rejected the output
    TRANSIENT = "transient"  # flaky I/O, a server that died: worth retrying unchanged (a rerun resumes)
    STORAGE = "storage"  # the disk is full, over quota, read-only or not ours to write: free it, then rerun
    OTHER = "other"


# The exit code a command ends with when the failure is not the input's: a script (or Slurm) can tell "fix the
# input" (2, every other medgen error) from "run me again" (75, sysexits' EX_TEMPFAIL; a rerun resumes) and
# "free some disk, then rerun" (74, EX_IOERR).
EXIT_CODES = {FailureKind.STORAGE: 74, FailureKind.TRANSIENT: EXIT_REQUEUE, FailureKind.TIMEOUT: EXIT_REQUEUE,
              FailureKind.PREEMPTED: EXIT_REQUEUE}
EXIT_INPUT = 2
_STORAGE_ERRNOS = ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM")
_FULL_DISK_MESSAGES = ("No space left on device", "StorageFull", "file write failed")


class MedgenError(Exception):
    """Base class for every error medgen raises on purpose."""

    kind: FailureKind = FailureKind.OTHER

    def details(self) -> dict:
        """Figures (never record text) that let a process on the other side of a job boundary re-raise this
        error with everything a person needs to act on it; see `results.StageFailure`."""
        return {}


class ConfigError(MedgenError):
    """A config file or override is invalid; `problems` lists every one with its key path."""

    kind = FailureKind.CONFIG

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        # One problem is one line: each names its own place (file:line, --set or the key).
        super().__init__(self.problems[0] if len(self.problems) == 1
                         else f"{source}: {len(self.problems)} problems:\n{lines}")


class DataError(MedgenError):
    """Input data is malformed; `problems` carry file:line locations."""

    kind = FailureKind.DATA

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown)
        tail = f"\n  ... and {more} more" if more else ""
        super().__init__(self.problems[0] if len(self.problems) == 1
                         else f"{len(self.problems)} problems in input data:\n{lines}{tail}")


class OutputsDamaged(MedgenError):
    """A stage's outputs are no longer what it wrote (deleted, truncated, changed): the stage must run again."""

    kind = FailureKind.DATA


class MissingUpstream(MedgenError, FileNotFoundError):
    """A stage's input is not there: the stage that makes it has not run (or not finished) in this run_dir. Still a
    FileNotFoundError, so code that only asks whether an output exists keeps catching it."""

    kind = FailureKind.CONFIG

    def __init__(self, stage: str, path: str):
        self.message = (f"{path} is missing: {stage} has not run in this run_dir; run `medgen {stage}` first, with "
                        "the same --config and --set (`medgen run` runs every stage in order)")
        super().__init__(self.message)
        self.stage, self.filename = stage, path

    def __str__(self) -> str:
        return self.message


class RunLocked(MedgenError):
    """Another process holds the run directory's lock; the message names it."""

    kind = FailureKind.TRANSIENT  # it ends when the other run does


class TransientError(MedgenError):
    """A failure worth retrying as is (a flaky file system or network); tasks retry only these."""

    kind = FailureKind.TRANSIENT


class TrainOOM(MedgenError):
    """Training ran out of accelerator memory on one rung of the fallback ladder."""

    kind = FailureKind.OOM

    def __init__(self, rung: Rung, message: str):
        self.rung = rung
        super().__init__(f"out of memory with r={rung.r}, max_seq_length={rung.max_seq_length}: {message}")


class TrainInterrupted(MedgenError):
    """A signal stopped training after it saved a checkpoint: SIGUSR1 (Slurm's warning before the time limit,
    `--signal=B:USR1@<grace>`) or SIGTERM (preemption, scancel, shutdown). Rerunning the same rung resumes."""

    def __init__(self, rung: Rung, signal_name: str, step: int, checkpoint: str):
        self.rung, self.signal_name, self.step, self.checkpoint = rung, signal_name, step, checkpoint
        self.kind = FailureKind.TIMEOUT if signal_name == "SIGUSR1" else FailureKind.PREEMPTED
        super().__init__(f"train stopped by {signal_name} at step {step} (r={rung.r}, max_seq_length="
                         f"{rung.max_seq_length}); checkpoint saved in {checkpoint}; run it again to resume there")

    def details(self) -> dict:
        return {"signal": self.signal_name, "step": self.step, "checkpoint": self.checkpoint}


class LadderExhausted(MedgenError):
    """Every rung of the OOM fallback ladder ran out of memory."""

    kind = FailureKind.OOM  # a rerun on the same GPU runs out the same way

    def __init__(self, attempts: list[str]):
        self.attempts = list(attempts)
        lines = "\n".join(f"  {i + 1}. {a}" for i, a in enumerate(self.attempts))
        super().__init__(
            f"all {len(self.attempts)} rung(s) of train.fallback ran out of memory:\n{lines}\n"
            "Add a smaller rung (lower r or max_seq_length) to train.fallback, or use a larger GPU."
        )


class ExportError(MedgenError):
    """The GGUF could not be written."""


class ParityError(ExportError):
    """The GGUF's next-token distributions disagree with the merged model's; `parity` holds the figures."""

    kind = FailureKind.GATE

    def __init__(self, message: str, parity: dict):
        self.parity = parity
        super().__init__(message)

    def details(self) -> dict:
        # The message is built from figures and file names only, so it may cross the boundary whole.
        return {"message": str(self), "parity": self.parity}


class ServeError(MedgenError):
    """The model server could not be started, reached or asked."""


class ServerDied(ServeError):
    """The model server died mid-run more often than it may be restarted; a rerun resumes where it stopped."""

    kind = FailureKind.TRANSIENT


class StorageError(MedgenError):
    """A write failed for lack of room or rights: the path, what the system said, and the room left there."""

    kind = FailureKind.STORAGE

    def __init__(self, path: str, error: OSError):
        import errno
        import shutil
        from pathlib import Path

        where = Path(path)
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            free = f"{shutil.disk_usage(where).free / 2**20:,.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        name = errno.errorcode.get(error.errno or 0, "")
        fix = ("free some space or choose another run_dir" if name in ("ENOSPC", "EDQUOT") else
               "make it writable for your user or choose another run_dir")
        self.path = str(path)
        super().__init__(f"{path}: {error.strerror or error} ({name}); {free}; {fix}, then rerun (nothing was "
                         "left half-written)")


def storage_error(exc: BaseException, default_path: str = "") -> StorageError | None:
    """`exc` as a StorageError when it is a full, read-only or forbidden file system; else None."""
    import errno

    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and errno.errorcode.get(exc.errno or 0) in _STORAGE_ERRNOS:
        return StorageError(exc.filename or default_path or "(a file)", exc)
    # torch.save and safetensors report a full disk in their own exception types, by message
    if any(m in str(exc) for m in _FULL_DISK_MESSAGES):
        return StorageError(default_path or "(a file)", OSError(errno.ENOSPC, "No space left on device"))
    return None


class SmokeTestFailed(MedgenError):
    """Generated records failed the smoke-test thresholds."""

    kind = FailureKind.GATE

    def __init__(self, message: str, scores: list[dict]):
        self.scores = scores
        super().__init__(message)

    @classmethod
    def from_scores(cls, scores: list[dict]) -> SmokeTestFailed:
        """Say which prompt failed and why; the scores carry metadata and reason names, never record text."""
        failed = [f"{r['sex']}/{r['service']}: {', '.join(r['reasons'])}"
                  + (f" (the last of {r['tries']} tries)" if r.get("tries", 1) > 1 else "")
                  for r in scores if not r["passed"]]
        n_passed = sum(bool(r["passed"]) for r in scores)
        return cls(f"smoke test: {n_passed}/{len(scores)} records passed; " + "; ".join(failed), scores)

    def details(self) -> dict:
        return {"scores": self.scores}


def failure_kind(exc: BaseException) -> FailureKind:
    """Classify any exception; medgen's own errors say their kind, a few foreign ones are recognised."""
    import errno

    if isinstance(exc, MedgenError):
        return exc.kind
    if storage_error(exc) is not None:
        return FailureKind.STORAGE
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return FailureKind.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EBUSY, errno.ESTALE, errno.ETIMEDOUT):
        return FailureKind.TRANSIENT
    if type(exc).__name__ == "OutOfMemoryError":  # torch's, without importing torch here
        return FailureKind.OOM
    return FailureKind.OTHER


def is_transient(exc: BaseException) -> bool:
    """Worth retrying unchanged: flaky network or shared file systems. OOM, bad config or data are not."""
    return failure_kind(exc) is FailureKind.TRANSIENT


class GateFailed(MedgenError):
    """The evaluated corpus fell short of the release gate; `reasons` name each threshold missed, with figures
    only (never record text)."""

    kind = FailureKind.GATE

    def __init__(self, reasons: list[str]):
        self.reasons = list(reasons)
        lines = "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(f"the corpus failed the release gate ({len(self.reasons)} reason(s)):\n{lines}\n"
                         "See evaluate/REPORT.md; thresholds are the gate.* settings.")

    def details(self) -> dict:
        return {"reasons": self.reasons}


class RemoteStageFailed(MedgenError):
    """A stage's deployment run (e.g. a Slurm job) did not complete; `kind` says why, as the job recorded it."""

    def __init__(self, message: str, kind: FailureKind):
        self.kind = kind
        super().__init__(message)
