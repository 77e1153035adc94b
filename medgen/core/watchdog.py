"""Tie a server's life to medgen's: a child started through `watched` stops when the medgen process that started it
ends, however it ends (a SIGKILL included, which no handler sees).

The parent keeps the write end of a pipe; the child is this module run as a small supervisor that holds the read
end, starts the real command in its own process group, and waits. When the parent dies, the kernel closes the write
end, the supervisor's read returns end-of-file, and it stops the group: SIGTERM, then SIGKILL after a grace period.
(PR_SET_PDEATHSIG would fire when the parent's *thread* ends, and generation starts servers from worker threads.)

    python -m medgen.core.watchdog --fd 5 -- ollama serve
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 10.0


def watched(cmd: list[str]) -> tuple[list[str], int, int]:
    """(the command to start instead, the fd to pass to it, the fd the parent keeps open for as long as it lives).
    Close the kept fd when the child is stopped on purpose."""
    read_end, write_end = os.pipe()  # neither is inherited by other children: pass_fds hands the read end on
    return [sys.executable, "-m", "medgen.core.watchdog", "--fd", str(read_end), "--", *cmd], read_end, write_end


def _stop_group() -> None:
    # The server runs in this supervisor's process group, so a SIGKILL of the supervisor itself still leaves a group
    # its starter can stop. The signal reaches the supervisor too, whose handler only repeats the request.
    os.killpg(0, signal.SIGTERM)
    time.sleep(GRACE_S)
    os.killpg(0, signal.SIGKILL)  # still here: the server ignored SIGTERM; this ends the supervisor with it


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m medgen.core.watchdog", description=__doc__.split("\n\n")[0])
    ap.add_argument("--fd", type=int, required=True, help="read end of the parent's pipe")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    stop = threading.Event()

    def parent_gone() -> None:
        while os.read(args.fd, 1):  # nothing is ever written: a read returns only at end-of-file
            pass
        stop.set()

    def stopper() -> None:
        stop.wait()
        _stop_group()

    for sig in (signal.SIGTERM, signal.SIGINT):  # stopping the supervisor stops its server
        signal.signal(sig, lambda *_: stop.set())
    child = subprocess.Popen(cmd)
    threading.Thread(target=parent_gone, daemon=True).start()
    threading.Thread(target=stopper, daemon=True).start()
    code = child.wait()  # the process ends here, and its threads with it
    if code < 0:  # end as the server ended, so the parent reads "killed by signal 9", not a code
        if -code != signal.SIGKILL:  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
