"""Provenance for manifests: what produced a stage's outputs (versions, git SHA) and from what (fingerprints).

Fingerprints are content hashes. A stage's input fingerprint combines the config slice that shapes its
outputs with the fingerprints of the upstream manifests, so a change anywhere upstream changes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import medgen

# Libraries whose versions change what a stage produces.
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes", "gguf",
             "xllamacpp", "faker", "datasketch", "python-crfsuite", "prefect")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_sha() -> str | None:
    """The checkout's commit (with '-dirty' for local changes), or None outside a git checkout."""
    root = Path(medgen.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("-dirty" if dirty else "")) if sha else None


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    return {"medgen": medgen.__version__, "git_sha": git_sha(), "python": platform.python_version(),
            "libraries": {name: v for name in LIBRARIES if (v := _version(name))}}


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(config_slice: Any, upstream: dict[str, str], files: dict[str, Path] | None = None) -> dict:
    """The inputs of a stage: its config slice, upstream stage fingerprints and any input files' hashes."""
    inputs = {"config": hash_json(config_slice), "upstream": dict(sorted(upstream.items())),
              "files": {k: hash_file(p) for k, p in sorted((files or {}).items())}}
    return {"inputs": inputs, "fingerprint": hash_json(inputs)}
