"""Many generate shards at once, each its own flow run in its own process, reporting to one Prefect server: the load
a sharded `generate` puts on the server. Used by tests/flows/test_server_load.py and bench/bench_prefect_load.py.

Each shard runs the pool's real `generate` flow (flows/pool.py) on a fake backend (tests/fakes.py) and logs every
record's progress line, so that every state, log line and artifact update it sends can be counted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
SHARD = r"""
import sys
sys.path[:0] = [{tests!r}, {flows!r}]
from conftest import tiny_config
from fakes import fake
from medgen.core import progress
from medgen.generate import stage

progress.LOG_EVERY_S = 0  # a log line per record: the load on the server's log writes
stage.serve_export = lambda config, out_dir: (fake(delay=0.02), ())
from medgen.flows.pool import FLOWS

run_dir, shard, shards, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
config = tiny_config(run_dir, f"generate.n={{n}}", f"generate.shards={{shards}}", f"generate.shard={{shard}}")
FLOWS["generate"](config=config.model_dump(mode="json"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return Path(found).resolve().parent if found else None  # /usr/local/bin may hold links to some tools only


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A private PostgreSQL cluster on a free loopback port (Debian's `postgresql`): its asyncpg URL. As root it runs as
    the `postgres` user, which initdb requires."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("initdb: PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="medgen-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = root / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def prefect_server(database_url: str | None, home: Path) -> Iterator[tuple[str, Path]]:
    """`prefect server start` on a free port, on `database_url` (None: its default SQLite file under `home`): its API
    URL and its log."""
    port = free_port()
    log = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import urllib.request

        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Prefect server did not start; see {log}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/api", log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_load(api_url: str, server_log: Path, run_dir: Path, flows: int, records: int) -> dict:
    """Start `flows` shard processes at once, wait for them, and count what reached the server."""
    from conftest import tiny_config
    from fakes import write_prepare_manifest

    write_prepare_manifest(tiny_config(run_dir))
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": str(ROOT)}
    code = SHARD.format(tests=str(TESTS), flows=str(TESTS / "flows"))
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(run_dir), str(k), str(flows), str(records)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for k in range(flows)]
    failed = [p.stderr.read()[-2000:] for p in procs if p.wait(900) != 0]
    wall = time.monotonic() - t0
    time.sleep(2)  # events and logs the server received are written a moment later
    return {"flows": flows, "records": records, "wall_s": round(wall, 1), "failed_processes": len(failed),
            "failure_tails": failed[:2], **_received(api_url, flows, records),
            "database_locked": server_log.read_text(errors="replace").count("database is locked")}


def _received(api_url: str, flows: int, records: int) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> dict:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["generate"])))
            completed = [r for r in runs if r.state and r.state.is_completed()]
            progress_lines, complete_logs = 0, 0
            for r in runs:
                logs, offset = [], 0
                while batch := await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id])),
                                                      offset=offset, limit=200):
                    logs += batch
                    offset += len(batch)
                lines = {log.message for log in logs if log.message.startswith("generate: ")
                         and " records (" in log.message}
                progress_lines += len(lines)
                complete_logs += len(lines) == records // flows + (r.parameters["config"]["generate"]["shard"]
                                                                   < records % flows)
            task_runs = await client.read_task_runs()
            return {"flow_runs": len(runs), "flow_runs_completed": len(completed),
                    "task_runs_completed": sum(1 for t in task_runs if t.state and t.state.is_completed()),
                    "progress_lines": progress_lines, "flow_runs_with_every_line": complete_logs}

    with temporary_settings({PREFECT_API_URL: api_url}):
        return asyncio.run(read())
