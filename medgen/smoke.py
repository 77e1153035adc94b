"""Smoke-test scoring of generated records: header fields, section headings, and the requested Sex/Service."""

from __future__ import annotations

import re

from medgen.constants import HEADER_FIELDS, SECTION_HEADINGS


def _field(text: str, name: str) -> str | None:
    m = re.search(rf"(?m)\b{re.escape(name)}:[ \t]*([^\n]*?)(?:\s{{2,}}\S.*)?$", text)
    return m.group(1).strip() if m else None


def score(text: str, sex: str, service: str, stopped: bool, min_section_fraction: float) -> dict:
    """Score one record; `passed` needs a stop token, every header field, enough headings and matching metadata."""
    missing = [f for f in HEADER_FIELDS if not re.search(rf"(?m)\b{re.escape(f)}:", text)]
    sections = [h for h in SECTION_HEADINGS if re.search(rf"(?m)^{re.escape(h)}:", text)]
    fraction = len(sections) / len(SECTION_HEADINGS)
    got_sex = (_field(text, "Sex") or "").strip()
    got_service = (_field(text, "Service") or "").strip()
    sex_ok = bool(got_sex) and got_sex[0].upper() == sex[0].upper()
    service_ok = got_service.upper() == service.upper()
    passed = stopped and not missing and fraction >= min_section_fraction and sex_ok and service_ok
    return {
        "sex": sex,
        "service": service,
        "stopped": stopped,
        "missing_fields": missing,
        "section_fraction": round(fraction, 3),
        "got_sex": got_sex,
        "got_service": got_service,
        "sex_ok": sex_ok,
        "service_ok": service_ok,
        "passed": passed,
    }
