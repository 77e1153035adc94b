"""Training resume: checkpoints keyed by what shapes the weights, completeness markers, stop-on-signal.

A rung's checkpoints live in `train/checkpoints/<key>/`, where the key hashes the base, the data's
fingerprint, the seed, the rung, the LoRA and optimiser settings and the batch layout. A rerun resumes
from the newest *complete* checkpoint under its own key, so it never picks up another rung's or another
config's weights. The Trainer writes a checkpoint's files one by one; the marker is written after the last,
so a checkpoint cut short by a kill is recognised and removed.

SIGUSR1 (what Slurm sends `--signal=B:USR1@<grace>` seconds before the time limit) and SIGTERM (preemption,
scancel) ask the Trainer to save a checkpoint at the end of the current step and stop; `train.run` then
raises TrainInterrupted, which callers turn into "run me again" (exit code EXIT_REQUEUE, a Slurm requeue).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

from medgen.core.constants import CHECKPOINT_COMPLETE_FILE
from medgen.core.io import atomic_write_text
from medgen.core.provenance import hash_json

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
# Train settings that change when or what is logged and saved, not the weights: a rerun that only changes
# these still resumes. Everything else in `train` (the rung included) is part of the key.
NOT_SHAPING = frozenset({"eval_steps", "save_steps", "save_total_limit", "logging_steps", "max_resumes", "fallback",
                         "memory_budget_gb"})
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def checkpoint_key(model: dict, train: dict, seed: int, data_fingerprint: str, layout: dict) -> str:
    """Hash of what shapes the weights; `layout` is the resolved batch shape (rows, accumulation, row length),
    which the memory budget and the machine decide."""
    shaping = {k: v for k, v in train.items() if k not in NOT_SHAPING}
    return hash_json({"model": model, "train": shaping, "seed": seed, "data": data_fingerprint,
                      "layout": layout})[:16]


def _step(path: Path) -> int:
    m = _CHECKPOINT.fullmatch(path.name)
    return int(m.group(1)) if m else -1


def latest_complete(checkpoints: Path) -> Path | None:
    """The newest checkpoint with its marker; incomplete ones (a kill mid-save) are removed first, so the
    Trainer's own rotation never counts them."""
    if not checkpoints.is_dir():
        return None
    found = sorted((p for p in checkpoints.iterdir() if p.is_dir() and _step(p) >= 0), key=_step)
    complete = []
    for p in found:
        if (p / CHECKPOINT_COMPLETE_FILE).is_file():
            complete.append(p)
        else:
            log.warning("train: %s was cut short while it was being saved; removing it", p)
            shutil.rmtree(p, ignore_errors=True)
    return complete[-1] if complete else None


class StopRequest:
    """Which stop signal arrived, if any. Handlers are installed only on the main thread (Python's rule);
    elsewhere the process keeps its own handling, and says so."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def agree(self) -> bool:
        """Whether to stop at the end of this step: a signal here or, training data-parallel, on any rank (the
        ranks must stop at the same step, or the others wait for gradients forever)."""
        from medgen.train import distributed

        signum = distributed.largest(signal.Signals[self.signal_name].value if self.signal_name else 0)
        if signum and self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
        return bool(signum)

    def _handle(self, signum, frame) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
            # Figures only: where it stops is decided at the end of the current optimizer step.
            log.warning("train: %s received; saving a checkpoint at the end of this step, then stopping",
                        self.signal_name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        log.info("train: not on the main thread; SIGTERM/SIGUSR1 keep the process's own handling")
        yield request
        return
    previous = {s: signal.signal(s, request._handle) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def callbacks(stop: StopRequest) -> list:
    """Trainer callbacks: the completeness marker after every save, and stopping (with a save) on a signal."""
    from transformers import TrainerCallback

    from medgen.train import distributed

    class MarkComplete(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            # Every rank writes its own RNG state into the folder: all must be done before it is marked.
            distributed.barrier()
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                atomic_write_text(folder / CHECKPOINT_COMPLETE_FILE,
                                  json.dumps({"step": state.global_step, "saved_at": time.time()}))

    class StopOnSignal(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop.agree():
                control.should_save = True
                control.should_training_stop = True

    return [MarkComplete(), StopOnSignal()]
