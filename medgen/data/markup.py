"""Inline PHI markup, so that a model trained on marked records labels the PHI it writes.

Each PHI value is written in place as `[[code value]]`: the category code, one space, the value.

    Name: [[patient Avery Lopez]]    Unit No: [[mrn 4417205]]
    Ms. [[patient Lopez]] is a [[age 67]] year old woman who presented to [[hospital Mercy General]] on
    [[date 03/14/2021]].

`markup(text, spans)` writes it, `strip(marked)` reads it back into the plain text and its spans (the
exact inverse), and `validate(marked)` lists every problem of a model's output instead of stopping at
the first.

Why this shape: MIMIC-III's `[**…**]` is the precedent for PHI markup inside clinical notes, but every
token of markup is a token the model must learn to write and a token of `max_seq_length` spent. Measured
with the embedded SmolLM2 tokenizer on 300 compact records (463 tokens, 15 spans each) and 100 full
ones (1,774 tokens, 32 spans):

    `[**NAME:PATIENT|v**]`   +8.0 tokens a span, compact +26.0%, full +14.9%
    `[**patient v**]`        +5.0                    +16.2%        +8.9%
    `[:patient v:]`          +4.0                    +13.0%        +6.9%
    `[[patient v]]`          +3.1                     +9.9%        +5.4%

`[[` and `]]` are one token each (but for `]].`, which splits as `]` `].`), and so is every code the
engines use except `mrn`; the space after the code keeps the value's first word the same token (" Avery") as in the plain text.
Neither `[[` nor `]]` occurs in the synthetic engine's records.

Rules that make the markup unambiguous:
- codes are lowercase letters from a fixed table, so the first space after `[[` ends the code and the
  value may hold anything else, spaces, `|`, `:`, `*` and single brackets included;
- the value ends at the first `]]`, so a value may not contain `[[` or `]]` nor end with `]` (its `]`
  and the closing `]]` would read as `]]` + `]`); a `]` of the text right after a value is fine;
- markup opens at the last `[[` of a run of `[`, so a `[` of the text right before a value is fine;
- the text outside markup may not contain `[[` or `]]`: in a model's output, every one is markup;
- a value is not empty and does not cross a line, so an unclosed `[[` is caught at the end of its line.

The codes map one to one onto the i2b2-2014 categories (the category table, medgen.data.phi.categories), plus
`TIME` and `OTHER` from the MIMIC importer. Error messages quote nothing of
the text but an offending category code, since the text may be real PHI.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Protocol

from medgen.core.errors import FailureKind, MedgenError
from medgen.data.phi.categories import ALIASES
from medgen.data.phi.categories import CATEGORIES as PHI_CATEGORIES

OPEN, CLOSE = "[[", "]]"

# The category table's codes (medgen/data/phi/categories.py), one per category.
CODES: dict[str, str] = {c.name: c.code for c in PHI_CATEGORIES}
CATEGORIES: dict[str, str] = {code: category for category, code in CODES.items()}

# The last `[[` of a run of `[`: the ones before it belong to the text.
_OPEN_RE = re.compile(r"\[\[(?!\[)")
_INNER_RE = re.compile(r"([a-z]+)(?: (.*))?", re.DOTALL)
_END_RE = re.compile(r"\]\]|\[\[|\n")


class MarkupError(MedgenError, ValueError):
    """Markup that cannot be written or read; `offset` is where, in the text the caller passed."""

    kind = FailureKind.DATA

    def __init__(self, message: str, offset: int):
        self.message = message
        self.offset = offset
        super().__init__(f"offset {offset}: {message}")


class SpanLike(Protocol):
    start: int
    end: int
    category: str
    text: str


def _fields(span: SpanLike | Mapping[str, Any]) -> tuple[int, int, str, str]:
    if isinstance(span, Mapping):
        return span["start"], span["end"], span["category"], span["text"]
    return span.start, span.end, span.category, span.text


def markup(text: str, spans: Iterable[SpanLike | Mapping[str, Any]]) -> str:
    """`text` with each span written as `[[code value]]`. Spans are dicts or objects with start, end,
    category and text, in any order; extra keys are ignored. Raises MarkupError (offsets in `text`)
    for an unknown category, a span out of bounds, empty, overlapping another or whose text differs
    from text[start:end], and for text the markup could not read back (see the module docstring)."""
    for marker in (OPEN, CLOSE):
        if (at := text.find(marker)) != -1:
            raise MarkupError(f"the text contains {marker!r}, which is reserved for PHI markup", at)
    out, pos = [], 0
    for start, end, category, value in sorted((_fields(s) for s in spans), key=lambda f: (f[0], f[1])):
        where = f"span {start}-{end} ({category})"
        code = CODES.get(ALIASES.get(category, category))
        if code is None:
            raise MarkupError(f"{where}: unknown category; known: {', '.join(CODES)}", start)
        if not 0 <= start < end <= len(text):
            raise MarkupError(f"{where}: empty or outside the text (length {len(text)})", start)
        if start < pos:
            raise MarkupError(f"{where} overlaps the span ending at {pos}", start)
        if text[start:end] != value:
            raise MarkupError(f"{where}: its text differs from the text at {start}-{end}", start)
        if "\n" in value:
            raise MarkupError(f"{where}: a value may not cross a line", start)
        if value.endswith("]"):
            raise MarkupError(f"{where}: a value may not end with ']', it would run into the closing {CLOSE!r}",
                              end - 1)
        out += [text[pos:start], OPEN, code, " ", value, CLOSE]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _scan(marked: str, first_only: bool) -> tuple[str, list[dict], list[tuple[int, str]]]:
    """Plain text, spans and problems (offset in `marked`, message); stops at the first problem when asked."""
    plain: list[str] = []
    spans: list[dict] = []
    problems: list[tuple[int, str]] = []
    length = pos = 0

    def literal(upto: int) -> None:
        nonlocal length
        chunk = marked[pos:upto]
        for marker, message in ((CLOSE, f"{CLOSE!r} without an opening {OPEN!r}"),
                                (OPEN, f"stray {OPEN!r} in a run of '['")):
            problems.extend((pos + m.start(), message) for m in re.finditer(re.escape(marker), chunk))
        plain.append(chunk)
        length += len(chunk)

    while not (first_only and problems):
        opened = _OPEN_RE.search(marked, pos)
        if opened is None:
            literal(len(marked))
            break
        literal(opened.start())
        i = opened.start()
        end = _END_RE.search(marked, i + 2)
        if end is None or end.group() == "\n":
            where = "the end of the line" if end else "the end of the text"
            problems.append((i, f"unclosed markup: no {CLOSE!r} before {where}"))
            pos = i + 2
            continue
        if end.group() == OPEN:
            problems.append((end.start(), f"nested markup: {OPEN!r} inside the value opened at offset {i}"))
            pos = end.start()
            continue
        pos = end.end()
        inner = _INNER_RE.fullmatch(marked, i + 2, end.start())
        if inner is None:
            problems.append((i + 2, f"{OPEN!r} must be followed by a lowercase category code and a space"))
            continue
        code, value = inner.group(1), inner.group(2)
        if code not in CATEGORIES:
            problems.append((i + 2, f"unknown category code {code[:20]!r}; known: {', '.join(CATEGORIES)}"))
        elif not value:
            problems.append((i + 2, f"empty value for {code!r}"))
        else:
            spans.append({"start": length, "end": length + len(value), "category": CATEGORIES[code],
                          "text": value})
            plain.append(value)
            length += len(value)
    return "".join(plain), spans, sorted(problems)


def strip(marked: str) -> tuple[str, list[dict]]:
    """The plain text and its spans ({"start", "end", "category", "text"}, i2b2 categories, offsets in
    the plain text, in text order). Raises MarkupError at the first problem, its offset in `marked`."""
    plain, spans, problems = _scan(marked, first_only=True)
    if problems:
        raise MarkupError(problems[0][1], problems[0][0])
    return plain, spans


def validate(marked: str) -> list[str]:
    """Every problem of the markup in `marked` (e.g. a model's output), as "offset N (line L): message";
    an empty list means `strip` will read it."""
    return [f"offset {at} (line {marked.count(chr(10), 0, at) + 1}): {message}"
            for at, message in _scan(marked, first_only=False)[2]]
