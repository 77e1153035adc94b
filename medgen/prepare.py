"""prepare: Alpaca-style JSONL splits (train/val/test) from synthetic records or the user's own JSONL."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from medgen.config import PipelineConfig
from medgen.constants import ALPACA_FIELDS, CARD_FILE, HIST_FILE, INPUT_TEMPLATE, INSTRUCTION, PHI_FILE, SPLIT_FILE, SPLITS
from medgen.errors import DataError
from medgen.io import atomic_dir, owner_only, write_stage_record
from medgen.records import records

log = logging.getLogger(__name__)

INPUT_RE = re.compile(r"Sex:\s*(?P<sex>[^,]+?)\s*,\s*(?:Medical\s+)?Service:\s*(?P<service>.+?)\s*$")


@dataclass
class Example:
    instruction: str
    input: str
    output: str
    group: str  # the patient: examples of one group never straddle splits
    spans: list[dict] | None = None

    def row(self) -> dict:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


@dataclass
class PrepareResult:
    out_dir: Path
    files: dict[str, str]
    counts: dict[str, int]
    manifest: dict


def chat_messages(system: str, user: str, assistant: str | None = None) -> list[dict]:
    """The chat layout everywhere: system = instruction, user = input, assistant = the record."""
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return msgs + ([{"role": "assistant", "content": assistant}] if assistant is not None else [])


def make_input(sex: str, service: str) -> str:
    return INPUT_TEMPLATE.format(sex=sex, service=service)


def parse_input(text: str) -> tuple[str, str] | None:
    """'Generate discharge record for: Sex: Male, Medical Service: CARDIOLOGY' -> ('Male', 'CARDIOLOGY')."""
    m = INPUT_RE.search(text)
    return (m["sex"], m["service"]) if m else None


def synthetic_examples(n: int, seed: int, profile: str) -> list[Example]:
    return [
        Example(INSTRUCTION, make_input(r.sex, r.service), r.text, r.patient_id,
                [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans])
        for r in records(n, seed, profile)
    ]


def mimic_examples(config: PipelineConfig) -> tuple[list[Example], dict]:
    from medgen.mimic import read_notes

    dc = config.data
    opt = lambda p: Path(p).expanduser() if p else None  # noqa: E731
    notes, report = read_notes(Path(dc.notes).expanduser(), dc.seed, opt(dc.patients), opt(dc.services), dc.max_notes)
    if len(notes) < 3:
        raise DataError([f"{dc.notes}: {len(notes)} usable note(s) after skips {report.as_dict()['skipped']}; "
                         "expected at least 3"])
    return [Example(INSTRUCTION, make_input(n.sex, n.service), n.text, n.subject_id, n.spans) for n in notes], \
        report.as_dict()


def read_alpaca(path: Path) -> list[Example]:
    """Validate every line of an Alpaca JSONL file; report all problems with file:line, or return examples."""
    if not path.is_file():
        raise DataError([f"{path}: no such file; expected Alpaca JSONL (instruction, input, output per line)"])
    problems: list[str] = []
    examples: list[Example] = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{where}: not UTF-8 (byte {e.start}); re-encode the file as UTF-8")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: invalid JSON at column {e.colno}: {e.msg}")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
                continue
            bad = False
            for key in ALPACA_FIELDS:
                if key not in obj:
                    problems.append(f"{where}: missing field {key!r}; expected {', '.join(ALPACA_FIELDS)}")
                    bad = True
                elif not isinstance(obj[key], str):
                    problems.append(f"{where}: field {key!r}: expected a string, got {type(obj[key]).__name__}")
                    bad = True
                elif key != "input" and not obj[key].strip():
                    problems.append(f"{where}: field {key!r} is empty")
                    bad = True
            if not bad:
                # Without a patient id each user example is its own group.
                group = str(obj.get("subject_id") or obj.get("patient_id") or f"line-{lineno}")
                examples.append(Example(obj["instruction"], obj["input"], obj["output"], group))
    if problems:
        raise DataError(problems)
    if len(examples) < 3:
        raise DataError([f"{path}: {len(examples)} example(s); expected at least 3 (one per split)"])
    return examples


def _near_key(text: str) -> str:
    """Records that differ only in digits, case, punctuation or spacing share this key."""
    words = re.sub(r"[\d\W_]+", " ", text.lower()).split()
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def dedupe(examples: list[Example]) -> tuple[list[Example], dict[str, int]]:
    """Drop exact duplicates, then near duplicates (same words once digits and punctuation are gone)."""
    exact: set[str] = set()
    near: set[str] = set()
    kept, removed = [], {"exact": 0, "near": 0}
    for ex in examples:
        e = hashlib.sha256(" ".join(ex.output.split()).encode()).hexdigest()
        n = _near_key(ex.output)
        if e in exact:
            removed["exact"] += 1
        elif n in near:
            removed["near"] += 1
        else:
            exact.add(e)
            near.add(n)
            kept.append(ex)
    return kept, removed


def split_by_group(examples: list[Example], val: float, test: float, seed: int) -> dict[str, list[Example]]:
    """Assign whole patients to splits, so that no patient's records leak across them."""
    groups = sorted({ex.group for ex in examples})
    random.Random(seed).shuffle(groups)
    n = len(groups)
    n_val = max(1, round(n * val)) if val > 0 else 0
    n_test = max(1, round(n * test)) if test > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError([f"{n} patient(s) cannot fill train/val/test with val={val}, test={test}; add data"])
    which = {g: "val" for g in groups[:n_val]}
    which.update({g: "test" for g in groups[n_val:n_val + n_test]})
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in examples:
        out[which.get(ex.group, "train")].append(ex)
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(config: PipelineConfig) -> PrepareResult:
    t0 = time.perf_counter()
    dc = config.data
    import_report = None
    if dc.source == "alpaca":
        examples = read_alpaca(Path(dc.path).expanduser())
    elif dc.source == "mimic":
        examples, import_report = mimic_examples(config)
    else:
        examples = synthetic_examples(dc.n_records, dc.seed, dc.profile)
    examples, n_dupes = dedupe(examples)
    splits = split_by_group(examples, dc.split.val, dc.split.test, dc.seed)

    out_dir = config.stage_dir("prepare")
    files = {}
    with owner_only(), atomic_dir(out_dir) as tmp:
        for name, exs in splits.items():
            _write_jsonl(tmp / SPLIT_FILE.format(split=name), [ex.row() for ex in exs])
            files[name] = str(out_dir / SPLIT_FILE.format(split=name))
            if any(ex.spans is not None for ex in exs):
                _write_jsonl(tmp / PHI_FILE.format(split=name),
                             [{"index": i, "spans": ex.spans or []} for i, ex in enumerate(exs)])
        pairs = Counter()
        for exs in splits.values():
            for ex in exs:
                parsed = parse_input(ex.input)
                pairs[f"{parsed[0]}/{parsed[1]}" if parsed else "(unparsed)"] += 1
        lengths = token_lengths(config, splits)
        stats = {name: length_stats(v, config.train.max_seq_length) for name, v in lengths.items()}
        phi_counts = Counter(s["category"] for exs in splits.values() for ex in exs for s in (ex.spans or []))
        manifest = {
            "stage": "prepare",
            "source": dc.source,
            "path": dc.path or dc.notes,
            "seed": dc.seed,
            "profile": dc.profile if dc.source == "synthetic" else None,
            "counts": {k: len(v) for k, v in splits.items()},
            "duplicates_removed": n_dupes,
            "sex_service_counts": dict(sorted(pairs.items())),
            "phi_category_counts": dict(phi_counts.most_common()),
            "token_stats": stats,
            "import": import_report,
            "files": files,
            "wall_s": round(time.perf_counter() - t0, 2),
        }
        truncated = stats.get("train", {}).get("truncated_fraction") or 0
        if truncated > 0.05:
            manifest["warnings"] = [
                f"{truncated:.0%} of training examples exceed train.max_seq_length={config.train.max_seq_length} "
                "tokens and will be truncated; raise it or use shorter records (data.profile=compact)"]
            log.warning(manifest["warnings"][0])
        write_stage_record(tmp, config.to_yaml(), manifest)
        write_card(tmp, out_dir, manifest, lengths)
    return PrepareResult(out_dir, files, manifest["counts"], manifest)


def token_lengths(config: PipelineConfig, splits: dict[str, list[Example]]) -> dict[str, list[int]]:
    """Tokens per example (chat-formatted prompt + record) with the model's own tokenizer and template."""
    from medgen.modeling import load_tokenizer, resolve_base

    tok = load_tokenizer(resolve_base(config.model.base, config.model.cache_dir))
    out = {}
    for name, exs in splits.items():
        texts = [tok.apply_chat_template(chat_messages(ex.instruction, ex.input, ex.output), tokenize=False)
                 for ex in exs]
        out[name] = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []
    return out


def length_stats(lengths: list[int], max_len: int) -> dict:
    if not lengths:
        return {"n": 0}
    s = sorted(lengths)
    return {"n": len(s), "mean": round(sum(s) / len(s), 1), "p50": s[len(s) // 2],
            "p95": s[min(len(s) - 1, int(len(s) * 0.95))], "max": s[-1],
            "truncated_fraction": round(sum(x > max_len for x in s) / len(s), 4), "max_seq_length": max_len}


def write_card(tmp: Path, out_dir: Path, manifest: dict, lengths: dict[str, list[int]]) -> None:
    """A markdown dataset card and a token-length histogram beside the splits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, v in lengths.items():
        if v:
            ax.hist(v, bins=30, alpha=0.6, label=name)
    ax.axvline(manifest["token_stats"]["train"].get("max_seq_length", 0), color="k", ls="--", label="max_seq_length")
    ax.set_xlabel("tokens per example")
    ax.set_ylabel("examples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(tmp / HIST_FILE, dpi=100)
    plt.close(fig)

    service_sex: dict[str, Counter] = {}
    for key, n in manifest["sex_service_counts"].items():
        sex, _, service = key.partition("/")
        service_sex.setdefault(service, Counter())[sex] += n
    rows = "\n".join(f"| {svc} | {c.get('Male', 0)} | {c.get('Female', 0)} |" for svc, c in sorted(service_sex.items()))
    phi = "\n".join(f"| {k} | {v} |" for k, v in manifest["phi_category_counts"].items()) or "| (none recorded) | |"
    stats = "\n".join(f"| {k} | {v.get('n')} | {v.get('mean')} | {v.get('p95')} | {v.get('max')} | "
                      f"{v.get('truncated_fraction')} |" for k, v in manifest["token_stats"].items())
    card = f"""# Dataset card: {out_dir}

- Source: **{manifest['source']}**{f" ({manifest['path']})" if manifest['path'] else ""}
- Seed: {manifest['seed']}{f", profile: {manifest['profile']}" if manifest['profile'] else ""}
- Splits (by patient): {manifest['counts']}
- Duplicates removed: {manifest['duplicates_removed']}

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
