"""The `canaries` stage: serve the exported GGUF (as generate does), ask for `evaluate.canary_samples` records
per planted canary with that canary's Sex and Service in the training prompt, and count the samples that emit any
of the canary's distinctive values (surname, MRN, phone).

A canary shares its Sex and Service with many ordinary records, so the prompt does not point at it: emitting its
surname means the model memorized it. The held-out canaries, probed the same way, give the chance rate. Figures
go to canaries/canaries.json and the manifest; the samples themselves are never written or logged (a model
trained on real notes may emit real PHI).

    medgen prepare --set data.canaries.per_repeat=3 && ... && medgen canaries
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from medgen.core.config import PipelineConfig
from medgen.core.constants import CANARY_FIGURES_FILE, CANARY_SECRETS, MANIFEST_FILE
from medgen.core.io import ensure_dir, owner_only, write_json
from medgen.core.provenance import fingerprint
from medgen.core.results import CanaryResult, ExportResult, PrepareResult
from medgen.data.canaries import HELD_OUT, Canary, emitted, read_registry
from medgen.data.prompts import request_messages
from medgen.evaluate.corpus import frac
from medgen.serve.backends import Backend, request_seed
from medgen.serve.launch import serve_export

log = logging.getLogger(__name__)


def tally(canaries: list[Canary], hits: dict[str, list[set[str]]]) -> dict[str, dict]:
    """Per group (copies planted, then held out): how many samples emitted their canary's values, in all and by
    category, and how many canaries were emitted at least once. `hits` maps a canary id to one set per sample."""
    groups: dict[str, list[Canary]] = {}
    for c in sorted(canaries, key=lambda c: (c.repeats == 0, c.repeats)):
        groups.setdefault(c.group, []).append(c)
    out = {}
    for key, members in groups.items():
        samples = [h for c in members for h in hits[c.id]]
        n = len(samples)
        out[key] = {"canaries": len(members), "samples": n, "extracted_samples": sum(bool(h) for h in samples),
                    "rate": frac(sum(bool(h) for h in samples), n),
                    "canaries_extracted": sum(any(hits[c.id]) for c in members),
                    "by_category": {k: frac(sum(k in h for h in samples), n) for k in CANARY_SECRETS}}
    return out


# --- the stage -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    canary: Canary
    seed: int


def probes(canaries: list[Canary], samples: int, seed: int) -> list[Probe]:
    """`samples` probes per canary, each with its own sampling seed (from the plan seed and its position)."""
    return [Probe(c, request_seed(seed, i * samples + k)) for i, c in enumerate(canaries)
            for k in range(samples)]


def _ask(backend: Backend, todo: list[Probe], config: PipelineConfig, inline: bool,
         stops: tuple[str, ...]) -> tuple[dict[str, list[set[str]]], int]:
    """Run the probes, `backend.slots` at a time; keep only which values each sample emitted, never its text."""
    sc = config.serve

    def one(p: Probe) -> tuple[str, set[str], int]:
        out = backend.chat(request_messages(p.canary.sex, p.canary.service, inline),
                           max_tokens=config.generate.max_tokens, temperature=sc.temperature, top_p=sc.top_p,
                           seed=p.seed, stop=stops)
        return p.canary.id, emitted(out.text, p.canary), out.tokens

    hits: dict[str, list[set[str]]] = {}
    tokens = 0
    pool = ThreadPoolExecutor(max_workers=backend.slots, thread_name_prefix="canaries")
    try:
        for cid, found, n in pool.map(one, todo):
            hits.setdefault(cid, []).append(found)
            tokens += n
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return hits, tokens


def inputs(config: PipelineConfig) -> dict:
    """What the extraction figures depend on (medgen/core/skip.py): probing settings, the planted data, the GGUF."""
    ev, sc = config.evaluate, config.serve
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    exported = ExportResult.from_manifest(config.stage_dir("export"))
    return fingerprint({"samples": ev.canary_samples, "seed": ev.seed, "max_tokens": config.generate.max_tokens,
                        "sampling": {"temperature": sc.temperature, "top_p": sc.top_p}},
                       {"prepare": prepared.identity, "export": exported.identity})


def run(config: PipelineConfig) -> CanaryResult:
    """Probe the exported model for every registered canary and write the extraction figures to `canaries/`.

    Needs prepare's registry and export's GGUF; starts its own server (as generate does) and stops it on every
    exit path."""
    t0 = time.perf_counter()
    ev, sc = config.evaluate, config.serve
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    canaries = read_registry(prepared)
    todo = probes(canaries, ev.canary_samples, ev.seed)
    fp = inputs(config)
    out_dir = config.stage_dir("canaries")
    with owner_only():
        ensure_dir(out_dir)
        # Without a manifest, leftovers of an earlier run never pass for this run's figures.
        (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
        backend, stops = serve_export(config, out_dir)
        try:
            gen_t0 = time.perf_counter()
            hits, tokens = _ask(backend, todo, config, prepared.phi_markup == "inline", stops)
            gen_s = time.perf_counter() - gen_t0
        finally:
            backend.stop()
        extraction = tally(canaries, hits)
        per_canary = [{"id": c.id, "group": c.group, "samples": len(hits[c.id]),
                       "extracted_samples": sum(bool(h) for h in hits[c.id]),
                       "by_category": {k: sum(k in h for h in hits[c.id]) for k in CANARY_SECRETS}}
                      for c in canaries]
        write_json(out_dir / CANARY_FIGURES_FILE, {"samples_per_canary": ev.canary_samples,
                                                   "extraction": extraction, "canaries": per_canary})
        result = CanaryResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2), **fp, backend=backend.name,
            samples_per_canary=ev.canary_samples, max_tokens=config.generate.max_tokens,
            temperature=sc.temperature, top_p=sc.top_p, extraction=extraction, tokens=tokens,
            generation_s=round(gen_s, 3), files={"figures": str(out_dir / CANARY_FIGURES_FILE)})
        result.write(config.to_yaml())
    log.info("canaries: extraction rate per group %s in %.1f s",
             {k: v["rate"] for k, v in extraction.items()}, result.wall_s)
    return result


def report(m: CanaryResult) -> list[str]:
    return [f"{'held out (control)' if group == HELD_OUT else f'{group} copies in training'}: "
            f"{f['extracted_samples']}/{f['samples']} samples emitted the canary's PHI "
            f"(rate {f['rate']}, {f['canaries_extracted']}/{f['canaries']} canaries)" for group, f in m.extraction.items()]
