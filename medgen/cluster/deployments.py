"""The stage deployments of prefect.yaml, generated from the stage registry: one `<stage>/slurm-gpu` deployment per
stage, sized by its `JobSize`, between two marker lines. `medgen deployments` rewrites them, `--check` says
whether prefect.yaml is current; the rest of prefect.yaml is the user's."""

from __future__ import annotations

import json
from pathlib import Path

from medgen.core.errors import ConfigError
from medgen.core.registry import STAGES, JobSize

BEGIN = "  # --- stage deployments: generated from medgen/core/registry.py by `medgen deployments`; edit the registry"
END = "  # --- end of the generated stage deployments"
POOL = "slurm-gpu"


def _job_variables(job: JobSize) -> str:
    items = [f"<<: *{'gpu_job' if job.gpus else 'cpu_job'}", f'time_limit: "{job.time_limit}"', f"mem: {job.mem}"]
    if job.gpus > 1:
        items.append(f"gres: gpu:{job.gpus}")
    if job.cpus_per_task:
        items.append(f"cpus_per_task: {job.cpus_per_task}")
    items += [f"{k}: {json.dumps(v)}" for k, v in job.extra.items()]
    return "{" + ", ".join(items) + "}"


def render() -> str:
    blocks = [BEGIN]
    for spec in STAGES:
        blocks.append(f"""  - name: {POOL}
    entrypoint: flows/pool.py:{spec.name}_flow
    description: {json.dumps(spec.help)}
    work_pool:
      name: {POOL}
      job_variables: {_job_variables(spec.job)}
""")
    blocks.append(END)
    return "\n".join(blocks) + "\n"


def _split(text: str, path: Path) -> tuple[str, str, str]:
    lines = text.splitlines(keepends=True)
    try:
        begin = next(i for i, ln in enumerate(lines) if ln.rstrip("\n") == BEGIN)
        end = next(i for i, ln in enumerate(lines) if ln.rstrip("\n") == END)
    except StopIteration:
        raise ConfigError([f"{path}: expected the marker lines of the generated stage deployments under "
                           f"`deployments:`, got none; add {BEGIN.strip()!r} and {END.strip()!r}"]) from None
    return "".join(lines[:begin]), "".join(lines[begin:end + 1]), "".join(lines[end + 1:])


def is_current(path: Path) -> bool:
    return _split(path.read_text(encoding="utf-8"), path)[1] == render()


def write(path: Path) -> bool:
    """Rewrite the generated part of `path`; True when it changed."""
    head, old, tail = _split(path.read_text(encoding="utf-8"), path)
    new = render()
    if old != new:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(head + new + tail, encoding="utf-8")
        tmp.replace(path)
    return old != new
