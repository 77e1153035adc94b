"""The user's own Alpaca JSONL: every bad line reported with file:line, or the examples."""

from __future__ import annotations

import json
from pathlib import Path

from medgen.constants import ALPACA_FIELDS
from medgen.dataset import Example
from medgen.errors import DataError


def _problems(obj: object, where: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected a JSON object, got {type(obj).__name__}"]
    problems = []
    for key in ALPACA_FIELDS:
        if key not in obj:
            problems.append(f"{where}: missing field {key!r}; expected {', '.join(ALPACA_FIELDS)}")
        elif not isinstance(obj[key], str):
            problems.append(f"{where}: field {key!r}: expected a string, got {type(obj[key]).__name__}")
        elif key != "input" and not obj[key].strip():
            problems.append(f"{where}: field {key!r} is empty")
    return problems


def read_alpaca(path: Path) -> list[Example]:
    """Validate every line of an Alpaca JSONL file; report all problems at once, or return the examples."""
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
            bad = _problems(obj, where)
            if bad:
                problems.extend(bad)
                continue
            # Without a patient id each user example is its own group.
            group = str(obj.get("subject_id") or obj.get("patient_id") or f"line-{lineno}")
            examples.append(Example(obj["instruction"], obj["input"], obj["output"], group))
    if problems:
        raise DataError(problems)
    if len(examples) < 3:
        raise DataError([f"{path}: {len(examples)} example(s); expected at least 3 (one per split)"])
    return examples
