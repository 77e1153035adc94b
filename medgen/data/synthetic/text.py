"""A record's text built left to right, with the character span of every PHI value recorded as it is inserted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


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


class Doc:
    """Text built left to right, recording the span of every PHI value as it is inserted."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def phi(self, value: str, category: str) -> None:
        self.spans.append(Span(self.length, self.length + len(value), category, value))
        self.add(value)

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
        self.add(f" \n{name}:\n")

    def text(self) -> str:
        return "".join(self.parts)
