"""What a stage wrote, as its manifest records it, and whether it is still that: each output file's size, mtime and
xxh3-128 content hash.

A manifest that matches the inputs is only reused (medgen/core/skip.py) while its outputs are intact. The quick check
reads sizes and mtimes only; a file whose mtime moved (a copy without `-p`, a `touch`) is hashed before it is called
changed, so copying a run directory reruns nothing. `medgen verify --deep` hashes every file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ConfigDict

CHUNK = 8 << 20


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bytes: int
    mtime_ns: int
    xxh3_128: str


def hash_file(path: Path) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def files_of(paths: Iterable[Path]) -> list[Path]:
    """The files named, a folder standing for every file under it, in a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            out.append(p)
    return out


def digest(paths: Iterable[Path]) -> dict[str, FileDigest]:
    """Each output file (folders expanded) by its path as written, with its size, mtime and content hash."""
    digests = {}
    for f in files_of(paths):
        st = f.stat()
        digests[str(f)] = FileDigest(bytes=st.st_size, mtime_ns=st.st_mtime_ns, xxh3_128=hash_file(f))
    return digests


def damage(recorded: dict[str, FileDigest], deep: bool = False) -> list[str]:
    """Why the recorded outputs are no longer what the stage wrote, one reason per file; [] when intact."""
    reasons = []
    for name, want in recorded.items():
        path = Path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            reasons.append(f"{name} is missing")
            continue
        if st.st_size != want.bytes:
            reasons.append(f"{name}: expected {want.bytes:,} bytes as written, got {st.st_size:,}"
                           + (" (truncated)" if st.st_size < want.bytes else ""))
        elif (deep or st.st_mtime_ns != want.mtime_ns) and hash_file(path) != want.xxh3_128:
            reasons.append(f"{name}: its content changed after it was written (xxh3-128 differs)")
    return reasons


def identity(fingerprint: str, recorded: dict[str, FileDigest]) -> str:
    """What a downstream stage depends on: the upstream's inputs and the bytes it made from them. A rerun that
    makes other bytes from the same inputs (training is not bit-reproducible on every device) reruns what follows."""
    if not recorded:
        return fingerprint
    import hashlib

    joined = fingerprint + "".join(f"\n{os.path.basename(k)}={d.xxh3_128}" for k, d in sorted(recorded.items()))
    return hashlib.sha256(joined.encode()).hexdigest()
