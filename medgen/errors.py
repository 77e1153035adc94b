"""Typed errors. Messages say what was expected, what was found, and what to do."""


class MedgenError(Exception):
    """Base class for every error medgen raises on purpose."""


class ConfigError(MedgenError):
    """A config file or override is invalid; `problems` lists every one with its key path."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


class DataError(MedgenError):
    """Input data is malformed; `problems` carry file:line locations."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown)
        tail = f"\n  ... and {more} more" if more else ""
        super().__init__(f"{len(self.problems)} problem(s) in input data:\n{lines}{tail}")


class TransientError(MedgenError):
    """A failure worth retrying as is (a flaky file system or network); tasks retry only these."""


class TrainOOM(MedgenError):
    """Training ran out of accelerator memory on one rung of the fallback ladder."""

    def __init__(self, rung: dict, message: str):
        self.rung = dict(rung)
        super().__init__(f"out of memory with {self.rung}: {message}")


class LadderExhausted(MedgenError):
    """Every rung of the OOM fallback ladder ran out of memory."""

    def __init__(self, attempts: list[str]):
        self.attempts = list(attempts)
        lines = "\n".join(f"  {i + 1}. {a}" for i, a in enumerate(self.attempts))
        super().__init__(
            f"all {len(self.attempts)} rung(s) of train.fallback ran out of memory:\n{lines}\n"
            "Add a smaller rung (lower r or max_seq_length) to train.fallback, or use a larger GPU."
        )


class ExportError(MedgenError):
    """The GGUF could not be written, or its logits disagree with the merged model."""


class ServeError(MedgenError):
    """The model server could not be started, reached or asked."""


class SmokeTestFailed(MedgenError):
    """Generated records failed the smoke-test thresholds."""

    def __init__(self, message: str, scores: list[dict]):
        self.scores = scores
        super().__init__(message)


class SlurmJobFailed(MedgenError):
    """A Slurm job ended in a state other than COMPLETED."""

    def __init__(self, job_id: str, state: str, log_tail: str, exit_code: str = ""):
        self.job_id = job_id
        self.state = state
        self.log_tail = log_tail
        self.exit_code = exit_code
        super().__init__(
            f"Slurm job {job_id} ended {state}"
            + (f" (exit code {exit_code})" if exit_code else "")
            + (f"; log tail:\n{log_tail}" if log_tail else "")
        )


def is_transient(exc: BaseException) -> bool:
    """Worth retrying unchanged: flaky network or shared file systems. OOM, bad config or data are not."""
    import errno

    if isinstance(exc, (TransientError, ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EBUSY, errno.ESTALE, errno.ETIMEDOUT)
