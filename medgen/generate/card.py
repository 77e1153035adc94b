"""GENERATION_CARD.md: what a generate run produced (counts per service and sex, rejections, PHI per category,
throughput), figures only."""

from __future__ import annotations

from medgen.core.constants import CORPUS_PHI_FILE
from medgen.core.results import GenerateResult
from medgen.data.card import count_table, service_sex_table


def card(result: GenerateResult) -> str:
    rows = service_sex_table(result.sex_service_counts)
    reasons = count_table(result.rejections_by_reason, "(none)")
    phi = count_table(result.phi_category_counts)
    c = result.counts
    s = result.surrogate_stats
    if result.surrogates == "fresh" and s:
        released = (f"Every PHI value was replaced by a fresh surrogate, consistent inside its record "
                    f"(generate.surrogates: fresh); the model's own records are in `raw/` (owner-only, never released). "
                    f"Dates in no known form (digits redrawn): {s['unparsed_dates']}; weekdays set to follow their "
                    f"date: {s['weekdays_fixed']}; patient ages computed from the date of birth: {s['ages_from_dob']}; "
                    f"titles set to follow Sex: {s['titles_fixed']}; a/an adjusted: {s['articles_fixed']}.")
    else:
        released = "The records hold the model's own PHI values (generate.surrogates: keep)."
    which = "all shards merged" if result.shard is None else f"shard {result.shard} of {result.shards}"
    return f"""# Generation card: {result.out_dir}

- Mix: **{result.mix}**, seed {result.seed}, {which}
- Planned: {c['planned']}, valid: {c['valid']} ({c['valid_fraction']:.1%}), rejected: {c['rejected']}
- Failed attempts (retried or rejected): {result.failed_attempts}
- Taken from an interrupted run: {result.resumed}; torn journal lines dropped: {result.torn_lines_dropped}
- Model server restarts (it died mid-run): {result.server_restarts}

## Valid records per service and sex

| service | Male | Female |
|---|---|---|
{rows or '| (none) | | |'}

## Rejections by reason (last attempt of each rejected request)

| reason | count |
|---|---|
{reasons}

## Surrogates

{released}

## PHI spans per category (in `{CORPUS_PHI_FILE}`)

| category | count |
|---|---|
{phi}

## Throughput

| records/s | tokens/s | tokens | generation wall (s) | slots |
|---|---|---|---|---|
| {result.records_per_s} | {result.tokens_per_s} | {result.tokens} | {result.generation_s} | {result.slots} |
"""


