"""`medgen` command line: one subcommand per stage, plus `run` for the whole Prefect pipeline.

    medgen run --config configs/default.yaml
    medgen train --config configs/default.yaml --set train.max_steps=10
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable, List, Optional

import typer
from rich.console import Console

from medgen.config import PipelineConfig, load_config
from medgen.errors import MedgenError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
console = Console(stderr=True)

ConfigOpt = typer.Option("configs/default.yaml", "--config", "-c", help="Pipeline YAML config.")
SetOpt = typer.Option(None, "--set", "-s", help="Override a key: --set train.max_steps=10 (repeatable).")


def _load(config: str, overrides: Optional[List[str]]) -> PipelineConfig:
    return load_config(config, overrides or [])


def _stage(name: str, fn: Callable, config: str, overrides, **kw) -> dict:
    cfg = _load(config, overrides)
    with console.status(f"[bold]{name}[/] …"):
        result = fn(cfg, **kw)
    manifest = result.manifest
    console.print(f"[green]{name} done[/] in {manifest.get('wall_s')} s → {result.out_dir}")
    return manifest


def _main(fn: Callable) -> Callable:
    """Turn medgen's own errors into one clear message and exit code 2, not a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except MedgenError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None
        except FileNotFoundError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@_main
def prepare(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
            source: Optional[str] = typer.Option(None, help="synthetic | alpaca | mimic (data.source)."),
            notes: Optional[str] = typer.Option(None, help="MIMIC-IV-Note discharge.csv[.gz] (data.notes)."),
            path: Optional[str] = typer.Option(None, help="Your Alpaca JSONL (data.path).")) -> None:
    """Build the Alpaca JSONL train/val/test splits, PHI spans and a dataset card."""
    from medgen import prepare as stage

    extra = [f"data.{k}={v}" for k, v in (("source", source), ("notes", notes), ("path", path)) if v]
    m = _stage("prepare", stage.run, config, [*extra, *(set or [])])
    console.print(json.dumps(m["counts"]))
    if m.get("import"):
        imp = m["import"]
        console.print(f"imported {imp['notes']} notes; {imp['masks']} masks filled, "
                      f"{imp['resolved_by_specific_rule']:.1%} by a specific rule; skipped: "
                      + (", ".join(f"{k}: {v['count']} (lines {v['lines'][:10]})" for k, v in imp["skipped"].items())
                         or "none"))
        console.print(f"categories: {imp['categories']}")
    for w in m.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
@_main
def train(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Fine-tune a LoRA adapter (QLoRA on CUDA), walking the OOM fallback ladder."""
    from medgen import train as stage

    cfg = _load(config, set)
    result = stage.walk_ladder(cfg, lambda c: stage.run(c, progress=sys.stderr.isatty()))
    m = result.manifest
    console.print(f"[green]train done[/] in {m['wall_s']} s: rung {m['rung']}, train loss "
                  f"{m['final_train_loss']}, val loss {m['final_val_loss']} → {result.adapter_dir}")


@app.command()
@_main
def merge(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Merge the adapter into the 16-bit base and save safetensors."""
    from medgen import merge as stage

    _stage("merge", stage.run, config, set)


@app.command()
@_main
def export(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Convert the merged model to GGUF and check its logits against the merged model."""
    from medgen import export as stage

    m = _stage("export", stage.run, config, set)
    if m.get("parity"):
        p = m["parity"]
        console.print(f"parity: top-1 {p['top1_agreement']:.3f}, max abs diff {p['max_abs_diff']:.4f} → {m['gguf']}")


@app.command()
@_main
def serve(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
          detach: bool = typer.Option(False, help="Return after the smoke test, leaving the server running.")) -> None:
    """Serve the GGUF (Ollama, or llama.cpp where Ollama is absent), smoke-test it, and keep it up."""
    from medgen import serve as stage

    cfg = _load(config, set)
    with console.status("[bold]serve[/] starting and smoke-testing …"):
        result = stage.run(cfg, keep_running=True)
    _print_serve(result.manifest)
    server = result.server
    if server is None or server.proc is None:
        console.print(f"Using the already running server at {result.manifest['url']}.")
        return
    console.print(f"Serving [bold]{server.model}[/] at {server.url} (OpenAI-style API: {server.url}/v1), "
                  f"PID {server.pid}. Stop it with Ctrl-C or `kill -- -{server.pid}`.")
    if detach:
        return
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        server.stop()
        console.print("stopped")


def _print_serve(m: dict) -> None:
    for note in m.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"backend: {m['backend']}  smoke test: {m['smoke']['n_passed']}/{m['smoke']['n']} passed, "
                  f"{m['smoke']['tokens_per_s']} tokens/s")
    for r in m["smoke_scores"]:
        console.print(f"  {r['sex']}/{r['service']}: passed={r['passed']} stopped={r['stopped']} "
                      f"sections={r['section_fraction']} missing={r['missing_fields']}")
    console.print(f"Modelfile: {m['modelfile']}\nGGUF: {m['gguf']}")


@app.command()
@_main
def run(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Run the whole pipeline as the Prefect flow `retrain` (embedded Prefect unless PREFECT_API_URL is set)."""
    _load(config, set)  # fail on a bad config before Prefect starts
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.retrain import retrain

    summary = retrain(config_path=config, overrides=list(set or []))
    console.print("[green]pipeline done[/]")
    print(json.dumps(summary, indent=2))
    if "serve" in summary:
        _print_serve(summary["serve"])


@app.command()
@_main
def automation(deployment: str = typer.Option("retrain/weekly", help="flow/deployment to watch."),
               max_retries: int = typer.Option(2, min=0, help="Re-runs after consecutive failures."),
               delay_s: int = typer.Option(60, min=0, help="Wait before each re-run.")) -> None:
    """Create the retry-on-failure automation for a deployment (needs PREFECT_API_URL)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.automations import create_retry_automation

    auto_id = create_retry_automation(deployment, max_retries, delay_s)
    console.print(f"automation {auto_id}: re-run {deployment} on failure, at most {max_retries} time(s)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
