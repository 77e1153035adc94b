"""Stage skipping: a stage whose outputs exist and were made from the same inputs is not run again.

Each stage (medgen/core/registry.py) has `inputs(config)`: the fingerprint of its config slice, its upstream manifests'
identities (their fingerprints and the hashes of what they wrote) and its input files' hashes; `run` records it in
the manifest, with the size, mtime and hash of every output (medgen/core/integrity.py). Outputs that were deleted,
truncated or changed since are made again, and the log says which file and how. The manifest is the truth, so
the CLI, the flow and a job on the pool all decide the same way. Changing one key changes the fingerprint
of the stage that reads it, and through the upstream fingerprints, of every stage after it: exactly those
run again. `--force` (CLI) or `orchestration.force` redoes a stage regardless.
"""

from __future__ import annotations

import logging

from medgen.core.config import PipelineConfig
from medgen.core.constants import MANIFEST_FILE
from medgen.core.errors import OutputsDamaged
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
    if done.fingerprint != expected:
        return None
    if damaged := done.damage():
        log.warning("%s: running it again: its outputs are not what it wrote: %s", stage, "; ".join(damaged[:3])
                    + (f"; and {len(damaged) - 3} more" if len(damaged) > 3 else ""))
        return None
    log.info("%s: skipped: its outputs in %s were made from these inputs (fingerprint %s); force redoes it",
             stage, done.out_dir, expected[:12])
    done.skipped = True
    return done


def check_upstream(config: PipelineConfig, stage: str) -> None:
    """Refuse to build on outputs an upstream stage no longer has as it wrote them (a truncated GGUF, a deleted
    split): one line naming the file and the stage to run again. (`medgen run` redoes such a stage itself.)"""
    for name in registered(stage).upstream:
        spec = registered(name)
        try:
            done = spec.result.from_manifest(spec.out_dir(config))
        except (FileNotFoundError, ValueError):
            # Not run (or an older layout): the stage reads what it needs itself, and MissingUpstream names it.
            continue
        if damaged := done.damage():
            raise OutputsDamaged(f"{stage}: {damaged[0]}" + (f" (and {len(damaged) - 1} more)" if damaged[1:] else "")
                                 + f"; {name} must run again: `medgen {name}` (or `medgen run`, which redoes it), "
                                 "then rerun this")


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
    check_upstream(config, stage)
    (spec.out_dir(config) / MANIFEST_FILE).unlink(missing_ok=True)
    crash_point(f"{stage}:start")
    return spec.run(config, **kw)


def verify(config: PipelineConfig, deep: bool = False) -> list[tuple[str, str, list[str]]]:
    """Each stage's state in the run directory: (stage, 'intact' | 'damaged' | 'not run', reasons or file lines)."""
    from medgen.core.registry import STAGES

    rows = []
    for spec in STAGES:
        try:
            done = spec.result.from_manifest(spec.out_dir(config))
        except (FileNotFoundError, ValueError):
            rows.append((spec.name, "not run", []))
            continue
        damaged = done.damage(deep)
        size = sum(d.bytes for d in done.outputs.values())
        rows.append((spec.name, "damaged", damaged) if damaged else
                    (spec.name, "intact", [f"{len(done.outputs)} files, {size / 2**20:,.1f} MiB"
                                           + (", hashes checked" if deep else "")]))
    return rows
