"""A record's text built left to right from plain pieces and PHI values, each PHI value's character span computed from
the pieces, so a layout may still rewrite what was written (prose instead of lines, capitals, typos) and every span
stays exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    category: str
    text: str


@dataclass
class Record:
    sex: str
    service: str
    text: str
    patient_id: str
    spans: list[Span] = field(default_factory=list)
    layout: str = "mimic"


FIXED = "="  # the category of plain text no rewrite touches: headings and labels


class Doc:
    """Text built left to right: plain pieces, fixed pieces (headings) and PHI values, in order."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str | None]] = []  # (text, category; None for plain text, FIXED for a heading)

    def add(self, text: str) -> None:
        if text:
            self.parts.append((text, None))

    def fixed(self, text: str) -> None:
        self.parts.append((text, FIXED))

    def phi(self, value: str, category: str) -> None:
        self.parts.append((value, category))

    def pieces(self, pieces: Sequence) -> None:
        for p in pieces:
            if isinstance(p, tuple):
                self.phi(*p)
            else:
                self.add(p)

    def line(self, *pieces) -> None:
        self.pieces(pieces)
        self.add("\n")

    def heading(self, name: str) -> None:
        self.fixed(f" \n{name}:\n")

    def mark(self) -> int:
        """Where the next piece goes, for `rewrite`."""
        return len(self.parts)

    def rewrite(self, since: int, plain: Callable[[str], str] | None = None,
                value: Callable[[str, str], str] | None = None) -> None:
        """Rewrite the pieces from `since` on: plain text through `plain`, PHI values through `value(text,
        category)`; fixed pieces stay."""
        self.parts[since:] = [(t if cat == FIXED else (value(t, cat) if value else t) if cat else
                               (plain(t) if plain else t), cat) for t, cat in self.parts[since:]]

    def text(self) -> str:
        return "".join(t for t, _ in self.parts)

    @property
    def spans(self) -> list[Span]:
        out, at = [], 0
        for t, cat in self.parts:
            if cat and cat != FIXED:
                out.append(Span(at, at + len(t), cat, t))
            at += len(t)
        return out
