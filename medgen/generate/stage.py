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
from medgen.core.constants import GENERATION_CARD_FILE
from medgen.core.io import atomic_write_text, ensure_dir, owner_only
from medgen.core.provenance import fingerprint, hash_json
from medgen.core.results import ExportResult, GenerateResult, PrepareResult
from medgen.generate.card import card
from medgen.generate.corpus import clear_outputs, corpus_rows, rate, summary, write_corpus
from medgen.generate.driver import Progress, drive
from medgen.generate.journal import JOURNAL_FILE, Journal, read_journal
from medgen.generate.plan import Request, out_dir_for, plan, shard_of
from medgen.serve.backends import Backend
from medgen.serve.launch import serve_export

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
    try:
        upstream["export"] = ExportResult.from_manifest(config.stage_dir("export")).fingerprint
    except FileNotFoundError:
        pass  # a backend handed in by the caller: nothing upstream to name
    if gen.mix in ("train", "uniform"):
        upstream["prepare"] = PrepareResult.from_manifest(config.stage_dir("prepare")).fingerprint
    files = {} if gen.mix in ("train", "uniform") else {"mix": Path(gen.mix).expanduser()}
    return fingerprint({"generate": gen.model_dump(mode="json"),
                        "sampling": {"temperature": config.serve.temperature, "top_p": config.serve.top_p},
                        "min_section_fraction": config.smoke.min_section_fraction,
                        "markup": config.data.markup_mode(),
                        "plan": hash_json([(r.id, r.sex, r.service, r.seed) for r in requests])},
                       upstream, files)


def inputs(config: PipelineConfig) -> dict:
    """What this shard's corpus is made from (medgen/core/skip.py): its plan, sampling, and the GGUF."""
    gen = config.generate
    return _fingerprint(config, gen, shard_of(plan(config, gen), gen.shard, gen.shards))


def run(config: PipelineConfig, gen: GenerateConfig | None = None, backend: Backend | None = None,
        on_progress: Progress | None = None, stops: tuple[str, ...] = ()) -> GenerateResult:
    """Generate this shard's part of the plan, resuming an interrupted run with the same fingerprint.

    Without `backend`, the exported model is served (Modelfile and server log in the output folder) and
    stopped at the end; `stops` then come from its chat format. A backend handed in is not stopped, and
    `stops` default to none beyond the server's own end-of-turn tokens.
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

    with owner_only():
        ensure_dir(out_dir)
        clear_outputs(out_dir)
        journal_path = out_dir / JOURNAL_FILE
        resumed = read_journal(journal_path, fp["fingerprint"])
        planned_ids = {r.id for r in requests}
        kept = [e for rid, e in (resumed.entries.items() if resumed else ()) if rid in planned_ids]
        torn = resumed.torn if resumed else 0
        if resumed:
            log.info("generate: resuming: %d of %d requests already journaled, %d torn line(s) dropped",
                     len(kept), len(requests), torn)
        journal = Journal(journal_path, fp["fingerprint"], kept)
        by_id = {e["id"]: e for e in kept}
        todo = [r for r in requests if r.id not in by_id]

        server: Backend | None = None
        new_tokens, gen_s = 0, 0.0
        try:
            # All journaled (a crash while the corpus was being written): no server to start.
            if backend is None and todo:
                server, stops = serve_export(config, out_dir)
                backend = server
            if todo:
                gen_t0 = time.perf_counter()
                new_tokens = drive(backend, todo, gen, config, inline, stops, journal, by_id, len(requests),
                                    on_progress)
                gen_s = time.perf_counter() - gen_t0
        finally:
            journal.close()
            if server is not None:
                server.stop()

        entries = [by_id[r.id] for r in requests]
        records, phi, rejected = corpus_rows(entries, inline)
        files = write_corpus(out_dir, records, phi, rejected)
        result = GenerateResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp,
            mix=gen.mix, seed=gen.seed, shard=gen.shard, shards=gen.shards,
            backend=backend.name if backend else None,
            **summary(records, phi, rejected),
            failed_attempts=sum(e["failed_attempts"] for e in entries),
            tokens=sum(e["tokens_total"] for e in entries), generation_s=round(gen_s, 3),
            tokens_per_s=rate(new_tokens, gen_s), records_per_s=rate(len(todo), gen_s),
            slots=backend.slots if backend else 0, resumed=len(kept), torn_lines_dropped=torn, files=files)
        atomic_write_text(out_dir / GENERATION_CARD_FILE, card(result))
        result.write(config_yaml(config, gen))
        journal_path.unlink()
    log.info("generate: %d valid, %d rejected of %d planned in %.1f s", result.counts["valid"],
             result.counts["rejected"], result.counts["planned"], result.wall_s)
    return result


def report(m: GenerateResult) -> list[str]:
    c = m.counts
    return [f"{c['valid']}/{c['planned']} valid ({c['valid_fraction']:.1%}), rejected by reason: "
            f"{m.rejections_by_reason or 'none'}; {m.tokens_per_s} tokens/s → {m.files.get('records')}"]
