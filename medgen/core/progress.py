"""Progress of a long stage (training steps, generated records): done of total, rate and time left.

On a terminal a live bar (rich); elsewhere (a Slurm job's log, a Prefect flow run) one plain log line at most every
`every_s` seconds, and the last one, so a log shows how far a run got and when it will end without being flooded.
The rate counts only this process's work: records taken from a journal or steps from a checkpoint are not "fast".
"""

from __future__ import annotations

import logging
import sys
import time

from rich.console import Console

log = logging.getLogger("medgen.progress")
LOG_EVERY_S = 30.0  # between two plain progress lines

# The one console of a `medgen` command (stderr: stdout stays for results): its messages, medgen's log lines and
# progress bars share it, so a bar stays below the lines printed while it runs.
CONSOLE = Console(stderr=True, soft_wrap=True)


class _Stderr(logging.StreamHandler):
    """Whatever sys.stderr is when a line is written (a test runner swaps it), not the one at setup."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def log_to_console(level: int = logging.INFO) -> None:
    """Show medgen's log lines (INFO and up) on stderr, once: through the console on a terminal (above any bar), else
    as plain timestamped lines that a log file keeps whole. Third-party loggers stay as they are."""
    logger = logging.getLogger("medgen")
    if not any(getattr(h, "medgen_console", False) for h in logger.handlers):
        if CONSOLE.is_terminal:
            from rich.logging import RichHandler

            handler: logging.Handler = RichHandler(console=CONSOLE, show_path=False, markup=False,
                                                   log_time_format="%H:%M:%S")
        else:
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        handler.medgen_console = True
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # else Prefect's console handler on the root prints each line again


# Third-party warnings medgen cannot act on: TRL and PEFT still read the model's old checkpointing attribute.
QUIET_WARNINGS = (r"`is_gradient_checkpointing` is deprecated",)


def quiet_libraries() -> None:
    """Filter the warnings in QUIET_WARNINGS, and the libraries' own progress bars (weights loading, dataset
    tokenizing, shard writing) where no one watches a terminal: in a job log each is a line of carriage returns."""
    import warnings

    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    if not sys.stderr.isatty():
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def duration(seconds: float) -> str:
    """'42s', '3m05s', '2h14m'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    def __init__(self, name: str, total: int, unit: str, *, done: int = 0, bar: bool | None = None,
                 every_s: float | None = None, clock=time.monotonic):
        self.name, self.total, self.unit, self.clock = name, total, unit, clock
        self.every_s = LOG_EVERY_S if every_s is None else every_s
        self.start_done = self.done = done
        self.notes: tuple[str, ...] = ()
        self.t0 = self.last_line = clock()
        self._bar = None
        if bar if bar is not None else sys.stderr.isatty():
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn(f"[bold]{name}[/]"), BarColumn(bar_width=20), TextColumn("{task.fields[line]}"),
                            console=CONSOLE, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, completed=done, line="")

    def rate(self) -> float | None:
        elapsed = self.clock() - self.t0
        return (self.done - self.start_done) / elapsed if elapsed > 0 and self.done > self.start_done else None

    def eta_s(self) -> float | None:
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None

    def line(self, compact: bool = False) -> str:
        """'generate: 120/200 records (60%) · 118 valid · 1.84 records/s · 43s left'; `compact`, for a bar beside
        it on a narrow terminal: '120/200 · 118 valid · 43s left'."""
        if compact:
            parts = [f"{self.done}/{self.total}", *self.notes]
        else:
            parts = [f"{self.done}/{self.total} {self.unit} ({self.done / max(self.total, 1):.0%})", *self.notes]
            if (rate := self.rate()) is not None:
                parts.append(f"{rate:,.2f} {self.unit}/s")
        if (eta := self.eta_s()) is not None and self.done < self.total:
            parts.append(f"{duration(eta)} left")
        elif self.done >= self.total:
            parts.append(f"took {duration(self.clock() - self.t0)}")
        return " · ".join(parts) if compact else f"{self.name}: " + " · ".join(parts)

    def update(self, done: int, *notes: str) -> None:
        """`done` so far, and figures to show beside it ("38 valid", "loss 2.314")."""
        self.done = done
        self.notes = notes
        now = self.clock()
        if self._bar is not None:
            self._bar.update(self._task, completed=done, line=self.line(compact=True))
            if done >= self.total:
                self.close()
            return
        elif now - self.last_line >= self.every_s or done >= self.total:
            self.last_line = now
            log.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            log.info(self.line())
