"""The dataset card (markdown) and token-length histogram written beside prepared splits.

The card also gives the corpus's diversity with the evaluate stage's definitions (`medgen.evaluate.metrics`), beside the
synthetic engine's figures before its rewrite (`ENGINE_BASELINE`), so that a prepared dataset shows how far it is
from 21 templates.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from medgen.core.config import EvaluateConfig
from medgen.core.constants import CARD_FILE, HIST_FILE, SPLIT_FILE, SPLITS
from medgen.core.plots import figure
from medgen.core.results import PrepareResult
from medgen.data import markup
from medgen.evaluate import metrics

DIVERSITY_FIGURES = ("distinct_1", "distinct_2", "distinct_3", "compression_ratio", "near_duplicate_rate")
# The synthetic engine at commit 4d66794 (21 conditions, one phrasing per section), measured on
# records(n, seed=0, profile) with `diversity` below (evaluate-stage defaults: 5-word shingles, 128 permutations,
# Jaccard 0.8). Distinct-n falls as a corpus grows, so figures compare only at equal n.
ENGINE_BASELINE = {
    "commit": "4d66794",
    "full": {
        300: {"distinct_1": 0.0184, "distinct_2": 0.0725, "distinct_3": 0.1458, "compression_ratio": 0.1166,
              "near_duplicate_rate": 0.0},
        1000: {"distinct_1": 0.0105, "distinct_2": 0.0497, "distinct_3": 0.1067, "compression_ratio": 0.1151,
               "near_duplicate_rate": 0.0},
        5000: {"distinct_1": 0.0059, "distinct_2": 0.032, "distinct_3": 0.0689, "compression_ratio": 0.1149,
               "near_duplicate_rate": 0.0},
    },
    "compact": {
        300: {"distinct_1": 0.0457, "distinct_2": 0.1373, "distinct_3": 0.249, "compression_ratio": 0.1413,
              "near_duplicate_rate": 0.0},
        1000: {"distinct_1": 0.0278, "distinct_2": 0.0945, "distinct_3": 0.1807, "compression_ratio": 0.1366,
               "near_duplicate_rate": 0.0},
        5000: {"distinct_1": 0.0153, "distinct_2": 0.06, "distinct_3": 0.1192, "compression_ratio": 0.1356,
               "near_duplicate_rate": 0.0},
    },
}


def diversity(texts: Sequence[str], ev: EvaluateConfig | None = None) -> dict[str, float | None]:
    """Distinct-1/2/3, compression ratio and within-corpus near-duplicate rate of `texts`, as the evaluate stage
    computes them."""
    ev = ev or EvaluateConfig()
    _, words = metrics.Vocabulary().encode(texts)
    hashes = metrics.NgramHashes(words)
    out: dict[str, float | None] = {f"distinct_{n}": metrics.distinct_n(hashes, n) for n in (1, 2, 3)}
    out["compression_ratio"] = metrics.compression_ratio(texts)
    sigs = metrics.Signatures(hashes, ev.shingle, ev.num_perm)
    out["near_duplicate_rate"] = metrics.near_duplicate_rate_within(sigs, ev.near_duplicate_jaccard,
                                                                    range(len(texts)))
    return out


def baseline_size(n: int) -> int:
    """The largest baseline corpus size not above `n` (the smallest when `n` is below them all)."""
    sizes = sorted(ENGINE_BASELINE["full"])
    return max([s for s in sizes if s <= n], default=sizes[0])


def _prepared_texts(folder: Path, inline: bool, counts: dict[str, int]) -> list[str]:
    """The source's records as prepared, markup stripped, in split order: the first `counts[split]` rows of each
    split, since planted canaries follow them in the train split and are no part of the source."""
    texts = []
    for split in SPLITS:
        path = folder / SPLIT_FILE.format(split=split)
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines()[:counts.get(split, 0)]:
                out = json.loads(line)["output"]
                texts.append(markup.strip(out)[0] if inline else out)
    return texts


def diversity_table(texts: list[str], profile: str | None, seed: int) -> str:
    """The card's diversity section: the corpus (a seeded sample the size of a baseline corpus, where it is
    larger) beside the engine baseline of the same profile."""
    n = baseline_size(len(texts)) if len(texts) >= min(ENGINE_BASELINE["full"]) else len(texts)
    picked = np.sort(np.random.default_rng(seed).choice(len(texts), size=n, replace=False)) if n < len(texts) \
        else np.arange(len(texts))
    ours = diversity([texts[i] for i in picked])
    base_profile = profile if profile in ENGINE_BASELINE else "full"
    base_n = baseline_size(n)
    base = ENGINE_BASELINE[base_profile][base_n]
    rows = "\n".join(f"| {k.replace('_', '-')} | {ours[k]} | {base[k]} |" for k in DIVERSITY_FIGURES)
    ev = EvaluateConfig()
    sample = f"a seeded sample of {n} of its {len(texts)} records" if n < len(texts) else f"all {n} records"
    return f"""## Diversity (evaluate-stage definitions)

This dataset: {sample}. Baseline: the synthetic engine at commit {ENGINE_BASELINE["commit"]}, `{base_profile}`,
{base_n} records{"" if base_n == n else " (distinct-n falls as a corpus grows: compare at equal sizes only)"}.
Near-duplicates: MinHash ({ev.num_perm} permutations) of {ev.shingle}-word shingles,
Jaccard >= {ev.near_duplicate_jaccard}.

| figure | this dataset | engine at {ENGINE_BASELINE["commit"]} |
|---|---|---|
{rows}
"""


def service_sex_table(sex_service_counts: dict[str, int]) -> str:
    """Markdown rows `| service | Male | Female |` from counts keyed "Sex/SERVICE" (services may hold '/')."""
    service_sex: dict[str, Counter] = {}
    for key, n in sex_service_counts.items():
        sex, _, service = key.partition("/")
        service_sex.setdefault(service, Counter())[sex] += n
    return "\n".join(f"| {svc} | {c.get('Male', 0)} | {c.get('Female', 0)} |" for svc, c in sorted(service_sex.items()))


def count_table(counts: dict[str, int], empty: str = "(none recorded)") -> str:
    return "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or f"| {empty} | |"


def write_card(tmp: Path, result: PrepareResult, lengths: dict[str, list[int]]) -> None:
    with figure(tmp / HIST_FILE, size=(6, 3.5), xlabel="tokens per example", ylabel="examples") as ax:
        for name, v in lengths.items():
            if v:
                ax.hist(v, bins=30, alpha=0.6, label=name)
        ax.axvline(result.token_stats["train"].get("max_seq_length", 0), color="k", ls="--", label="max_seq_length")

    rows = service_sex_table(result.sex_service_counts)
    phi = "\n".join(f"| {k} | {v} | {f.get('forms', '')} | "
                    + ", ".join(f"{form} ({n})" for form, n in f.get("top", {}).items()) + " |"
                    for k, v in result.phi_category_counts.items()
                    for f in [result.phi_surface_forms.get(k, {})]) or "| (none recorded) | | | |"
    stats = "\n".join(f"| {k} | {v.get('n')} | {v.get('mean')} | {v.get('p95')} | {v.get('max')} | "
                      f"{v.get('truncated_fraction')} |" for k, v in result.token_stats.items())
    texts = _prepared_texts(tmp, result.phi_markup == "inline", result.counts)
    diversity_section = diversity_table(texts, result.profile, result.seed) if texts else ""
    card = f"""# Dataset card: {result.out_dir}

- Source: **{result.source}**{f" ({result.path})" if result.path else ""}
- Seed: {result.seed}{f", profile: {result.profile}" if result.profile else ""}
- PHI markup in training targets: {result.phi_markup}
- Splits (by patient): {result.counts}
- Duplicates removed: {result.duplicates_removed}

## Records per service and sex

| service | Male | Female |
|---|---|---|
{rows}

## Token lengths (model tokenizer, chat-formatted)

| split | n | mean | p95 | max | truncated fraction |
|---|---|---|---|---|---|
{stats}

![length histogram]({HIST_FILE})

## PHI categories and their surface forms (spans, in `*.phi.jsonl` or the inline markup)

{sum(1 for k in result.phi_category_counts if k not in ("TIME", "OTHER"))} i2b2 2014 categories.

| category | spans | surface forms | commonest forms |
|---|---|---|---|
{phi}

{diversity_section}"""
    if result.import_report:
        card += import_section(result.import_report)
    (tmp / CARD_FILE).write_text(card, encoding="utf-8")


def import_section(report: dict) -> str:
    """The import's figures: for MIMIC-IV-Note, masks filled per rule and the fraction a specific rule resolved;
    for annotated notes, how Sex and Service were found and what was skipped."""
    skipped = ", ".join(f"{k}: {v['count']}" for k, v in report["skipped"].items()) or "none"
    if "masks" not in report:
        return f"""
## Import of annotated notes ({report['format']})

- Notes imported: {report['notes']} of {report['documents']} (skipped: {skipped})
- How each prompt's Sex and Service were found: {report['found']}
- PHI values: {"replaced by fresh surrogates" if report['surrogates'] == "fresh" else "kept as they are"}
"""
    resolved = report["resolved_by_specific_rule"]
    return f"""
## MIMIC-IV-Note import

- Notes imported: {report['notes']} (skipped: {skipped})
- Masks filled: {report['masks']}, {f"{resolved:.1%}" if resolved is not None else "n/a"} by a specific rule \
({report['fallback_masks']} by the fallback, category OTHER)
- Masks that hide no PHI: {report['non_phi_masks']} ({report['non_phi_treatment']}; not PHI spans)

| rule (docs/MIMIC_RULES.md) | masks |
|---|---|
{count_table(report['rules'])}
"""
