"""File helpers: owner-only, atomic outputs, and the resolved-config + manifest every stage leaves."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from medgen.constants import MANIFEST_FILE, RESOLVED_CONFIG_FILE


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Training data may be real PHI: everything a stage creates is readable by its owner only."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success it replaces `target` whole, on error it is removed."""
    ensure_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_stage_record(out_dir: Path, config_yaml: str, manifest: dict) -> Path:
    """Leave the resolved config and a JSON manifest beside a stage's outputs."""
    atomic_write_text(out_dir / RESOLVED_CONFIG_FILE, config_yaml)
    return write_json(out_dir / MANIFEST_FILE, manifest)


def read_manifest(stage_dir: Path) -> dict:
    path = stage_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; run the stage that writes {stage_dir.name}/ first")
    return json.loads(path.read_text(encoding="utf-8"))


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
