"""The `medgen` console script: the stage commands of `medgen.cli` plus the Prefect ones.

    medgen run --config configs/default.yaml        # the whole pipeline as the Prefect flow `retrain`
    medgen automation --deployment retrain/weekly    # retry failed runs of a deployment
"""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from medgen.cli import ConfigOpt, SetOpt, _load, _main, app, closing_lines, console


@app.command()
@_main
def run(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
        force: bool = typer.Option(False, "--force", help="Redo every stage, even those whose outputs were made "
                                   "from the same inputs (otherwise skipped).")) -> None:
    """Run the whole pipeline as the Prefect flow `retrain` (embedded Prefect unless PREFECT_API_URL is set)."""
    cfg = _load(config, set)  # fail on a bad config before Prefect starts
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its embedded server 20 s to start; on a busy 2-core node (a training job beside it) it can
    # take longer, and the run would fail before its first stage.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from medgen.flows.retrain import retrain

    summary = retrain(config_path=config, overrides=list(set or []), force=force)
    console.print("[green]pipeline done[/]")
    for line in closing_lines(cfg, summary.get("skipped", [])):
        print(line)


@app.command()
@_main
def automation(deployment: str = typer.Option("retrain/weekly", help="flow/deployment to watch."),
               max_retries: int = typer.Option(2, min=0, help="Re-runs after consecutive failures."),
               delay_s: int = typer.Option(60, min=0, help="Wait before each re-run.")) -> None:
    """Create the retry-on-failure automation for a deployment (needs PREFECT_API_URL)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from medgen.flows.automations import create_retry_automation

    auto_id = create_retry_automation(deployment, max_retries, delay_s)
    console.print(f"automation {auto_id}: re-run {deployment} on failure, at most {max_retries} time(s)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
