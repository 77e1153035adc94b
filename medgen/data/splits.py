"""Reading what prepare and generate wrote: JSONL rows with file:line errors, and a prepared split as plain text
with its gold spans (inline markup stripped, or its `.phi.jsonl`) and the Sex and Service of each record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medgen.core.constants import SPLIT_FILE, SPLIT_PHI_FILE
from medgen.core.errors import DataError
from medgen.core.results import PrepareResult
from medgen.data import markup
from medgen.data.prompts import parse_input


@dataclass
class Split:
    """A prepared split: plain texts, their spans (None when the source carries no labels), Sex and Service."""

    texts: list[str]
    spans: list[list[dict]] | None
    sexes: list[str | None]
    services: list[str | None]


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """The rows of a JSONL file; every unreadable line or missing key is reported with its file:line."""
    if not path.is_file():
        raise DataError([f"{path}: missing; expected the output of a finished prepare or generate run"])
    rows, problems = [], []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                problems.append(f"{path}:{n}: expected a JSON object per line, got unreadable JSON")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
                continue
            if missing := [k for k in required if k not in row]:
                problems.append(f"{path}:{n}: missing key(s) {', '.join(missing)}")
                continue
            rows.append(row)
    if problems:
        raise DataError(problems)
    return rows


def read_split(prepared: PrepareResult, split: str) -> Split:
    """A prepared split with markup stripped (inline) or spans from its `.phi.jsonl`; Sex/Service from its input."""
    folder = prepared.out_dir
    path = folder / SPLIT_FILE.format(split=split)
    rows = read_jsonl(path, ("input", "output"))
    texts: list[str] = []
    spans: list[list[dict]] | None = []
    problems: list[str] = []
    if prepared.phi_markup == "inline":
        for n, row in enumerate(rows, 1):
            try:
                plain, found = markup.strip(row["output"])
            except markup.MarkupError as e:
                problems.append(f"{path}:{n}: output: {e}")
                continue
            texts.append(plain)
            spans.append(found)
    else:
        texts = [row["output"] for row in rows]
        phi_path = folder / SPLIT_PHI_FILE.format(split=split)
        spans = [p["spans"] for p in read_jsonl(phi_path, ("spans",))] if phi_path.is_file() else None
        if spans is not None and len(spans) != len(texts):
            problems.append(f"{phi_path}: expected {len(texts)} lines, one per record of {path.name}, "
                            f"got {len(spans)}")
    if problems:
        raise DataError(problems)
    pairs = [parse_input(row["input"]) or (None, None) for row in rows]
    return Split(texts, spans, [p[0] for p in pairs], [p[1] for p in pairs])
