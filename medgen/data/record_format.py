"""The discharge-record layout (MIMIC-IV): header fields and section headings, parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass

from medgen.core.constants import HEADER_FIELDS, SECTION_HEADINGS


def header_value(text: str, name: str) -> str | None:
    """The value after `name:` on its line. Header fields share lines ("Date of Birth: 01/02/1950    Sex: F"),
    so a value ends at two or more spaces or at the end of the line. None when absent or empty."""
    m = re.search(rf"(?m)\b{re.escape(name)}:[ \t]*(\S.*?)(?:[ \t]{{2,}}|[ \t]*$)", text)
    return m.group(1).strip() if m else None


@dataclass(frozen=True)
class Layout:
    fields: dict[str, str | None]  # every header field, None where missing
    sections: tuple[str, ...]  # the expected headings present, in table order

    @property
    def missing_fields(self) -> list[str]:
        return [k for k, v in self.fields.items() if v is None]

    @property
    def section_fraction(self) -> float:
        return len(self.sections) / len(SECTION_HEADINGS)


def parse(text: str) -> Layout:
    fields = {f: header_value(text, f) for f in HEADER_FIELDS}
    sections = tuple(h for h in SECTION_HEADINGS if re.search(rf"(?m)^{re.escape(h)}:", text))
    return Layout(fields, sections)
