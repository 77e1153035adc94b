"""The dataset card (markdown) and token-length histogram written beside prepared splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from medgen.constants import CARD_FILE, HIST_FILE
from medgen.plots import figure
from medgen.results import PrepareResult


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
    phi = count_table(result.phi_category_counts)
    stats = "\n".join(f"| {k} | {v.get('n')} | {v.get('mean')} | {v.get('p95')} | {v.get('max')} | "
                      f"{v.get('truncated_fraction')} |" for k, v in result.token_stats.items())
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

## PHI categories (surrogate spans, in `*.phi.jsonl`)

| category | count |
|---|---|
{phi}
"""
    (tmp / CARD_FILE).write_text(card, encoding="utf-8")
