"""generate: bulk synthetic discharge records from the served model, validated, resumable and shardable.

A run is a fixed plan: N requests over (sex, service), each with its own id and sampling seed, drawn from
a mix (the training distribution, uniform over the trained pairs, or counts from a CSV). The backend is
driven with as many requests in flight as it has slots; each record is scored by `smoke.score` (the one
validity function) and an invalid one is retried with a new seed, up to `max_attempts`.

Crash safety: every finished request is appended as one fsynced JSON line to `journal.jsonl`, whose first
line holds the run's fingerprint. A rerun with the same fingerprint drops a torn last line, skips the
requests already journaled and continues; a different fingerprint starts over. The corpus appears under
its final names (records.jsonl, records.phi.jsonl, rejected.jsonl, GENERATION_CARD.md, manifest.json)
only once complete, each file written atomically in plan order, and only then is the journal removed.

Shard k of K runs the plan entries whose index % K == k in `generate/shard-{k}-of-{K}/`; `merge_shards`
joins them in `generate/`. Record text is never logged: it goes to the owner-only files only.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import yaml

from medgen.core.config import GenerateConfig, PipelineConfig
from medgen.core.constants import GENERATION_CARD_FILE, MANIFEST_FILE
from medgen.core.errors import ConfigError, ServeError, ServerDied
from medgen.core.io import atomic_write_text, ensure_dir, owner_only
from medgen.core.progress import Progress
from medgen.core.provenance import fingerprint, hash_json
from medgen.core.results import ExportResult, GenerateResult, MergeResult, PrepareResult
from medgen.data.phi.surrogates import Avoid
from medgen.data.splits import read_split
from medgen.generate import vllm_venv
from medgen.generate.card import card
from medgen.evaluate import metrics
from medgen.generate.corpus import (
    clear_outputs,
    consistency_counts,
    corpus_rows,
    rate,
    release,
    release_check,
    summary,
    write_corpus,
    write_raw,
)
from medgen.generate.driver import OnProgress, drive
from medgen.generate.journal import JOURNAL_FILE, Journal, read_journal
from medgen.generate.plan import Request, out_dir_for, plan, shard_of
from medgen.serve import backends, vllm
from medgen.serve.backends import Backend
from medgen.serve.launch import StartServer, serve_export

log = logging.getLogger(__name__)


def config_yaml(config: PipelineConfig, gen: GenerateConfig) -> str:
    # The generate section actually used, whether or not the pipeline config carries one.
    data = config.model_dump(mode="json")
    data["generate"] = gen.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False)


def _finished(out_dir: Path, fp: str) -> GenerateResult | None:
    try:
        done = GenerateResult.from_manifest(out_dir)
    except (FileNotFoundError, ValueError):  # pydantic's ValidationError is a ValueError
        return None
    return done if done.fingerprint == fp and done.complete() else None


def _fingerprint(config: PipelineConfig, gen: GenerateConfig, requests: list[Request]) -> dict:
    upstream: dict[str, str] = {}
    # The model as vLLM reads it (merged) and as a server does (the GGUF): which one an 'auto' engine takes is
    # decided on the machine that generates, so both count, wherever the fingerprint is computed.
    for name, result in (("merge", MergeResult), ("export", ExportResult)):
        try:
            upstream[name] = result.from_manifest(config.stage_dir(name)).identity
        except FileNotFoundError:
            pass  # a backend handed in by the caller, or vLLM on a model never exported
    if gen.mix in ("train", "uniform") or gen.surrogates == "fresh":  # fresh surrogates avoid the training values
        upstream["prepare"] = PrepareResult.from_manifest(config.stage_dir("prepare")).identity
    files = {} if gen.mix in ("train", "uniform") else {"mix": Path(gen.mix).expanduser()}
    return fingerprint({"generate": gen.model_dump(mode="json"),
                        "sampling": {"temperature": config.serve.temperature, "top_p": config.serve.top_p},
                        "min_section_fraction": config.smoke.min_section_fraction,
                        "markup": config.data.markup_mode(),
                        "plan": hash_json([(r.id, r.sex, r.service, r.seed) for r in requests])},
                       upstream, files)


def engine(config: PipelineConfig, gen: GenerateConfig) -> str:
    """What generates here: vLLM (asked for, or 'auto' on CUDA with vllm installed), else the serve backend."""
    if gen.engine == "vllm":
        return "vllm"
    if gen.engine == "auto":
        import torch

        if torch.cuda.is_available() and (vllm.available() or vllm.interpreter(config)):
            return "vllm"
    return backends.choose(config if gen.engine == "auto" else
                           config.model_copy(update={"serve": config.serve.model_copy(update={"backend": gen.engine})}))


def starter(config: PipelineConfig, gen: GenerateConfig, out_dir: Path) -> StartServer:
    """How to start (and restart) what generates: vLLM's engine on the merged model, or a server on the GGUF."""
    chosen = engine(config, gen)
    if chosen == "vllm":
        merged = MergeResult.from_manifest(config.stage_dir("merge")).merged_dir
        return lambda: vllm.start(config, merged)
    served = config.model_copy(update={"serve": config.serve.model_copy(update={"backend": chosen})})
    return lambda: serve_export(served, out_dir)


def _training_split(config: PipelineConfig):
    """The prepared training split: its PHI values are what surrogates avoid, its diagnoses what the consistency
    check knows."""
    return read_split(PrepareResult.from_manifest(config.stage_dir("prepare")), "train")


def training_values(train) -> Avoid:
    """The training split's PHI values, which no surrogate may repeat."""
    return Avoid.of(zip(train.texts, train.spans or [[] for _ in train.texts]))


def inputs(config: PipelineConfig) -> dict:
    """What this shard's corpus is made from (medgen/core/skip.py): its plan, sampling, and the GGUF."""
    gen = config.generate
    return _fingerprint(config, gen, shard_of(plan(config, gen), gen.shard, gen.shards))


class _Reporter:
    """What the driver calls after each journaled record: the bar or log line (done, valid, tokens/s, time left)
    and the caller's own `on_progress`."""

    def __init__(self, total: int, kept: list[dict], by_id: dict[str, dict], on_progress: OnProgress | None):
        self.progress = Progress("generate", total, "records", done=len(kept))
        self.total, self.by_id, self.on_progress = total, by_id, on_progress
        self.valid = sum(bool(e["valid"]) for e in kept)
        self.tokens, self.t0 = 0, time.monotonic()

    def __call__(self, entry: dict) -> None:
        self.valid += bool(entry["valid"])
        self.tokens += entry["tokens_total"]
        rate = self.tokens / max(time.monotonic() - self.t0, 1e-9)
        self.progress.update(len(self.by_id), f"{self.valid} valid", f"{rate:,.0f} tokens/s")
        if self.on_progress:
            self.on_progress(len(self.by_id), self.total)

    def begin(self) -> None:
        """Rates count from here: a server that is starting is not generating."""
        self.t0 = self.progress.t0 = time.monotonic()
        self.tokens, self.progress.start_done = 0, len(self.by_id)

    def close(self) -> None:
        self.progress.close()


def _died(server: Backend | None, wait_s: float) -> str | None:
    """How the server medgen started ended, when a request failed because it did (it may take a moment to be
    reaped after its socket closed); None for a live server or one handed in."""
    if server is None:
        return None
    deadline = time.monotonic() + wait_s
    while (how := server.ended()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return how


def _restart_or_stop(gen: GenerateConfig, server: Backend, how: str, restarts: int, done: int, total: int,
                     error: Exception) -> int:
    """Stop what is left of a dead server and wait before the next start; ServerDied once the restarts are spent."""
    server.stop()
    where = f"see {server.log_path}" if server.log_path else "see its log"
    if restarts >= gen.max_server_restarts:
        raise ServerDied(f"generate: the {server.display_name} {how} after {done}/{total} records and "
                         f"{restarts} restart(s) (generate.max_server_restarts={gen.max_server_restarts}); {where}; "
                         "rerun to resume from the journal") from error
    wait = gen.restart_backoff_s * 2 ** restarts
    log.warning("generate: the %s %s after %d/%d records; restarting it (%d of at most %d) in %.0f s; %s",
                server.display_name, how, done, total, restarts + 1, gen.max_server_restarts, wait, where)
    time.sleep(wait)
    return restarts + 1


def run(config: PipelineConfig, gen: GenerateConfig | None = None, backend: Backend | None = None,
        on_progress: OnProgress | None = None, stops: tuple[str, ...] = (),
        start_server: StartServer | None = None) -> GenerateResult:
    """Generate this shard's part of the plan, resuming an interrupted run with the same fingerprint.

    Without `backend`, a server is started with `start_server` (by default the exported model is served, its
    Modelfile and server log in the output folder, and `stops` come from its chat format), restarted if it dies
    (generate.max_server_restarts) and stopped at the end. A backend handed in is neither restarted nor stopped,
    and `stops` default to none beyond the server's own end-of-turn tokens.
    """
    t0 = time.perf_counter()
    gen = gen or config.generate
    inline = config.data.markup_mode() == "inline"
    requests = shard_of(plan(config, gen), gen.shard, gen.shards)
    fp = _fingerprint(config, gen, requests)
    out_dir = out_dir_for(config, gen)
    if done := _finished(out_dir, fp["fingerprint"]):
        (out_dir / JOURNAL_FILE).unlink(missing_ok=True)  # left by a crash between the manifest and its removal
        log.info("generate: %s already holds this corpus (%d valid records); nothing to do",
                 out_dir, done.counts["valid"])
        return done
    if backend is None and start_server is None and engine(config, gen) == "vllm" and not vllm.available():
        if (python := vllm.interpreter(config)) is None:
            raise ConfigError([vllm.NOT_INSTALLED])
        return vllm_venv.run_in(python, config, gen, out_dir)

    with owner_only():
        ensure_dir(out_dir)
        clear_outputs(out_dir)
        journal_path = out_dir / JOURNAL_FILE
        resumed = read_journal(journal_path, fp["fingerprint"])
        planned_ids = {r.id for r in requests}
        kept = [e for rid, e in (resumed.entries.items() if resumed else ()) if rid in planned_ids]
        torn = resumed.torn if resumed else 0
        if resumed:
            log.info("generate: resuming: %d of %d already done (from %s)%s", len(kept), len(requests), journal_path,
                     f"; {torn} torn line(s) dropped" if torn else "")
        journal = Journal(journal_path, fp["fingerprint"], kept)
        by_id = {e["id"]: e for e in kept}
        todo = [r for r in requests if r.id not in by_id]
        fresh = gen.surrogates == "fresh" and inline
        # A plan from a CSV mix with the model's own values needs no training split; fresh surrogates do.
        train = _training_split(config) if fresh or (config.stage_dir("prepare") / MANIFEST_FILE).is_file() else None
        avoid = training_values(train) if fresh else None
        # The service check knows the diagnoses the training split shows under each service, as evaluate's does.
        check = release_check(gen.seed, avoid, metrics.diagnosis_services(train.texts) if train else {}, inline)

        start = start_server or starter(config, gen, out_dir)
        report = _Reporter(len(requests), kept, by_id, on_progress)
        server: Backend | None = None
        ours = backend is None
        new_tokens, gen_s, restarts, n_todo = 0, 0.0, 0, len(todo)
        try:
            while todo:  # all journaled (a crash while the corpus was being written): no server to start
                if ours and server is None:
                    server, stops = start()
                    backend = server
                gen_t0 = time.perf_counter()
                report.begin()
                try:
                    new_tokens += drive(backend, todo, gen, config, inline, stops, journal, by_id, report, check)
                    todo = []
                except Exception as e:
                    how = _died(server, wait_s=5.0 if isinstance(e, (ServeError, ConnectionError)) else 0.0)
                    if how is None:
                        raise
                    restarts = _restart_or_stop(gen, server, how, restarts, len(by_id), len(requests), e)
                    server = None
                    todo = [r for r in requests if r.id not in by_id]
                finally:
                    gen_s += time.perf_counter() - gen_t0
        finally:
            report.close()
            journal.close()
            if server is not None:
                server.stop()

        entries = [by_id[r.id] for r in requests]
        records, phi, rejected = corpus_rows(entries, inline)
        raw_files, stats = {}, None
        if fresh:
            raw_files = write_raw(out_dir, records, phi)
            records, phi, done = release(records, phi, gen.seed, avoid)
            stats = done.as_dict()
        files = {**write_corpus(out_dir, records, phi, rejected), **raw_files}
        result = GenerateResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp,
            mix=gen.mix, seed=gen.seed, shard=gen.shard, shards=gen.shards,
            backend=backend.name if backend else None,
            **summary(records, phi, rejected),
            failed_attempts=sum(e["failed_attempts"] for e in entries),
            consistency=consistency_counts(entries, gen.reject_inconsistent),
            tokens=sum(e["tokens_total"] for e in entries), generation_s=round(gen_s, 3),
            tokens_per_s=rate(new_tokens, gen_s), records_per_s=rate(n_todo, gen_s),
            slots=backend.slots if backend else 0, resumed=len(kept), torn_lines_dropped=torn,
            server_restarts=restarts,
            surrogates="fresh" if fresh else "keep", surrogate_stats=stats, files=files)
        atomic_write_text(out_dir / GENERATION_CARD_FILE, card(result))
        result.write(config_yaml(config, gen))
        journal_path.unlink()
    log.info("generate: %d valid, %d rejected of %d planned in %.1f s", result.counts["valid"],
             result.counts["rejected"], result.counts["planned"], result.wall_s)
    return result


def report(m: GenerateResult) -> list[str]:
    c, k = m.counts, m.consistency
    model = (f"; the model's own records failed a consistency check in {k['inconsistent_attempts']} of "
             f"{k['checked_attempts']} valid attempts" + (" (retried)" if k["reject_inconsistent"] else "")
             if k.get("checked_attempts") else "")
    return [f"{c['valid']}/{c['planned']} valid ({c['valid_fraction']:.1%}), rejected by reason: "
            f"{m.rejections_by_reason or 'none'}{model}; {m.tokens_per_s} tokens/s → {m.files.get('records')}"]
