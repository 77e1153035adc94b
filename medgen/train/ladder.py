"""The OOM fallback ladder: rungs of {r, max_seq_length} tried in order, each attempt run by the caller (in-process,
a Prefect task run, a Slurm job), so it imports nothing heavy and the orchestrator may walk it."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from medgen.core.config import PipelineConfig
from medgen.core.constants import OOM_BUDGET_FACTOR
from medgen.core.errors import FailureKind, LadderExhausted, MedgenError, TrainOOM

log = logging.getLogger(__name__)
T = TypeVar("T")


def walk_ladder(config: PipelineConfig, attempt: Callable[[PipelineConfig], T], max_resumes: int = 0) -> T:
    """Try each rung of the OOM ladder in order with `attempt(config_for_rung)`.

    Only TrainOOM moves down the ladder. A rung stopped by its time limit or by preemption (TrainInterrupted
    there, or a job Slurm ended TIMEOUT/PREEMPTED/NODE_FAIL) is attempted again, up to `max_resumes` times,
    and resumes from its checkpoint; any other error propagates as is. The caller chooses how an attempt runs
    (in-process, a Prefect task run, a Slurm job), so each attempt keeps its real parameters.
    An OOM also shows that the memory estimate ran high: with train.memory_budget_gb set, each later rung
    plans to a smaller budget (OOM_BUDGET_FACTOR per failure), so it packs fewer tokens per micro-batch.
    """
    failures = []
    budget = config.train.memory_budget_gb
    for rung in config.ladder():
        cfg = config.with_rung(rung)
        if budget is not None and failures:
            cfg.train.memory_budget_gb = round(budget * OOM_BUDGET_FACTOR ** len(failures), 2)
        resumes = 0
        while True:
            try:
                return attempt(cfg)
            except TrainOOM as e:
                log.warning("train: %s; trying the next rung", e)
                failures.append(str(e))
                break
            except MedgenError as e:
                if e.kind not in (FailureKind.TIMEOUT, FailureKind.PREEMPTED) or resumes >= max_resumes:
                    raise
                resumes += 1
                log.warning("train: %s; running the same rung again to resume (%d of train.max_resumes=%d)",
                            e, resumes, max_resumes)
    raise LadderExhausted(failures)
