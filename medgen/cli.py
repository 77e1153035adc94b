"""medgen: from a base instruct LLM to a labelled corpus of synthetic discharge records, stage by stage.

One subcommand per registered stage (medgen/core/registry.py), plus `release`, `export-corpus`, `verify` and
`deployments`.

    medgen train --config configs/default.yaml --set train.max_steps=10

A stage without options of its own gets its subcommand from the registry; its module's `report(result)`, where
it has one, says what to print beyond "done".

The Prefect commands (`run`, `automation`) are added by `medgen.flows.cli`, the console script's entry
point, so that this core module never imports Prefect.
"""

from __future__ import annotations

import json
import time
from typing import Callable, List, Optional

import typer
from rich.text import Text

from medgen.core.config import PipelineConfig, load_config
from medgen.core.errors import EXIT_CODES, EXIT_INPUT, MedgenError, storage_error
from medgen.core.progress import CONSOLE, log_to_console

# Plain click rendering (rich_markup_mode=None): a bad option is then one "Error: ..." line, not a box that
# wraps the message at the terminal's width.
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0], rich_markup_mode=None)
console = CONSOLE  # stderr, soft-wrapped: an error stays one line, whatever the terminal width


@app.callback()
def _setup() -> None:
    """Log lines to stderr, for every subcommand."""
    log_to_console()


ConfigOpt = typer.Option("configs/default.yaml", "--config", "-c", help="Pipeline YAML config.")
SetOpt = typer.Option(None, "--set", "-s", help="Override a key: --set train.max_steps=10 (repeatable).")
ForceOpt = typer.Option(False, "--force", help="Run the stage even if its outputs were made from the same inputs "
                        "(otherwise it is skipped).")


def _load(config: str, overrides: Optional[List[str]]) -> PipelineConfig:
    return load_config(config, overrides or [])


def _locked(cfg: PipelineConfig, what: str, where=None):
    from medgen.core.lock import run_lock

    return run_lock(where or cfg.run_path, f"medgen {what}", cfg.orchestration.lock_wait_s)


def _stage(name: str, config: str, overrides, force: bool = False, fn: Callable | None = None,
           lock_dir: Callable | None = None, **kw):
    """Run a stage (or `fn`) under the run_dir's lock; a stage whose outputs match its inputs is skipped."""
    from medgen.core import skip

    cfg = _load(config, [*(overrides or []), *(["orchestration.force=true"] if force else [])])
    with _locked(cfg, name, lock_dir(cfg) if lock_dir else None), console.status(f"[bold]{name}[/] …"):
        result = fn(cfg, **kw) if fn else skip.run(cfg, name, **kw)
    if result.skipped:
        console.print(f"[green]{name} skipped[/]: {result.out_dir} was made from these inputs "
                      f"(fingerprint {result.fingerprint[:12]}); --force redoes it")
    else:
        console.print(f"[green]{name} done[/] in {result.wall_s} s → {result.out_dir}")
    for line in _report(name, result):
        console.print(Text(line))
    return result


def _report(name: str, result) -> list[str]:
    from medgen.core.registry import stage

    module = stage(name).load()
    return module.report(result) if hasattr(module, "report") else []


def _error(message: str) -> None:
    # The message is text: brackets in it (a list, [[markup]]) are not rich markup.
    console.print(Text.assemble(("error:", "red"), " ", message))


def _main(fn: Callable) -> Callable:
    """Turn medgen's own errors into one clear message and an exit code, not a traceback: 2 for input to fix,
    75 (EXIT_REQUEUE) for "run me again" (a training stopped by a signal after its checkpoint, a server that
    died, a run dir locked by another run), 74 for a full or read-only disk."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except MedgenError as e:
            _error(str(e))
            raise typer.Exit(EXIT_CODES.get(e.kind, EXIT_INPUT)) from None
        except OSError as e:
            if (full := storage_error(e)) is not None:
                _error(str(full))
                raise typer.Exit(EXIT_CODES[full.kind]) from None
            if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
                # An error raised with a message only has no file name or errno: its message is the whole story.
                _error(f"{e.filename}: {e.strerror}; check the path and that your user may read it"
                       if e.filename is not None else str(e))
                raise typer.Exit(EXIT_INPUT) from None
            raise

    return wrapper


def prepare(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
            source: Optional[str] = typer.Option(None, help="synthetic | alpaca | mimic (data.source)."),
            notes: Optional[str] = typer.Option(None, help="MIMIC-IV-Note discharge.csv[.gz] (data.notes)."),
            path: Optional[str] = typer.Option(None, help="Your Alpaca JSONL (data.path)."),
            force: bool = ForceOpt) -> None:
    """Build the Alpaca JSONL train/val/test splits, PHI spans and a dataset card."""
    extra = [f"data.{k}={v}" for k, v in (("source", source), ("notes", notes), ("path", path)) if v]
    _stage("prepare", config, [*extra, *(set or [])], force)


def train(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
    """Fine-tune a LoRA adapter (QLoRA on CUDA), walking the OOM fallback ladder."""
    from medgen.core import skip
    from medgen.train.ladder import walk_ladder

    cfg = _load(config, [*(set or []), *(["orchestration.force=true"] if force else [])])
    with _locked(cfg, "train"):
        m = walk_ladder(cfg, lambda c: skip.run(c, "train"))
    verb = "skipped (made from these inputs)" if m.skipped else "done"
    if m.resumed_from_step is not None and not m.skipped:
        verb += f" (resumed from step {m.resumed_from_step})"
    losses = ", ".join(f"{name} loss {value:.3f}" for name, value in (("train", m.final_train_loss),
                                                                       ("val", m.final_val_loss)) if value is not None)
    console.print(f"[green]train {verb}[/] in {m.wall_s} s: rung r={m.rung.r} seq={m.rung.max_seq_length}, "
                  f"{losses or 'no loss logged'} → {m.adapter_dir}")


def serve(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
          detach: bool = typer.Option(False, help="Return after the smoke test, leaving the server running."),
          stop: bool = typer.Option(False, "--stop", help="Stop the server a previous serve left running "
                                    "(its Slurm job, or its process here).")) -> None:
    """Serve the GGUF (Ollama, or llama.cpp where Ollama is absent), smoke-test it, and keep it up."""
    from medgen.serve import stage

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


def generate(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
             merge: bool = typer.Option(False, "--merge", help="Merge the finished shards (generate.shards > 1)."),
             force: bool = ForceOpt) -> None:
    """Generate the labelled corpus (generate.n records, or one shard of it) against the served model.

    Resumable: rerun the same command after an interruption and it continues where it stopped.
    """
    from medgen.generate.plan import out_dir_for
    from medgen.generate.shards import merge_shards

    # Shards run at once, from several nodes: each locks its own folder, not the whole run.
    def lock_dir(cfg):
        return out_dir_for(cfg, cfg.generate) if cfg.generate.shards > 1 and not merge else None

    _stage("generate", config, set, force, fn=merge_shards if merge else None, lock_dir=lock_dir)


def release(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt) -> None:
    """Release the evaluated model when its corpus passed the gate (records released.json, moves the Ollama tag)."""
    from medgen.evaluate import release as stage

    cfg = _load(config, set)
    with _locked(cfg, "release"):
        record = stage.run(cfg)
    console.print(f"[green]released[/] {record['tag']} from {record['run_dir']}")


def print_serve(m) -> None:
    for note in m.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"backend: {m.backend}  {smoke_line(m.smoke)}, {m.smoke['tokens_per_s']} tokens/s")
    for r in m.smoke_scores:
        console.print(f"  {r['sex']}/{r['service']}: passed={r['passed']} tries={r.get('tries', 1)} "
                      f"stopped={r['stopped']} sections={r['section_fraction']} missing={r['missing_fields']}")
    console.print(f"Modelfile: {m.modelfile}\nGGUF: {m.gguf}")


def smoke_line(smoke: dict) -> str:
    """"smoke test 3/3 passed", and how many of them at the first try where a prompt needed another."""
    line = f"smoke test {smoke['n_passed']}/{smoke['n']} passed"
    first = smoke.get("n_passed_first_try")
    return line if first is None or first == smoke["n_passed"] else f"{line} ({first} at the first try)"


def closing_lines(cfg: PipelineConfig, skipped: list[str]) -> list[str]:
    """What `medgen run` made, read back from the manifests: the corpus and its size, the report, the gate's verdict
    and its first reason, the Modelfile and GGUF, and which stages were skipped. Paths and figures only."""
    from medgen.core.registry import stage

    def done(name: str):
        try:
            return stage(name).result.from_manifest(stage(name).out_dir(cfg))
        except (FileNotFoundError, ValueError):
            return None

    lines = [f"run folder: {cfg.run_path}"]
    if skipped:
        lines.append(f"skipped (made from these inputs): {', '.join(skipped)}")
    if (served := done("serve")) is not None:
        lines.append(f"model: {served.modelfile} (GGUF {served.gguf}); {smoke_line(served.smoke)}")
    if (generated := done("generate")) is not None:
        c = generated.counts
        lines.append(f"corpus: {generated.files.get('records')}: {c['valid']} records ({c['valid']}/{c['planned']} "
                     f"valid), gold PHI spans in {generated.files.get('phi')}")
    if (evaluated := done("evaluate")) is not None:
        lines.append(f"report: {evaluated.files.get('report')} (and {evaluated.files.get('html')})")
        reasons = evaluated.gate["reasons"]
        lines.append("gate: PASSED" if evaluated.gate["passed"] else
                     f"gate: FAILED: {reasons[0]}" + (f" (and {len(reasons) - 1} more reason(s) in the report)"
                                                      if reasons[1:] else ""))
    return lines


def _register_stages() -> None:
    """A subcommand per registered stage, in pipeline order: its own where it has options, else the generic one."""
    from medgen.core.registry import STAGES

    own = {"prepare": prepare, "train": train, "serve": serve, "generate": generate}
    for spec in STAGES:
        app.command(name=spec.name)(_main(own.get(spec.name) or _generic(spec.name, spec.help)))


def _generic(name: str, help: str) -> Callable:
    def command(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt, force: bool = ForceOpt) -> None:
        _stage(name, config, set, force)

    command.__doc__ = help
    return command


_register_stages()
app.command(name="release")(_main(release))


def export_corpus(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
                  format: str = typer.Option(..., "--format", help="i2b2 | brat | bio | hf | jsonl"),
                  out: str = typer.Option(..., "--out", help="The folder to write (new, or an earlier export's).")) -> None:
    """Write the run's released corpus as i2b2 XML, BRAT standoff, CoNLL BIO or a Hugging Face DatasetDict."""
    from pathlib import Path

    from medgen.data.formats.export import export_corpus as export

    cfg = _load(config, set)
    summary = export(cfg, format, Path(out))
    console.print(f"[green]export-corpus done[/]: {summary['documents']} records as {format} → {out}")
    console.print(Text(json.dumps(summary)))


def deployments(file: str = typer.Option("prefect.yaml", "--file", help="The Prefect project file to update."),
                check: bool = typer.Option(False, "--check", help="Only say whether it is current (exit 1 if not).")) -> None:
    """Write the stage deployments of prefect.yaml from the stage registry (one per stage, sized by it)."""
    from pathlib import Path

    from medgen.cluster import deployments as generated

    path = Path(file)
    if check:
        if not generated.is_current(path):
            _error(f"{path}: its stage deployments differ from medgen/core/registry.py; run `medgen deployments`")
            raise typer.Exit(1)
        console.print(f"{path}: the stage deployments match the registry")
        return
    changed = generated.write(path)
    console.print(f"{path}: stage deployments {'rewritten' if changed else 'already current'}")


def verify(config: str = ConfigOpt, set: Optional[List[str]] = SetOpt,
           deep: bool = typer.Option(False, "--deep", help="Hash every output file, not only those whose size or "
                                     "mtime moved.")) -> None:
    """Check that every stage's outputs are still what its manifest says it wrote (exit 1 if any is not)."""
    from medgen.core.skip import verify as check

    rows = check(_load(config, set), deep)
    for stage, state, lines in rows:
        console.print(Text.assemble((f"{stage:<10}", "bold"), (f"{state:<8}", {"intact": "green", "damaged": "red"}
                                                               .get(state, "dim")), "  ", lines[0] if lines else ""))
        for line in lines[1:]:
            console.print(Text(f"{'':<20}{line}"))
    if any(state == "damaged" for _, state, _ in rows):
        _error("some outputs are not as their stage wrote them; `medgen run` (or the stage's own command) redoes "
               "exactly those stages")
        raise typer.Exit(1)


app.command(name="export-corpus")(_main(export_corpus))
app.command(name="verify")(_main(verify))
app.command(name="deployments")(_main(deployments))
