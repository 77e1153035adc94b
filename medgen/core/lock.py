"""One writer per run_dir: an advisory lock that says who holds it.

`flock` on `run_dir/.medgen.lock` (the kernel drops it when its holder dies, and Linux NFS clients
carry it across nodes); the file names the holder (PID, host, what it runs), so a second writer is told
whom it waits for. A holder that died without releasing leaves its record behind: the next writer takes
the lock over and logs whose it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from medgen.core.constants import LOCK_FILE
from medgen.core.errors import RunLocked

log = logging.getLogger(__name__)


def _holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}


def _describe(h: dict) -> str:
    return (f"PID {h.get('pid', '?')} on {h.get('host', '?')} ({h.get('owner') or 'medgen'}, since "
            f"{h.get('since', '?')})")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, owner: str = "", wait_s: float = 0.0) -> Iterator[dict]:
    """Hold the run directory's lock; wait up to `wait_s` for another writer, then fail naming it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise RunLocked(f"{run_dir}: another medgen run is writing here: {_describe(_holder(fd))}; "
                                    "wait for it to finish, or use another run_dir") from None
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        stale = _holder(fd)
        if stale:
            log.warning("run_dir %s: taking over the lock of %s, which ended without releasing it", run_dir,
                        _describe(stale))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "owner": owner,
              "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # a clean release leaves no record: only a dead holder's record remains
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
