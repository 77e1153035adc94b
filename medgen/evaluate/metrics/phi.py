"""PHI reuse: the identifying PHI values of records, and how many of one corpus's occur among another's."""

from __future__ import annotations

from typing import Mapping, Sequence

from medgen.data.record_format import header_value
from medgen.evaluate.metrics.consistency import parse_date

REUSE_KINDS = ("patient_name", "mrn", "phone", "street", "name_dob")
_SPAN_KINDS = {"NAME:PATIENT": "patient_name", "ID:MEDICALRECORD": "mrn", "CONTACT:PHONE": "phone",
               "LOCATION:STREET": "street"}


def _norm(value: str) -> str:
    return " ".join(value.casefold().split())


def phi_values(text: str, spans: Sequence[Mapping] | None) -> dict[str, set[str]]:
    """The identifying PHI values of one record, normalized, by kind: full patient names (two words or more:
    a surname alone is common by chance), MRNs, phones (digits only), street addresses, and the patient's
    name with the date of birth. The header's Name and Unit No count too, so records without spans still
    yield names and MRNs."""
    out: dict[str, set[str]] = {k: set() for k in REUSE_KINDS}
    for s in spans or ():
        kind = _SPAN_KINDS.get(s["category"])
        if kind == "phone":
            out[kind].add("".join(ch for ch in s["text"] if ch.isdigit()))
        elif kind == "patient_name":
            if len(s["text"].split()) >= 2:
                out[kind].add(_norm(s["text"]))
        elif kind:
            out[kind].add(_norm(s["text"]))
    name, mrn, dob = (header_value(text, f) for f in ("Name", "Unit No", "Date of Birth"))
    if name and len(name.split()) >= 2:
        out["patient_name"].add(_norm(name))
    if mrn:
        out["mrn"].add(_norm(mrn))
    born = parse_date(dob or "")
    if name and born:
        out["name_dob"].add(f"{_norm(name)}|{born.isoformat()}")
    out["phone"].discard("")
    return out


def phi_reuse(query: Sequence[dict[str, set[str]]], reference: Sequence[dict[str, set[str]]]) -> dict:
    """Per kind: how many of the query records' values (distinct within a record) occur among the reference's."""
    seen = {k: set().union(*(r[k] for r in reference)) for k in REUSE_KINDS}
    out = {}
    for k in REUSE_KINDS:
        values = sum(len(r[k]) for r in query)
        reused = sum(len(r[k] & seen[k]) for r in query)
        out[k] = {"values": values, "reused": reused, "fraction": round(reused / values, 4) if values else None}
    return out
