"""The generate journal: one fsynced JSON line per finished request, under a header line with the run's
fingerprint, so a crash loses at most the line being written and a rerun with the same fingerprint resumes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from medgen.core.io import atomic_write_text, naming

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
JOURNAL_KIND = "medgen.generate.journal"


@dataclass
class Resumed:
    entries: dict[str, dict]  # by id, first occurrence only
    torn: int


def read_journal(path: Path, fp: str) -> Resumed | None:
    """The finished requests of an interrupted run with fingerprint `fp`; None when there is no journal or it
    belongs to another run. An unreadable line (a write cut by a crash) is dropped and counted."""
    if not path.is_file():
        return None
    lines = path.read_bytes().split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != JOURNAL_KIND or header.get("fingerprint") != fp:
        log.info("generate: %s is from another plan or config (expected fingerprint %s); starting over",
                 path, fp[:12])
        return None
    entries: dict[str, dict] = {}
    torn = 0
    for raw in lines[1:]:
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            torn += 1
            continue
        if isinstance(entry, dict) and "id" in entry:
            entries.setdefault(entry["id"], entry)
        else:
            torn += 1
    return Resumed(entries, torn)


class Journal:
    """Append-only, one fsynced JSON line per finished request, so a crash loses at most the line being written."""

    def __init__(self, path: Path, fp: str, kept: list[dict]):
        # Rewritten whole first: a torn line left in place would glue itself to the next append.
        header = {"kind": JOURNAL_KIND, "fingerprint": fp}
        atomic_write_text(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in [header, *kept]))
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def append(self, entry: dict) -> None:
        with naming(self.path):
            self._f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        # A close that cannot flush (the disk filled) leaves a torn last line, which a resume drops: the error that
        # stopped the run is the one to report.
        with contextlib.suppress(OSError):
            self._f.close()


