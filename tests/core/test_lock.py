"""One writer per run_dir, across processes: fail or wait naming the holder; take over from a dead one."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from medgen.core.errors import RunLocked
from medgen.core.lock import run_lock

HOLD = """
import sys, time
from medgen.core.lock import run_lock
with run_lock(sys.argv[1], "holder process"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(run_dir: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_fails_naming_the_holder(tmp_path):
    proc = _holder(tmp_path, 30)
    try:
        with pytest.raises(RunLocked, match=rf"PID {proc.pid} on .* \(holder process, since"):
            with run_lock(tmp_path, "second"):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_waiting_writer_gets_the_lock_when_the_holder_ends(tmp_path):
    proc = _holder(tmp_path, 1.5)
    t0 = time.monotonic()
    with run_lock(tmp_path, "waiter", wait_s=30) as me:
        assert me["pid"] == os.getpid() and time.monotonic() - t0 >= 0.5
        assert json.loads((tmp_path / ".medgen.lock").read_text())["owner"] == "waiter"
    proc.wait()
    assert (tmp_path / ".medgen.lock").read_text() == ""  # a clean release leaves no record


def test_dead_holder_is_taken_over_with_a_log_line(tmp_path, caplog):
    proc = _holder(tmp_path, 30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with caplog.at_level(logging.WARNING, logger="medgen.core.lock"):
        with run_lock(tmp_path, "next"):
            pass
    assert f"taking over the lock of PID {proc.pid}" in caplog.text


def test_two_writers_in_one_process_exclude_each_other(tmp_path):
    entered = threading.Event()
    release = threading.Event()

    def hold():
        with run_lock(tmp_path, "thread"):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(10)
    try:
        with pytest.raises(RunLocked):
            with run_lock(tmp_path, "main"):
                pass
    finally:
        release.set()
        t.join()


def test_cli_stage_refuses_a_locked_run_dir(tmp_path, repo_root):
    proc = _holder(tmp_path, 60)
    try:
        out = subprocess.run([str(Path(sys.executable).parent / "medgen"), "prepare", "--set", f"run_dir={tmp_path}",
                              "--set", "data.n_records=4"], capture_output=True, text=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 75 and "another medgen run is writing here" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "prepare").exists()
