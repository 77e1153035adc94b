"""The corpus files of a finished generate run (records.jsonl, records.phi.jsonl, rejected.jsonl) from journal
entries in plan order, the surrogate pass that releases them, their summary figures, and writing them atomically."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable, Mapping

from medgen.core.constants import (
    CORPUS_FILES,
    CORPUS_PHI_FILE,
    GENERATION_CARD_FILE,
    MANIFEST_FILE,
    RAW_DIR,
    RECORDS_FILE,
    REJECTED_FILE,
)
from medgen.core.io import atomic_write_text, ensure_dir
from medgen.data import markup
from medgen.data.phi.surrogates import Avoid, Stats, surrogate
from medgen.evaluate import metrics


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; expected the output of a finished generate run")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_rows(entries: list[dict], inline: bool) -> tuple[list[dict], list[dict], list[dict]]:
    """records.jsonl, records.phi.jsonl and rejected.jsonl rows from journal entries in plan order."""
    records: list[dict] = []
    phi: list[dict] = []
    rejected: list[dict] = []
    for e in entries:
        if not e["valid"]:
            rejected.append({k: e[k] for k in ("id", "sex", "service", "attempts", "reasons")})
            continue
        plain, spans = markup.strip(e["text"]) if inline else (e["text"], [])
        phi.append({"index": len(records), "id": e["id"], "spans": spans})
        records.append({"id": e["id"], "sex": e["sex"], "service": e["service"], "text": plain, "seed": e["seed"],
                        "tokens": e["tokens"], "seconds": e["seconds"], "attempts": e["attempts"]})
    return records, phi, rejected


def summary(records: list[dict], phi: list[dict], rejected: list[dict]) -> dict:
    planned = len(records) + len(rejected)
    return {
        "counts": {"planned": planned, "valid": len(records), "rejected": len(rejected),
                   "valid_fraction": round(len(records) / planned, 4) if planned else 0.0},
        "sex_service_counts": dict(sorted(Counter(f"{r['sex']}/{r['service']}" for r in records).items())),
        "rejections_by_reason": dict(Counter(x for r in rejected for x in r["reasons"]).most_common()),
        "phi_category_counts": dict(Counter(s["category"] for p in phi for s in p["spans"]).most_common()),
    }


def clear_outputs(out_dir: Path) -> None:
    # The manifest goes first: without it, leftovers never pass for a finished corpus.
    for name in (MANIFEST_FILE, *CORPUS_FILES):
        (out_dir / name).unlink(missing_ok=True)
    for name in (RECORDS_FILE, CORPUS_PHI_FILE):
        (out_dir / RAW_DIR / name).unlink(missing_ok=True)


def _surrogate_key(seed: int, record_id: str) -> str:
    # The plan seed and the record's id alone: a shard, a resumed run and a rerun release the same corpus, and the
    # consistency check at generation time sees exactly the record that is released.
    return f"{seed}/{record_id}"


def release(records: list[dict], phi: list[dict], seed: int, avoid: Avoid) -> tuple[list[dict], list[dict], Stats]:
    """The records with every PHI value replaced by a fresh surrogate (medgen.data.phi.surrogates), each record
    seeded by the plan seed and its id alone."""
    stats = Stats()
    released, released_phi = [], []
    for r, p in zip(records, phi, strict=True):
        text, spans, done = surrogate(r["text"], p["spans"], _surrogate_key(seed, r["id"]), avoid)
        stats.add(done)
        released.append({**r, "text": text})
        released_phi.append({**p, "spans": spans})
    return released, released_phi, stats


def release_check(seed: int, avoid: Avoid | None, diagnoses: Mapping[str, frozenset[str]],
                  inline: bool) -> Callable[[str, str], list[str]]:
    """The consistency checks (medgen.evaluate.metrics) a model's record fails as it will be released: markup
    stripped and, with `avoid` (fresh surrogates), its PHI replaced exactly as `release` will."""
    def failed(text: str, record_id: str) -> list[str]:
        plain, spans = markup.strip(text) if inline else (text, [])
        if avoid is not None:
            plain, _, _ = surrogate(plain, spans, _surrogate_key(seed, record_id), avoid)
        return [check for check, holds in metrics.consistency(plain, diagnoses).items() if holds is False]

    return failed


def consistency_counts(entries: list[dict], reject: bool) -> dict:
    """The model's own consistency, over every attempt that passed the validity checks (retried ones included):
    how many failed a check and which; the released records are measured by evaluate."""
    checked = sum(e.get("checked_attempts", 0) for e in entries)
    inconsistent = sum(e.get("inconsistent_attempts", 0) for e in entries)
    by_check: Counter = Counter()
    for e in entries:
        by_check.update(e.get("inconsistent_checks", {}))
    return {"reject_inconsistent": reject, "checked_attempts": checked, "inconsistent_attempts": inconsistent,
            "inconsistent_fraction": round(inconsistent / checked, 4) if checked else None,
            "by_check": dict(by_check.most_common())}


def merged_consistency(parts: list[dict]) -> dict:
    """The consistency counts of several shards, added up."""
    by_check: Counter = Counter()
    for p in parts:
        by_check.update(p["by_check"])
    checked = sum(p["checked_attempts"] for p in parts)
    inconsistent = sum(p["inconsistent_attempts"] for p in parts)
    return {"reject_inconsistent": all(p["reject_inconsistent"] for p in parts), "checked_attempts": checked,
            "inconsistent_attempts": inconsistent,
            "inconsistent_fraction": round(inconsistent / checked, 4) if checked else None,
            "by_check": dict(by_check.most_common())}


def merged_stats(stats: list[dict]) -> dict:
    """The surrogate figures of several shards, added up."""
    total = Stats()
    for s in stats:
        total.add(Stats(Counter(s["replaced"]), Counter(s["kept"]), *(s[k] for k in (
            "unparsed_dates", "weekdays_fixed", "ages_from_dob", "titles_fixed", "articles_fixed"))))
    return total.as_dict()


def write_raw(out_dir: Path, records: list[dict], phi: list[dict]) -> dict[str, str]:
    """The model's own records, before the surrogate pass: kept for evaluate's memorization figures, never
    released."""
    raw = ensure_dir(out_dir / RAW_DIR)
    for rows, name in ((records, RECORDS_FILE), (phi, CORPUS_PHI_FILE)):
        atomic_write_text(raw / name, jsonl(rows))
    return {"raw_records": str(raw / RECORDS_FILE), "raw_phi": str(raw / CORPUS_PHI_FILE)}


def write_corpus(out_dir: Path, records: list[dict], phi: list[dict], rejected: list[dict]) -> dict[str, str]:
    files = {"records": RECORDS_FILE, "phi": CORPUS_PHI_FILE, "rejected": REJECTED_FILE}
    for rows, name in ((records, RECORDS_FILE), (phi, CORPUS_PHI_FILE), (rejected, REJECTED_FILE)):
        atomic_write_text(out_dir / name, jsonl(rows))
    return {**{k: str(out_dir / v) for k, v in files.items()}, "card": str(out_dir / GENERATION_CARD_FILE)}


def rate(amount: float, seconds: float) -> float | None:
    return round(amount / seconds, 3) if seconds > 0 and amount else None
