"""Validity of one generated record: stop token, header fields, section headings, the requested Sex/Service
and, where the model was trained with inline PHI markup, well-formed markup.

The smoke test and bulk generation score records with this one function.
"""

from __future__ import annotations

from medgen.data import record_format


def score(text: str, sex: str, service: str, stopped: bool, min_section_fraction: float,
          inline_markup: bool = False) -> dict:
    """Score one record; `passed` needs every check, and `reasons` names each one that failed."""
    markup_problems: list[str] = []
    spans: list[dict] = []
    plain = text
    if inline_markup:
        from medgen.data import markup

        markup_problems = markup.validate(text)
        if not markup_problems:
            plain, spans = markup.strip(text)
    layout = record_format.parse(plain)
    got_sex = layout.fields["Sex"] or ""
    got_service = layout.fields["Service"] or ""
    # Reasons are fixed check names: they are counted, logged and published, so they quote nothing the
    # model wrote (it may be PHI).
    checks = {
        "no stop token": stopped,
        "missing fields": not layout.missing_fields,
        "too few sections": layout.section_fraction >= min_section_fraction,
        "wrong sex": bool(got_sex) and got_sex[0].upper() == sex[0].upper(),
        "wrong service": got_service.upper() == service.upper(),
        "bad markup": not markup_problems,
    }
    reasons = [k for k, ok in checks.items() if not ok]
    return {
        "sex": sex,
        "service": service,
        "stopped": stopped,
        "missing_fields": layout.missing_fields,
        "section_fraction": round(layout.section_fraction, 3),
        "got_sex": got_sex,
        "got_service": got_service,
        "sex_ok": checks["wrong sex"],
        "service_ok": checks["wrong service"],
        "markup_problems": len(markup_problems),
        "phi_spans": len(spans),
        "passed": not reasons,
        "reasons": reasons,
    }
