"""Stage skipping: a stage whose outputs exist and were made from the same inputs is not run again.

Each stage (medgen/core/registry.py) has `inputs(config)`: the fingerprint of its config slice, its upstream manifests'
fingerprints and its input files' hashes; `run` records it in the manifest. The manifest is the truth, so
the CLI, the flow and a job on the pool all decide the same way. Changing one key changes the fingerprint
of the stage that reads it, and through the upstream fingerprints, of every stage after it: exactly those
run again. `--force` (CLI) or `orchestration.force` redoes a stage regardless.
"""

from __future__ import annotations

import logging

from medgen.core.config import PipelineConfig
from medgen.core.constants import MANIFEST_FILE
from medgen.core.faults import crash_point
from medgen.core.registry import stage as registered
from medgen.core.results import StageResult

log = logging.getLogger(__name__)


def reusable(config: PipelineConfig, stage: str) -> StageResult | None:
    """The stage's earlier result if it is complete and made from exactly these inputs, else None."""
    if config.orchestration.force:
        return None
    spec = registered(stage)
    try:
        done = spec.result.from_manifest(spec.out_dir(config))
        expected = spec.inputs(config)["fingerprint"]
    except (FileNotFoundError, ValueError):  # no manifest here or upstream, or an older manifest layout
        return None
    if done.fingerprint != expected or not done.complete():
        return None
    log.info("%s: skipped: its outputs in %s were made from these inputs (fingerprint %s); force redoes it",
             stage, done.out_dir, expected[:12])
    done.skipped = True
    return done


def run(config: PipelineConfig, stage: str, **kw) -> StageResult:
    """The stage's result: reused when its outputs match these inputs, else from running it.

    A stage that runs loses its manifest first, so outputs an interrupted run left behind are never taken
    for complete; the manifest is written last. A server asked to stay up is always started.
    """
    wants_server = stage == "serve" and (kw.get("keep_running") or (kw.get("keep_running") is None
                                                                   and config.serve.keep_running))
    if not wants_server and (done := reusable(config, stage)):
        return done
    spec = registered(stage)
    (spec.out_dir(config) / MANIFEST_FILE).unlink(missing_ok=True)
    crash_point(f"{stage}:start")
    return spec.run(config, **kw)
