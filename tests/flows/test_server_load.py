"""The Prefect server at load: 16 generate shards at once, each its own flow run, against a Postgres-backed server
(the README's production setup). Every state and every log line must arrive."""

import pytest
from prefect_load import postgres, postgres_bin, prefect_server, run_load

pytestmark = pytest.mark.slow  # starts PostgreSQL, a Prefect server and 16 flow processes

FLOWS, RECORDS = 16, 160


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed here (Debian: apt-get install "
                    "postgresql); .ci/run installs it")
def test_sixteen_concurrent_shard_flow_runs_on_postgres_lose_nothing(tmp_path, repo_root):
    with postgres() as url, prefect_server(url, tmp_path) as (api, log):
        got = run_load(api, log, tmp_path / "run", FLOWS, RECORDS)
    assert got["failed_processes"] == 0, got["failure_tails"]
    assert got["flow_runs"] == got["flow_runs_completed"] == FLOWS, got
    assert got["task_runs_completed"] == FLOWS, got
    assert got["progress_lines"] == RECORDS and got["flow_runs_with_every_line"] == FLOWS, got
    assert got["database_locked"] == 0, got
