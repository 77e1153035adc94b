"""File helpers: owner-only, atomic outputs, the resolved-config + manifest every stage leaves, and log tails
that quote no record text."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


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


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable: a crash after os.replace must not bring back the old entry."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised inside the path it was writing (a failed write() names no file), so that "no space
    left" can say where."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def atomic_write_text(path: Path, text: str) -> Path:
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with naming(path), os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def clean_leftovers(target: Path) -> None:
    """Remove the temp folders a killed run left beside `target` (one writer per run_dir: none is live)."""
    for pattern in (f".{target.name}.*.tmp", f".{target.name}.old-*"):
        for left in target.parent.glob(pattern):
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success it replaces `target` whole, on error it is removed.

    Its files are fsynced first, and an existing `target` is swapped out in one step, so a crash leaves
    either the old folder or the new one, never neither.
    """
    ensure_dir(target.parent)
    clean_leftovers(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        with naming(target):
            yield tmp
            _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists() and _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # holds the old contents now
    else:
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    fsync_dir(target.parent)


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


LOG_READ_BYTES = 256 * 1024  # a log's end is read, never all of it: training logs grow large
QUOTED_LINE_CHARS = 300
OMITTED_MARKER = "[{n} line(s) omitted: may contain record text; see {path}]"

# A log may hold record text (a library echoing its input, a model's output), and its tail travels into
# exceptions, flow-run logs and state messages. Quoted verbatim: Python's traceback frames, medgen's own log
# lines and the messages of medgen's own exceptions (which never carry record text); of any other
# exception only the type. Every other line is counted in a marker that points at the file.
_TRACEBACK = re.compile(r"[ |+]*(Exception Group )?Traceback \(most recent call last\):$")
_CHAINED = re.compile(r"(During handling of the above exception, another exception occurred"
                      r"|The above exception was the direct cause of the following exception):$")
_FRAME = re.compile(r'[ |]*File "[^"]*", line \d+')
_EXCEPTION = re.compile(r"[ |]*(?P<type>(medgen\.[\w.]+|[\w.]*(Error|Exception|Interrupt|Exit|Warning)))"
                        r"(?P<message>:.*)?$")
_MEDGEN_LINE = re.compile(r"medgen: "  # the Slurm job script's banners
                          r"|[0-9:.]+ \| [A-Z]+ *\| medgen(\.\w+)* - "  # Prefect's console format
                          r"|(DEBUG|INFO|WARNING|ERROR|CRITICAL):medgen(\.\w+)*:")  # logging's default format


def read_tail(path: Path, max_bytes: int = LOG_READ_BYTES) -> str | None:
    """The last `max_bytes` of a text file (from a line start), or None when it cannot be read."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    if size > max_bytes:
        data = data.partition(b"\n")[2]
    return data.decode("utf-8", errors="replace")


def quotable_lines(lines: list[str], path: Path, safe: re.Pattern | None = None) -> list[str]:
    """`lines` as a message may quote them (see above); `safe` matches further lines a caller knows hold no
    record text (a daemon's own words). Runs of other lines become one marker each; blank lines are dropped."""
    out: list[str] = []
    omitted = 0
    in_traceback = in_message = False
    code_lines = 0  # a frame's source line and its ^^^ markers follow its File line

    def keep(line: str) -> None:
        nonlocal omitted
        if omitted:
            out.append(OMITTED_MARKER.format(n=omitted, path=path))
            omitted = 0
        out.append(line[:QUOTED_LINE_CHARS])

    for line in lines:
        if not line.strip():
            continue
        if _TRACEBACK.match(line) or _CHAINED.match(line):
            keep(line)
            in_traceback, in_message, code_lines = True, False, 0
            continue
        if in_traceback:
            if _FRAME.match(line):
                keep(line)
                code_lines = 2
                continue
            if code_lines and line.startswith("    "):
                keep(line)
                code_lines -= 1
                continue
            if line.lstrip(" |").startswith("[Previous line repeated"):
                keep(line)
                continue
            in_traceback = False
            m = _EXCEPTION.match(line)
            if m:
                in_message = m["type"].startswith("medgen.")
                keep(line if in_message or not m["message"]
                     else f"{m['type']}: [message omitted: may contain record text]")
                continue
        if in_message and line[:1].isspace():  # the rest of a medgen exception's message
            keep(line)
            continue
        in_message = False
        if _MEDGEN_LINE.match(line) or (safe is not None and safe.match(line)):
            keep(line)
        else:
            omitted += 1
    if omitted:
        out.append(OMITTED_MARKER.format(n=omitted, path=path))
    return out


EVERY_LINE = re.compile("")  # `safe` for a log known to hold no record text (a server not yet sent a request)


def log_tail(path: Path, n: int = 30, safe: re.Pattern | None = None) -> str:
    """The last `n` quotable lines of a log (see quotable_lines), for an error or a state message."""
    text = read_tail(path)
    if text is None:
        return f"(no log at {path})"
    return "\n".join(quotable_lines(text.splitlines(), path, safe)[-n:])


def spawn(cmd: list[str], env: dict, log_path: Path, outlive: bool = False) -> subprocess.Popen:
    """Start a server in its own process group (stopping it stops anything it forked), logging to a file, under a
    watchdog that stops it when this process ends, however it ends (medgen.core.watchdog); unless it is to
    `outlive` this process (a server kept running on purpose)."""
    from medgen.core.watchdog import watched

    if outlive:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=fd, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            os.close(fd)
    cmd, child_fd, keep_fd = watched(cmd)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=fd, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(child_fd,))
    except BaseException:
        os.close(keep_fd)
        raise
    finally:
        os.close(fd)
        os.close(child_fd)
    proc.watchdog_fd = keep_fd  # open for as long as the server should live
    return proc


def ended(proc: subprocess.Popen) -> str | None:
    """How a process ended ("exited with code 1", "was killed by signal 9 (SIGKILL)"), or None while it runs."""
    code = proc.poll()
    if code is None:
        return None
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"was killed by signal {-code}"


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM the group, then SIGKILL what is left after `timeout_s`; a watched server's pipe is closed last."""
    try:
        _stop_group(proc, timeout_s)
    finally:
        fd = getattr(proc, "watchdog_fd", None)
        if fd is not None:
            proc.watchdog_fd = None
            os.close(fd)


def _stop_group(proc: subprocess.Popen, timeout_s: float) -> None:
    # The group may outlive its leader (a supervisor that was SIGKILLed leaves its server behind), so the group,
    # not the leader, is what is waited for.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _group_alive(proc):
            time.sleep(0.05)
        if not _group_alive(proc):
            break
    proc.wait(timeout=timeout_s)


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader, or it counts as a member
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True
