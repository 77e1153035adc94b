"""`medgen` command line: one subcommand per stage.

    medgen train --config configs/default.yaml --set train.max_steps=10

The Prefect commands (`run`, `automation`) are added by `medgen.flows.cli`, the console script's entry
point, so that this core module never imports Prefect.
"""

from __future__ import annotations

import json
import sys
import time
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


def _stage(name: str, fn: Callable, config: str, overrides, **kw):
    cfg = _load(config, overrides)
    with console.status(f"[bold]{name}[/] …"):
        result = fn(cfg, **kw)
    console.print(f"[green]{name} done[/] in {result.wall_s} s → {result.out_dir}")
    return result


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
    console.print(json.dumps(m.counts))
    if m.import_report:
        imp = m.import_report
        console.print(f"imported {imp['notes']} notes; {imp['masks']} masks filled, "
                      f"{imp['resolved_by_specific_rule']:.1%} by a specific rule; skipped: "
                      + (", ".join(f"{k}: {v['count']} (lines {v['lines'][:10]})" for k, v in imp["skipped"].items())
                         or "none"))
        console.print(f"categories: {imp['categories']}")
    for w in m.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
@_main
def train(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Fine-tune a LoRA adapter (QLoRA on CUDA), walking the OOM fallback ladder."""
    from medgen import train as stage

    cfg = _load(config, set)
    m = stage.walk_ladder(cfg, lambda c: stage.run(c, progress=sys.stderr.isatty()))
    console.print(f"[green]train done[/] in {m.wall_s} s: rung r={m.rung.r} seq={m.rung.max_seq_length}, train "
                  f"loss {m.final_train_loss}, val loss {m.final_val_loss} → {m.adapter_dir}")


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
    if m.parity:
        p = m.parity
        console.print(f"parity: top-1 {p['top1_agreement']:.3f}, mean KL {p['kl_mean']:.5f} → {m.gguf}")


@app.command()
@_main
def serve(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
          detach: bool = typer.Option(False, help="Return after the smoke test, leaving the server running.")) -> None:
    """Serve the GGUF (Ollama, or llama.cpp where Ollama is absent), smoke-test it, and keep it up."""
    from medgen import serve as stage

    cfg = _load(config, set)
    with console.status("[bold]serve[/] starting and smoke-testing …"):
        result = stage.run(cfg, keep_running=True, raise_on_failure=False)
    print_serve(result)
    server = result.server
    if server.pid is None:
        console.print(f"Using the already running server at {result.url}.")
    else:
        # Said even when the smoke test failed: the server is up and the user must be able to stop it.
        console.print(f"Serving [bold]{server.model}[/] at {server.url} (OpenAI-style API: {server.url}/v1), "
                      f"PID {server.pid}. Stop it with Ctrl-C or `kill -- -{server.pid}`.")
    if not result.smoke["passed"]:
        result.raise_for_smoke()
    if detach or server.pid is None:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        console.print("stopped")


@app.command()
@_main
def generate(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
             merge: bool = typer.Option(False, "--merge", help="Merge the finished shards (generate.shards > 1).")
             ) -> None:
    """Generate the labelled corpus (generate.n records, or one shard of it) against the served model.

    Resumable: rerun the same command after an interruption and it continues where it stopped.
    """
    from medgen import generate as stage

    m = _stage("generate", stage.merge_shards if merge else stage.run, config, set)
    c = m.counts
    console.print(f"{c['valid']}/{c['planned']} valid ({c['valid_fraction']:.1%}), rejected by reason: "
                  f"{m.rejections_by_reason or 'none'}; {m.tokens_per_s} tokens/s → {m.files.get('records')}")


@app.command()
@_main
def evaluate(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Quality, diversity, privacy and utility of the generated corpus, and the release gate's verdict."""
    from medgen import evaluate as stage

    m = _stage("evaluate", stage.run, config, set)
    verdict = "[green]passes[/]" if m.gate["passed"] else "[red]fails[/]"
    console.print(f"gate {verdict}" + "".join(f"\n  - {r}" for r in m.gate["reasons"]))
    console.print(f"report: {m.files.get('report')}  {m.files.get('html')}")


@app.command()
@_main
def release(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Release the evaluated model when its corpus passed the gate (records released.json, moves the Ollama tag)."""
    from medgen import release as stage

    record = stage.run(_load(config, set))
    console.print(f"[green]released[/] {record['tag']} from {record['run_dir']}")


def print_serve(m) -> None:
    for note in m.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"backend: {m.backend}  smoke test: {m.smoke['n_passed']}/{m.smoke['n']} passed, "
                  f"{m.smoke['tokens_per_s']} tokens/s")
    for r in m.smoke_scores:
        console.print(f"  {r['sex']}/{r['service']}: passed={r['passed']} stopped={r['stopped']} "
                      f"sections={r['section_fraction']} missing={r['missing_fields']}")
    console.print(f"Modelfile: {m.modelfile}\nGGUF: {m.gguf}")
