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
from rich.text import Text

from medgen.config import PipelineConfig, load_config
from medgen.constants import EXIT_REQUEUE
from medgen.errors import MedgenError, TrainInterrupted

# Plain click rendering (rich_markup_mode=None): a bad option is then one "Error: ..." line, not a box that
# wraps the message at the terminal's width.
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0], rich_markup_mode=None)
console = Console(stderr=True, soft_wrap=True)  # an error stays one line, whatever the terminal width

ConfigOpt = typer.Option("configs/default.yaml", "--config", "-c", help="Pipeline YAML config.")
SetOpt = typer.Option(None, "--set", "-s", help="Override a key: --set train.max_steps=10 (repeatable).")
ForceOpt = typer.Option(False, "--force", help="Run the stage even if its outputs were made from the same inputs "
                        "(otherwise it is skipped).")


def _load(config: str, overrides: Optional[List[str]]) -> PipelineConfig:
    return load_config(config, overrides or [])


def _locked(cfg: PipelineConfig, what: str, where=None):
    from medgen.lock import run_lock

    return run_lock(where or cfg.run_path, f"medgen {what}", cfg.orchestration.lock_wait_s)


def _stage(name: str, config: str, overrides, force: bool = False, fn: Callable | None = None,
           lock_dir: Callable | None = None, **kw):
    """Run a stage (or `fn`) under the run_dir's lock; a stage whose outputs match its inputs is skipped."""
    from medgen import skip

    cfg = _load(config, [*(overrides or []), *(["orchestration.force=true"] if force else [])])
    with _locked(cfg, name, lock_dir(cfg) if lock_dir else None), console.status(f"[bold]{name}[/] …"):
        result = fn(cfg, **kw) if fn else skip.run(cfg, name, **kw)
    if result.skipped:
        console.print(f"[green]{name} skipped[/]: {result.out_dir} was made from these inputs "
                      f"(fingerprint {result.fingerprint[:12]}); --force redoes it")
    else:
        console.print(f"[green]{name} done[/] in {result.wall_s} s → {result.out_dir}")
    return result


def _error(message: str) -> None:
    # The message is text: brackets in it (a list, [[markup]]) are not rich markup.
    console.print(Text.assemble(("error:", "red"), " ", message))


def _main(fn: Callable) -> Callable:
    """Turn medgen's own errors into one clear message and exit code 2, not a traceback; a training stopped
    by a signal after its checkpoint exits EXIT_REQUEUE, so a scheduler's script can requeue it."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except TrainInterrupted as e:
            _error(str(e))
            raise typer.Exit(EXIT_REQUEUE) from None
        except MedgenError as e:
            _error(str(e))
            raise typer.Exit(2) from None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
            _error(f"{e.filename}: {e.strerror}; check the path and that your user may read it")
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@_main
def prepare(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
            source: Optional[str] = typer.Option(None, help="synthetic | alpaca | mimic (data.source)."),
            notes: Optional[str] = typer.Option(None, help="MIMIC-IV-Note discharge.csv[.gz] (data.notes)."),
            path: Optional[str] = typer.Option(None, help="Your Alpaca JSONL (data.path)."),
            force: bool = ForceOpt) -> None:
    """Build the Alpaca JSONL train/val/test splits, PHI spans and a dataset card."""
    extra = [f"data.{k}={v}" for k, v in (("source", source), ("notes", notes), ("path", path)) if v]
    m = _stage("prepare", config, [*extra, *(set or [])], force)
    console.print(json.dumps(m.counts))
    if m.import_report:
        imp = m.import_report
        console.print(f"imported {imp['notes']} notes; {imp['masks']} masks filled, "
                      + (f"{imp['resolved_by_specific_rule']:.1%} by a specific rule" if imp["masks"] else "none to type")
                      + "; skipped: "
                      + (", ".join(f"{k}: {v['count']} (lines {v['lines'][:10]})" for k, v in imp["skipped"].items())
                         or "none"))
        console.print(f"categories: {imp['categories']}")
    for w in m.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
@_main
def train(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Fine-tune a LoRA adapter (QLoRA on CUDA), walking the OOM fallback ladder."""
    from medgen import skip
    from medgen import train as stage

    cfg = _load(config, [*(set or []), *(["orchestration.force=true"] if force else [])])
    with _locked(cfg, "train"):
        m = stage.walk_ladder(cfg, lambda c: skip.run(c, "train", progress=sys.stderr.isatty()))
    verb = "skipped (made from these inputs)" if m.skipped else "done"
    if m.resumed_from_step is not None and not m.skipped:
        verb += f" (resumed from step {m.resumed_from_step})"
    console.print(f"[green]train {verb}[/] in {m.wall_s} s: rung r={m.rung.r} seq={m.rung.max_seq_length}, train "
                  f"loss {m.final_train_loss}, val loss {m.final_val_loss} → {m.adapter_dir}")


@app.command()
@_main
def merge(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Merge the adapter into the 16-bit base and save safetensors."""
    _stage("merge", config, set, force)


@app.command()
@_main
def export(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Convert the merged model to GGUF and check its logits against the merged model."""
    m = _stage("export", config, set, force)
    if m.parity:
        p = m.parity
        console.print(f"parity: top-1 {p['top1_agreement']:.3f}, mean KL {p['kl_mean']:.5f} → {m.gguf}")


@app.command()
@_main
def serve(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
          detach: bool = typer.Option(False, help="Return after the smoke test, leaving the server running."),
          stop: bool = typer.Option(False, "--stop", help="Stop the server a previous serve left running "
                                    "(its Slurm job, or its process here).")) -> None:
    """Serve the GGUF (Ollama, or llama.cpp where Ollama is absent), smoke-test it, and keep it up."""
    from medgen import serve as stage

    cfg = _load(config, set)
    if stop:
        info = stage.stop(cfg)
        where = f"Slurm job {info['slurm_job_id']}" if info.get("slurm_job_id") else f"PID {info['pid']}"
        console.print(f"stopped the server at {info['url']} ({where} on {info['host']})")
        return
    with _locked(cfg, "serve"), console.status("[bold]serve[/] starting and smoke-testing …"):
        result = stage.run(cfg, keep_running=True, raise_on_failure=False)
    print_serve(result)
    server = result.server
    if server.pid is None:
        console.print(f"Using the already running server at {result.url}.")
    else:
        # Said even when the smoke test failed: the server is up and the user must be able to stop it.
        console.print(f"Serving [bold]{server.model}[/] at {server.url} (OpenAI-style API: {server.url}/v1), "
                      f"PID {server.pid}. Stop it with Ctrl-C, `medgen serve --stop` or `kill -- -{server.pid}`.")
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
             merge: bool = typer.Option(False, "--merge", help="Merge the finished shards (generate.shards > 1)."),
             force: bool = ForceOpt) -> None:
    """Generate the labelled corpus (generate.n records, or one shard of it) against the served model.

    Resumable: rerun the same command after an interruption and it continues where it stopped.
    """
    from medgen import generate as stage

    # Shards run at once, from several nodes: each locks its own folder, not the whole run.
    def lock_dir(cfg):
        return stage.out_dir_for(cfg, cfg.generate) if cfg.generate.shards > 1 and not merge else None

    m = _stage("generate", config, set, force, fn=stage.merge_shards if merge else None, lock_dir=lock_dir)
    c = m.counts
    console.print(f"{c['valid']}/{c['planned']} valid ({c['valid_fraction']:.1%}), rejected by reason: "
                  f"{m.rejections_by_reason or 'none'}; {m.tokens_per_s} tokens/s → {m.files.get('records')}")


@app.command()
@_main
def canaries(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Ask the exported model for the planted canaries' Sex and Service: how often it emits their PHI."""
    from medgen import canaries as stage

    m = _stage("canaries", config, set, force)
    for group, f in m.extraction.items():
        label = "held out (control)" if group == stage.HELD_OUT else f"{group} copies in training"
        console.print(f"{label}: {f['extracted_samples']}/{f['samples']} samples emitted the canary's PHI "
                      f"(rate {f['rate']}, {f['canaries_extracted']}/{f['canaries']} canaries)")


@app.command()
@_main
def evaluate(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Quality, diversity, privacy and utility of the generated corpus, and the release gate's verdict."""
    m = _stage("evaluate", config, set, force)
    verdict = "[green]passes[/]" if m.gate["passed"] else "[red]fails[/]"
    console.print(f"gate {verdict}" + "".join(f"\n  - {r}" for r in m.gate["reasons"]))
    console.print(f"report: {m.files.get('report')}  {m.files.get('html')}")


@app.command()
@_main
def release(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Release the evaluated model when its corpus passed the gate (records released.json, moves the Ollama tag)."""
    from medgen import release as stage

    cfg = _load(config, set)
    with _locked(cfg, "release"):
        record = stage.run(cfg)
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
