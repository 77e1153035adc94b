"""Stage skipping: a stage whose outputs exist and were made from the same inputs is not run again.

Each stage module has `inputs(config)`: the fingerprint of its config slice, its upstream manifests'
fingerprints and its input files' hashes; `run` records it in the manifest. The manifest is the truth, so
the CLI, the flow and a job on the pool all decide the same way. Changing one key changes the fingerprint
of the stage that reads it, and through the upstream fingerprints, of every stage after it: exactly those
run again. `--force` (CLI) or `orchestration.force` redoes a stage regardless.
"""

from __future__ import annotations

import importlib
import logging

from medgen.config import PipelineConfig
from medgen.constants import MANIFEST_FILE
from medgen.faults import crash_point
from medgen.results import StageResult

log = logging.getLogger(__name__)


def result_dir(config: PipelineConfig, stage: str):
    if stage == "generate":
        from medgen.generate import out_dir_for

        return out_dir_for(config, config.generate)
    return config.stage_dir(stage)


def result_type(stage: str) -> type[StageResult]:
    from medgen import generate, results

    return {"prepare": results.PrepareResult, "train": results.TrainResult, "merge": results.MergeResult,
            "export": results.ExportResult, "serve": results.ServeResult, "generate": generate.GenerateResult,
            "canaries": results.CanaryResult, "evaluate": results.EvaluateResult}[stage]


def reusable(config: PipelineConfig, stage: str) -> StageResult | None:
    """The stage's earlier result if it is complete and made from exactly these inputs, else None."""
    if config.orchestration.force:
        return None
    try:
        done = result_type(stage).from_manifest(result_dir(config, stage))
        expected = importlib.import_module(f"medgen.{stage}").inputs(config)["fingerprint"]
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
    (result_dir(config, stage) / MANIFEST_FILE).unlink(missing_ok=True)
    crash_point(f"{stage}:start")
    return importlib.import_module(f"medgen.{stage}").run(config, **kw)
