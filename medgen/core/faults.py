"""Fault injection for the crash-safety tests: with MEDGEN_CRASH_AT=<stage>:<point>, the process kills itself
(SIGKILL: no cleanup, no handler, as a node failure or the OOM killer would) when it reaches that point.

Points: `<stage>:start`, just after a stage that runs has removed its manifest, and `<stage>:manifest`,
when its outputs are written and only the manifest is still to come. Unset, nothing happens.
"""

from __future__ import annotations

import os
import signal

ENV = "MEDGEN_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
