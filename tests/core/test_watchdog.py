"""A server medgen starts ends with medgen, however medgen ends, and reports how it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from medgen.core.io import spawn, stop_process_group

SERVER = [sys.executable, "-c", "import time; time.sleep(300)"]


def _group(pgid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _gone(pgid: int, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group(pgid):
            return True
        time.sleep(0.1)
    return False


def _server_pid(watchdog_pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        others = [p for p in _group(watchdog_pid) if p != watchdog_pid]
        if others:
            return others[0]
        time.sleep(0.05)
    raise AssertionError("the watched server never started")


def test_a_sigkilled_starter_takes_its_server_with_it(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from medgen.core.io import spawn; "
         f"p = spawn({SERVER!r}, {{}}, Path({str(tmp_path / 'server.log')!r})); print(p.pid, flush=True); "
         "time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    watchdog = int(starter.stdout.readline())
    server = _server_pid(watchdog)
    starter.kill()
    starter.wait()
    assert _gone(watchdog), f"server {server} outlived the SIGKILLed process that started it"


def test_a_killed_server_reads_as_killed_by_its_signal(tmp_path):
    proc = spawn(SERVER, {}, tmp_path / "server.log")
    try:
        os.kill(_server_pid(proc.pid), signal.SIGKILL)
        assert proc.wait(timeout=20) == -signal.SIGKILL
    finally:
        stop_process_group(proc)


def test_stopping_a_server_whose_supervisor_was_sigkilled_still_stops_the_server(tmp_path):
    proc = spawn(SERVER, {}, tmp_path / "server.log")
    server = _server_pid(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert server in _group(proc.pid)
    stop_process_group(proc, timeout_s=5)
    assert _gone(proc.pid)


def test_a_server_meant_to_outlive_its_starter_does(tmp_path):
    proc = spawn(SERVER, {}, Path(tmp_path / "server.log"), outlive=True)
    try:
        assert proc.args == SERVER and proc.poll() is None and getattr(proc, "watchdog_fd", None) is None
    finally:
        stop_process_group(proc)
    assert _gone(proc.pid)
