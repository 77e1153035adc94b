"""Shards: shard k of K runs the plan entries whose index % K == k in `generate/shard-{k}-of-{K}/`;
`merge_shards` joins the finished shards in `generate/`, in plan order."""

from __future__ import annotations

import logging
import time

from medgen.core.config import GenerateConfig, PipelineConfig
from medgen.core.constants import CORPUS_PHI_FILE, GENERATION_CARD_FILE, RAW_DIR, RECORDS_FILE, REJECTED_FILE
from medgen.core.errors import DataError
from medgen.core.io import atomic_write_text, owner_only
from medgen.core.provenance import fingerprint
from medgen.core.results import GenerateResult
from medgen.generate.card import card
from medgen.generate.corpus import (
    clear_outputs,
    merged_consistency,
    merged_stats,
    read_jsonl,
    summary,
    write_corpus,
    write_raw,
)
from medgen.generate.plan import out_dir_for, plan
from medgen.generate.stage import config_yaml

log = logging.getLogger(__name__)


def merge_shards(config: PipelineConfig, gen: GenerateConfig | None = None) -> GenerateResult:
    """Join the finished shards' outputs in `generate/`, in plan order; every shard must be there, and the
    ids together must be exactly the unsharded plan's."""
    t0 = time.perf_counter()
    gen = gen or config.generate
    full = plan(config, gen)
    order = {r.id: r.index for r in full}
    shard_results: list[GenerateResult] = []
    records: list[dict] = []
    spans: dict[str, list[dict]] = {}
    raw_records: list[dict] = []
    raw_spans: dict[str, list[dict]] = {}
    rejected: list[dict] = []
    missing: list[str] = []
    for k in range(gen.shards):
        where = out_dir_for(config, gen.model_copy(update={"shard": k}))
        try:
            shard_results.append(GenerateResult.from_manifest(where))
        except FileNotFoundError:
            missing.append(f"{where}: no finished shard (manifest.json); run generate with generate.shard={k} "
                           f"and generate.shards={gen.shards} first")
            continue
        records += read_jsonl(where / RECORDS_FILE)
        spans.update((p["id"], p["spans"]) for p in read_jsonl(where / CORPUS_PHI_FILE))
        rejected += read_jsonl(where / REJECTED_FILE)
        if shard_results[-1].surrogates == "fresh":
            raw_records += read_jsonl(where / RAW_DIR / RECORDS_FILE)
            raw_spans.update((p["id"], p["spans"]) for p in read_jsonl(where / RAW_DIR / CORPUS_PHI_FILE))
    if missing:
        raise DataError(missing)
    got = [r["id"] for r in records] + [r["id"] for r in rejected]
    if sorted(got) != sorted(order):
        extra, lacking = sorted(set(got) - set(order)), sorted(set(order) - set(got))
        raise DataError([f"{config.stage_dir('generate')}: expected the plan's {len(order)} ids once each, got "
                         f"{len(got)} ({len(set(got))} distinct); not in the plan: {extra[:5]}, missing: "
                         f"{lacking[:5]} (shards from another plan? rerun them with the same generate settings)"])
    surrogates = {s.surrogates for s in shard_results}
    if len(surrogates) > 1:
        raise DataError([f"{config.stage_dir('generate')}: the shards were released with different generate.surrogates "
                         f"({', '.join(sorted(surrogates))}); rerun them with the same setting"])
    for rows in (records, raw_records, rejected):
        rows.sort(key=lambda r: order[r["id"]])
    phi = [{"index": i, "id": r["id"], "spans": spans[r["id"]]} for i, r in enumerate(records)]
    raw_phi = [{"index": i, "id": r["id"], "spans": raw_spans[r["id"]]} for i, r in enumerate(raw_records)]
    out_dir = config.stage_dir("generate")
    merged_gen = {k: v for k, v in gen.model_dump(mode="json").items() if k != "shard"}
    fp = fingerprint({"generate": merged_gen}, {f"shard-{s.shard}": s.identity for s in shard_results})
    with owner_only():
        clear_outputs(out_dir)
        files = write_corpus(out_dir, records, phi, rejected)
        if surrogates == {"fresh"}:  # even when none was valid: evaluate reads raw/ whenever it was released
            files.update(write_raw(out_dir, raw_records, raw_phi))
        stats = [s.surrogate_stats for s in shard_results if s.surrogate_stats]
        rates = [s.tokens_per_s for s in shard_results if s.tokens_per_s]
        record_rates = [s.records_per_s for s in shard_results if s.records_per_s]
        result = GenerateResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp,
            mix=gen.mix, seed=gen.seed, shard=None, shards=gen.shards, **summary(records, phi, rejected),
            failed_attempts=sum(s.failed_attempts for s in shard_results),
            consistency=merged_consistency([s.consistency for s in shard_results if s.consistency]),
            tokens=sum(s.tokens for s in shard_results),
            generation_s=round(sum(s.generation_s for s in shard_results), 3),
            tokens_per_s=round(sum(rates), 3) if rates else None,
            records_per_s=round(sum(record_rates), 3) if record_rates else None,
            slots=sum(s.slots for s in shard_results), resumed=sum(s.resumed for s in shard_results),
            torn_lines_dropped=sum(s.torn_lines_dropped for s in shard_results),
            server_restarts=sum(s.server_restarts for s in shard_results), surrogates=surrogates.pop(),
            surrogate_stats=merged_stats(stats) if stats else None, files=files)
        atomic_write_text(out_dir / GENERATION_CARD_FILE, card(result))
        result.write(config_yaml(config, gen))
    log.info("generate: merged %d shards: %d valid, %d rejected", gen.shards, len(records), len(rejected))
    return result
