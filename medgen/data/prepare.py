"""prepare: Alpaca-style JSONL splits (train/val/test) from synthetic records, MIMIC notes or the user's JSONL."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from medgen.core.config import PipelineConfig
from medgen.core.constants import INSTRUCTION, SPLIT_FILE, SPLIT_PHI_FILE
from medgen.core.errors import DataError
from medgen.core.io import atomic_dir, owner_only
from medgen.core.provenance import fingerprint
from medgen.core.results import PrepareResult
from medgen.data.dataset import Example, dedupe, length_stats, split_by_group, token_lengths
from medgen.data.phi.forms import count_forms
from medgen.data.prompts import instruction, make_input, parse_input

log = logging.getLogger(__name__)


def synthetic_examples(n: int, seed: int, profile: str, layouts: list[str] | None = None) -> list[Example]:
    from medgen.data.synthetic import records

    return [
        Example(INSTRUCTION, make_input(r.sex, r.service), r.text, r.patient_id,
                [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans])
        for r in records(n, seed, profile, layout=layouts)
    ]


def mimic_examples(config: PipelineConfig) -> tuple[list[Example], dict]:
    from medgen.data.mimic import read_notes

    dc = config.data
    opt = lambda p: Path(p).expanduser() if p else None  # noqa: E731
    notes, report = read_notes(Path(dc.notes).expanduser(), dc.seed, opt(dc.patients), opt(dc.services), dc.max_notes,
                               dc.mimic_non_phi)
    if len(notes) < 3:
        raise DataError([f"{dc.notes}: {len(notes)} usable note(s) after skips {report.as_dict()['skipped']}; "
                         "expected at least 3"])
    return [Example(INSTRUCTION, make_input(n.sex, n.service), n.text, n.subject_id, n.spans) for n in notes], \
        report.as_dict()


def source_files(config: PipelineConfig) -> dict[str, Path]:
    """The input files the examples come from (none for the synthetic engine)."""
    dc = config.data
    if dc.source == "alpaca":
        return {"data": Path(dc.path).expanduser()}
    if dc.source == "mimic":
        pairs = (("notes", dc.notes), ("patients", dc.patients), ("services", dc.services))
        return {k: Path(v).expanduser() for k, v in pairs if v}
    if dc.source in ("i2b2", "brat"):
        folder = Path(dc.path).expanduser()
        return {str(f.relative_to(folder)): f for f in sorted(folder.glob("*")) if f.is_file()}
    return {}


def inputs(config: PipelineConfig) -> dict:
    """What the splits are made from (medgen/core/skip.py): the data settings, the base's tokenizer, the files."""
    return fingerprint({"data": config.data.model_dump(mode="json"), "model": config.model.base}, {},
                       source_files(config))


def load_examples(config: PipelineConfig) -> tuple[list[Example], dict | None]:
    """The source's examples and its import report (MIMIC)."""
    dc = config.data
    if dc.source == "alpaca":
        from medgen.data.alpaca import read_alpaca

        return read_alpaca(source_files(config)["data"]), None
    if dc.source == "mimic":
        return mimic_examples(config)
    if dc.source in ("i2b2", "brat"):
        from medgen.data.annotated import annotated_examples

        return annotated_examples(dc)
    return synthetic_examples(dc.n_records, dc.seed, dc.profile, dc.layouts), None


def training_row(ex: Example, inline_markup: bool) -> dict:
    """The Alpaca row the model is trained on; with inline markup the record labels its own PHI."""
    if not inline_markup:
        return ex.row()
    from medgen.data.markup import markup

    return {**ex.row(markup(ex.output, ex.spans or [])), "instruction": instruction(True)}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(config: PipelineConfig) -> PrepareResult:
    from medgen.data.card import write_card
    from medgen.model.loading import load_tokenizer, resolve_base

    t0 = time.perf_counter()
    dc = config.data
    inline = config.data.markup_mode() == "inline"
    examples, import_report = load_examples(config)
    examples, n_dupes = dedupe(examples)
    splits = split_by_group(examples, dc.split.val, dc.split.test, dc.seed)
    rows = {name: [training_row(ex, inline) for ex in exs] for name, exs in splits.items()}
    # Canaries join the written train split only; counts, token stats and the card describe the source's records.
    planting, written, written_rows = None, splits, rows
    if dc.canaries.enabled:
        from medgen.data.canaries import plant

        planting = plant(dc, examples)
        written = {**splits, "train": splits["train"] + planting.copies}
        written_rows = {**rows, "train": rows["train"] + [training_row(ex, inline) for ex in planting.copies]}

    out_dir = config.stage_dir("prepare")
    files = {}
    with owner_only(), atomic_dir(out_dir) as tmp:
        for name, exs in written.items():
            _write_jsonl(tmp / SPLIT_FILE.format(split=name), written_rows[name])
            files[name] = str(out_dir / SPLIT_FILE.format(split=name))
            if any(ex.spans is not None for ex in exs):
                _write_jsonl(tmp / SPLIT_PHI_FILE.format(split=name),
                             [{"index": i, "spans": ex.spans or []} for i, ex in enumerate(exs)])
        pairs: Counter = Counter()
        for ex in examples:
            parsed = parse_input(ex.input)
            pairs[f"{parsed[0]}/{parsed[1]}" if parsed else "(unparsed)"] += 1
        lengths = token_lengths(load_tokenizer(resolve_base(config.model.base, config.model.cache_dir)), rows)
        limit = config.train.max_seq_length
        if limit == "auto":  # what train will pick before its memory cap: the p99 of these lengths
            from medgen.train import packing

            limit = packing.round_up(packing.p99(lengths.get("train") or [n for v in lengths.values() for n in v] or [1]))
        stats = {name: length_stats(v, limit) for name, v in lengths.items()}
        warnings = []
        truncated = stats.get("train", {}).get("truncated_fraction") or 0
        if truncated > 0.05:
            warnings.append(f"{truncated:.0%} of training examples exceed train.max_seq_length={limit} tokens and "
                            "will be truncated; raise it or use shorter records (data.profile=compact)")
            log.warning(warnings[0])
        result = PrepareResult(
            out_dir=out_dir, wall_s=round(time.perf_counter() - t0, 2),
            **inputs(config),
            source=dc.source, path=dc.path or dc.notes, seed=dc.seed,
            profile=dc.profile if dc.source == "synthetic" else None, phi_markup="inline" if inline else "none",
            counts={k: len(v) for k, v in splits.items()}, duplicates_removed=n_dupes,
            sex_service_counts=dict(sorted(pairs.items())),
            phi_category_counts=dict(Counter(s["category"] for ex in examples for s in (ex.spans or [])).most_common()),
            phi_surface_forms={k: {"spans": sum(f.values()), "forms": len(f), "top": dict(f.most_common(4))}
                               for k, f in count_forms((ex.output, ex.spans) for ex in examples if ex.spans).items()},
            token_stats=stats, import_report=import_report, files=files, warnings=warnings,
            canaries=planting.summary(dc.canaries.per_repeat, dc.canaries.repeats) if planting else None,
        )
        if planting:
            from medgen.data.canaries import write_registry

            write_registry(tmp, planting, dc.seed)
        write_card(tmp, result, lengths)
        result.write(config.to_yaml(), tmp)
    return result


def report(m: PrepareResult) -> list[str]:
    """What `medgen prepare` prints: split sizes, the import's figures, warnings."""
    lines = [json.dumps(m.counts)]
    if imp := m.import_report:
        skipped = ", ".join(f"{k}: {v['count']} ({v['lines'][:10]})" for k, v in imp["skipped"].items()) or "none"
        if "masks" in imp:  # MIMIC-IV-Note
            typed = f"{imp['resolved_by_specific_rule']:.1%} by a specific rule" if imp["masks"] else "none to type"
            lines.append(f"imported {imp['notes']} notes; {imp['masks']} masks filled, {typed}; skipped: {skipped}")
        else:  # annotated notes
            lines.append(f"imported {imp['notes']} of {imp['documents']} {imp['format']} notes ({imp['found']}, "
                         f"surrogates: {imp['surrogates']}); skipped: {skipped}")
        lines.append(f"categories: {imp['categories']}")
    # Logged as they happened; repeated when the stage was skipped, so that they are not lost
    return lines + [f"warning: {w}" for w in m.warnings if m.skipped]
