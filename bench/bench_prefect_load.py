"""How a Prefect server holds the load of a sharded `generate`: N shard flow runs at once, each logging a line per
record, against PostgreSQL and against the default SQLite. Prints one line of figures per database.

    .venv/bin/python bench/bench_prefect_load.py --flows 16 --records 160

Figures: wall time until every shard process ended, processes that failed, flow runs and task runs the server
holds as Completed, progress lines received (of --records), and "database is locked" errors in the server log.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "flows")]

from prefect_load import postgres, prefect_server, run_load  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=16)
    ap.add_argument("--records", type=int, default=160)
    ap.add_argument("--databases", default="postgres,sqlite")
    args = ap.parse_args()
    for db in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix=f"medgen-load-{db}-") as tmp:
            home = Path(tmp)
            if db == "postgres":
                with postgres() as url, prefect_server(url, home) as (api, log):
                    got = run_load(api, log, home / "run", args.flows, args.records)
            else:
                with prefect_server(None, home) as (api, log):
                    got = run_load(api, log, home / "run", args.flows, args.records)
        got.pop("failure_tails")
        print(json.dumps({"database": db, **got}), flush=True)


if __name__ == "__main__":
    main()
