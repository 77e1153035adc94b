"""prepare: Alpaca-style JSONL splits (train/val/test) from synthetic records or the user's own JSONL."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from medgen.config import PipelineConfig
from medgen.constants import ALPACA_FIELDS, INPUT_TEMPLATE, INSTRUCTION, PHI_FILE, SPLIT_FILE, SPLITS
from medgen.errors import DataError
from medgen.io import atomic_dir, owner_only, write_stage_record
from medgen.records import records

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


def dedupe(examples: list[Example]) -> tuple[list[Example], int]:
    seen: set[str] = set()
    kept = []
    for ex in examples:
        key = hashlib.sha256(" ".join(ex.output.split()).lower().encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(examples) - len(kept)


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
    if dc.source == "alpaca":
        examples = read_alpaca(Path(dc.path).expanduser())
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
        manifest = {
            "stage": "prepare",
            "source": dc.source,
            "path": dc.path,
            "seed": dc.seed,
            "profile": dc.profile if dc.source == "synthetic" else None,
            "counts": {k: len(v) for k, v in splits.items()},
            "duplicates_removed": n_dupes,
            "sex_service_counts": dict(sorted(pairs.items())),
            "files": files,
            "wall_s": round(time.perf_counter() - t0, 2),
        }
        write_stage_record(tmp, config.to_yaml(), manifest)
    return PrepareResult(out_dir, files, manifest["counts"], manifest)
