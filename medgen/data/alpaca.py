"""The user's own Alpaca JSONL: every bad line reported with file:line, or the examples."""

from __future__ import annotations

import json
from pathlib import Path

from medgen.core.constants import ALPACA_FIELDS
from medgen.core.errors import DataError
from medgen.data.dataset import Example
from medgen.data.prompts import make_input, parse_input

EXPECTED = "expected Alpaca JSONL (one object with instruction, input, output per line)"


def _lone_surrogate(text: str) -> int | None:
    """Where a JSON escape such as \\ud800 left half a UTF-16 pair: not text, and no UTF-8 file can hold it."""
    return next((i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF), None)


def _problems(obj: object, where: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected a JSON object with {', '.join(ALPACA_FIELDS)}, got {type(obj).__name__}"]
    problems = []
    for key in ALPACA_FIELDS:
        if key not in obj:
            problems.append(f"{where}: missing field {key!r}; expected {', '.join(ALPACA_FIELDS)}")
        elif not isinstance(obj[key], str):
            problems.append(f"{where}: field {key!r}: expected a string, got {type(obj[key]).__name__}")
        elif (at := _lone_surrogate(obj[key])) is not None:
            problems.append(f"{where}: field {key!r} holds a lone surrogate escape (\\u{ord(obj[key][at]):04x}) at "
                            f"character {at}, half of a UTF-16 pair that no UTF-8 file can hold; fix or remove that "
                            "escape")
        elif key != "input" and not obj[key].strip():
            problems.append(f"{where}: field {key!r} is empty; fill it or remove the line")
        elif key == "input" and parse_input(obj[key]) is None:
            # Sex and Service are what generation asks for: an example without them teaches no request.
            problems.append(f"{where}: field 'input' names no Sex and Service; expected e.g. "
                            f"{make_input('Female', 'MEDICINE')!r}")
    return problems


def read_alpaca(path: Path) -> list[Example]:
    """Validate every line of an Alpaca JSONL file; report all problems at once, or return the examples."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataError([f"{path}: no such file; {EXPECTED}"]) from None
    except IsADirectoryError:
        raise DataError([f"{path}: is a directory; {EXPECTED}"]) from None
    except PermissionError:
        raise DataError([f"{path}: not readable (permission denied); give your user read access"]) from None
    except OSError as e:
        raise DataError([f"{path}: cannot be read ({e.strerror or e}); {EXPECTED}"]) from None
    problems: list[str] = []
    examples: list[Example] = []
    with f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"{where}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                "re-encode the file as UTF-8")
                continue
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: invalid JSON at column {e.colno}: {e.msg}; expected one JSON object per "
                                "line")
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
        raise DataError([f"{path}: {len(examples)} example(s); expected at least 3 (one per split): add examples"])
    return examples
