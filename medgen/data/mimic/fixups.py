"""Filling a note: every mask group replaced by its surrogate, reading naturally (articles, capitals, a line
written in capitals), with the PHI spans of the filled text."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

from medgen.data.mimic.rules import GROUP_RE, MASK_RE, NON_PHI_TREATMENTS, context_at, match, sections
from medgen.data.mimic.surrogates import MAKERS, Identity
from medgen.data.phi.forms import wants_an

# ------------------------------------------------------------------------------------ reading naturally

_ARTICLE_TAIL = re.compile(r"(?:(?<=\s)|(?<=\A))(the|a|an)[ \t]+\Z", re.IGNORECASE)
# Notes are hard-wrapped, so a line start is a sentence start only after a sentence end, a blank line or
# a bullet.
_SENTENCE_START = re.compile(r"(?:\A|[.!?:][\"')\]]*\s+|\n[ \t]*\n\s*|\n[ \t]*(?:[-*#]+|\d+[.)])[ \t]*)\Z")


def read_naturally(buf: str, value: str, proper: bool) -> tuple[str, str]:
    """The text so far and the surrogate, adjusted so they read naturally together."""
    tail = max(0, len(buf) - 40)  # the text so far grows to the whole note: searching it all is quadratic
    m = _ARTICLE_TAIL.search(buf, tail)
    if m and value[:1].isalnum():
        article = m.group(1)
        if proper:  # "the Dr. ___" is not written, nor "the Jane Smith"
            buf = buf[:m.start()]
            if article[0].isupper():
                value = value[0].upper() + value[1:]
        elif article.lower() in ("a", "an"):
            want = "an" if wants_an(value) else "a"
            want = want.upper() if article.isupper() else want.capitalize() if article[0].isupper() else want
            buf = buf[:m.start(1)] + want + buf[m.end(1):]
    if value[:1].islower() and _SENTENCE_START.search(buf, max(0, len(buf) - 40)):
        value = value[0].upper() + value[1:]
    return buf, value


def _shout(line: str) -> bool:
    """A line written in capitals (an all-caps heading or label): PHI in it is written in capitals too."""
    letters = re.sub(r"[^A-Za-z]", "", MASK_RE.sub("", line))
    return len(letters) >= 4 and letters.isupper()


@dataclass
class Filled:
    text: str
    spans: list[dict]  # PHI surrogates: start, end, category (i2b2), rule, text; dates also "when"
    non_phi: list[dict]  # non-PHI fills: start, end, rule (no category: they are not PHI)
    rules: Counter  # masks per rule


def fill(text: str, identity: Identity, non_phi: str = "filler") -> Filled:
    """Replace every mask of `text`; `non_phi` is "filler" (realistic text) or "placeholder" (`<KIND>`)."""
    if non_phi not in NON_PHI_TREATMENTS:
        raise ValueError(f"non_phi: expected one of {NON_PHI_TREATMENTS}, got {non_phi!r}")
    starts, names = sections(text)
    buf, pos = "", 0
    spans: list[dict] = []
    fills: list[dict] = []
    rules: Counter = Counter()
    for g in GROUP_RE.finditer(text):
        ctx = context_at(text, g.start(), g.end(), names[bisect_right(starts, g.start()) - 1])
        rule, groups = match(ctx)
        f = MAKERS[rule.make](identity, ctx, groups)
        value = f.placeholder if f.placeholder is not None and non_phi == "placeholder" else f.text
        line_end = text.find("\n", g.end())
        if f.spans and _shout(text[text.rfind("\n", 0, g.start()) + 1:line_end if line_end != -1 else len(text)]):
            value = value.upper()
        buf, value = read_naturally(buf + text[pos:g.start()], value, f.proper)
        start = len(buf)
        if f.placeholder is not None:
            fills.append({"start": start, "end": start + len(value), "rule": rule.name})
        for s, e, category in f.spans:
            span = {"start": start + s, "end": start + e, "category": category, "rule": rule.name,
                    "text": value[s:e]}
            if f.when and category == "DATE":
                span["when"] = f.when
            spans.append(span)
        buf += value
        pos = g.end()
        rules[rule.name] += ctx.masks
    return Filled(buf + text[pos:], spans, fills, rules)
