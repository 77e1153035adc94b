"""Dates as notes write them: parsed into a template of fields (weekday, day, month, year, each with its style)
and literal text, so that a date can be re-rendered in its own form after a shift, partial ones included.

    parse("March 14, 2091")  -> Month(full) " " Day(1) ", " Year(4)
    parse("3/14")            -> Month(1) "/" Day(1)                     (a partial date: no year)
    parse("the 3rd")         -> "the " Day(ordinal)
    parse("Thursday 04/08")  -> Weekday(full) " " Month(2) "/" Day(2)

`resolve` fills a partial date's missing fields from an anchor (the record's admission date): the candidate
nearest to it. `render` writes a date in a template's form, so `render(t, resolve(t, anchor) + shift)` is the
shifted date as the note would have written it. `FORMS` are the forms the synthetic engine and the MIMIC
import write; `form_name` names a parsed template for the surface-form counts.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

MONTHS = tuple(calendar.month_name)[1:]
WEEKDAYS = tuple(calendar.day_name)
_MONTH_ABBR = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
_WEEKDAY_ABBR = {d[:3].lower(): i for i, d in enumerate(WEEKDAYS)} | {"tues": 1, "thur": 3, "thurs": 3}
_MONTH_FULL = {m.lower(): i + 1 for i, m in enumerate(MONTHS)}
_WEEKDAY_FULL = {d.lower(): i for i, d in enumerate(WEEKDAYS)}
_MONTH_RE = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|" \
            r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_WEEKDAY_RE = r"mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|" \
              r"sun(?:day)?"
_TOKEN = re.compile(rf"(?P<weekday>\b(?:{_WEEKDAY_RE})\b)|(?P<month>\b(?:{_MONTH_RE})\b)|"
                    r"(?P<ordinal>\b\d{1,2}(?:st|nd|rd|th)\b)|(?P<apos>'\d{2}\b)|(?P<number>\d+)", re.IGNORECASE)
_ORDINAL = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
# Literal text a date may hold between its fields; anything else (a word, a second date) is not one date.
_LITERAL = re.compile(r"[\s,./-]*|\s*(?:the|of)\s*|[\s,./-]*\bthe\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    kind: str  # weekday, day, month, year
    style: str  # weekday: full|abbr; day: 1|2|ordinal; month: 1|2|full|abbr; year: 4|2|apos
    case: str = "title"  # title|upper|lower, for words

    def render(self, d: dt.date) -> str:
        if self.kind == "year":
            return {"4": f"{d.year:04d}", "2": f"{d.year % 100:02d}", "apos": f"'{d.year % 100:02d}"}[self.style]
        if self.kind == "day":
            if self.style == "ordinal":
                return f"{d.day}{_ORDINAL.get(d.day, 'th')}"
            return f"{d.day:02d}" if self.style == "2" else str(d.day)
        if self.kind == "month" and self.style in ("1", "2"):
            return f"{d.month:02d}" if self.style == "2" else str(d.month)
        word = MONTHS[d.month - 1] if self.kind == "month" else WEEKDAYS[d.weekday()]
        if self.style == "abbr":
            word = word[:3]
        return word.upper() if self.case == "upper" else word.lower() if self.case == "lower" else word


@dataclass(frozen=True)
class Template:
    parts: tuple  # str (literal text) or Field

    def fields(self) -> dict[str, Field]:
        return {p.kind: p for p in self.parts if isinstance(p, Field)}

    @property
    def partial(self) -> bool:
        return not {"day", "month", "year"} <= set(self.fields())


@dataclass(frozen=True)
class Parsed:
    template: Template
    year: int | None
    month: int | None
    day: int | None
    weekday: int | None


def _case(word: str) -> str:
    return "upper" if word.isupper() and len(word) > 1 else "lower" if word.islower() else "title"


def _word_style(token: str, full: dict[str, int], abbr: dict[str, int]) -> tuple[int, str]:
    """(value, 'full' or 'abbr') of a month or weekday name."""
    low = token.lower().rstrip(".")
    if low in full:
        return full[low], "full"
    return abbr[next(k for k in (low, low[:4], low[:3]) if k in abbr)], "abbr"


def parse(text: str) -> Parsed | None:
    """The fields and form of one date written as `text`, or None when `text` is not one (partial) date."""
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return None
    parts: list = []
    pos = 0
    nums: list[tuple[int, re.Match]] = []  # (index in parts, token) of plain numbers, assigned below
    values: dict[str, int] = {}
    for m in tokens:
        between = text[pos:m.start()]
        if between and not _LITERAL.fullmatch(between):
            return None
        if between:
            parts.append(between)
        kind = m.lastgroup
        tok = m.group()
        if kind == "weekday":
            if "weekday" in values:
                return None
            values["weekday"], style = _word_style(tok, _WEEKDAY_FULL, _WEEKDAY_ABBR)
            parts.append(Field("weekday", style, _case(tok)))
        elif kind == "month":
            if "month" in values:
                return None
            values["month"], style = _word_style(tok, _MONTH_FULL, _MONTH_ABBR)
            parts.append(Field("month", style, _case(tok)))
        elif kind == "ordinal":
            if "day" in values:
                return None
            values["day"] = int(tok[:-2])
            parts.append(Field("day", "ordinal"))
        elif kind == "apos":
            values["year"] = 2000 + int(tok[1:])
            parts.append(Field("year", "apos"))
        else:
            nums.append((len(parts), m))
            parts.append(None)
        pos = m.end()
    tail = text[pos:]
    if tail and not re.fullmatch(r"[\s,.]*", tail):
        return None
    if tail:
        parts.append(tail)
    if not _assign(parts, nums, values):
        return None
    parsed = Parsed(Template(tuple(parts)), values.get("year"), values.get("month"), values.get("day"),
                    values.get("weekday"))
    return parsed if _possible(parsed) else None


def _assign(parts: list, nums: list[tuple[int, re.Match]], values: dict[str, int]) -> bool:
    """Give each plain number its field: numeric dates read Y-M-D (a 4-digit first) or M/D/Y (US); beside a
    month name a 4-digit number is the year and a short one the day."""
    raw = [m.group() for _, m in nums]
    if not raw:
        return True

    def put(i: int, kind: str) -> bool:
        tok = raw[i]
        if kind in values:
            return False
        if kind == "year":
            if len(tok) not in (2, 4):
                return False
            values["year"] = int(tok) if len(tok) == 4 else 2000 + int(tok)
            parts[nums[i][0]] = Field("year", str(len(tok)))
        else:
            if len(tok) > 2:
                return False
            values[kind] = int(tok)
            # "04" is padded, "4" is not; "11" could be either, settled below.
            parts[nums[i][0]] = Field(kind, "1" if len(tok) == 1 else "2" if tok[0] == "0" else "?")
        return True

    if "month" in values:  # a month name: the numbers are a day and a year
        ok = all(put(i, "year" if len(t) == 4 or ("day" in values and "year" not in values) else "day")
                 for i, t in enumerate(raw))
        dashed = any(isinstance(p, str) and "-" in p for p in parts)
        for i, p in enumerate(parts):  # "March 14" has an unpadded day, "14-Mar-2091" a padded one
            if isinstance(p, Field) and p.style == "?":
                parts[i] = Field(p.kind, "2" if dashed else "1", p.case)
        return ok
    if len(raw) == 3:
        order = ("year", "month", "day") if len(raw[0]) == 4 else ("month", "day", "year")
    elif len(raw) == 2:
        order = ("year", "month") if len(raw[0]) == 4 else ("month", "day")
    elif len(raw) == 1:
        order = ("year",) if len(raw[0]) == 4 else ("day",) if "weekday" in values else ()
    else:
        return False
    if len(order) != len(raw) or not all(put(i, kind) for i, kind in enumerate(order)):
        return False
    _settle_padding(parts)
    return True


def _settle_padding(parts: list) -> None:
    """A two-digit month or day of 10 or more shows no padding: it follows the date's other number ("11/04" is
    padded), else a full numeric date is taken as padded (MM/DD/YYYY, as clinical systems print) and a short one
    not ("11/20")."""
    numeric = [p for p in parts if isinstance(p, Field) and p.kind in ("month", "day")]
    known = {p.style for p in numeric if p.style in ("1", "2")}
    full = any(isinstance(p, Field) and p.kind == "year" and p.style == "4" for p in parts)
    style = known.pop() if len(known) == 1 else "2" if full else "1"
    for i, p in enumerate(parts):
        if isinstance(p, Field) and p.style == "?":
            parts[i] = Field(p.kind, style, p.case)


def _possible(p: Parsed) -> bool:
    if p.month is not None and not 1 <= p.month <= 12:
        return False
    if p.day is not None and not 1 <= p.day <= 31:
        return False
    if p.year is not None and not 1800 <= p.year <= 2300:
        return False
    if None not in (p.year, p.month, p.day):
        try:
            d = dt.date(p.year, p.month, p.day)
        except ValueError:
            return False
        if p.weekday is not None and d.weekday() != p.weekday:
            return True  # a wrong weekday is still a date; the consistency check reports it
    return p.year is not None or p.month is not None or p.day is not None or p.weekday is not None


def resolve(p: Parsed, anchor: dt.date) -> dt.date:
    """The full date `p` most likely means: its own fields, the rest from the candidate nearest `anchor`."""
    year = p.template.fields().get("year")
    if year is not None and year.style != "4":  # '91: the century nearest the anchor
        p = Parsed(p.template, min((c + p.year % 100 for c in (1900, 2000, 2100)), key=lambda y: abs(y - anchor.year)),
                   p.month, p.day, p.weekday)
    if None not in (p.year, p.month, p.day):
        return dt.date(p.year, p.month, p.day)
    candidates: list[dt.date] = []
    years = [p.year] if p.year is not None else [anchor.year - 1, anchor.year, anchor.year + 1]
    for y in years:
        months = [p.month] if p.month is not None else range(1, 13)
        for m in months:
            if p.day is not None:
                days = [p.day] if p.day <= calendar.monthrange(y, m)[1] else []
            elif p.year is not None and p.month is None:
                days = [1] if m == 7 else []  # a year alone: its middle
            else:
                days = [15] if p.weekday is None else range(1, calendar.monthrange(y, m)[1] + 1)
            for d in days:
                day = dt.date(y, m, d)
                if p.weekday is None or day.weekday() == p.weekday:
                    candidates.append(day)
    if not candidates:
        return anchor
    return min(candidates, key=lambda d: (abs((d - anchor).days), d))


def render(t: Template, d: dt.date) -> str:
    return "".join(p if isinstance(p, str) else p.render(d) for p in t.parts)


_WD = r"(?:(?:" + _WEEKDAY_RE + r")\.?,?\s+)?"
_MONTH_WORD = r"(?:" + _MONTH_RE + r")\.?"
# Date expressions in running text: numeric, month-name first, day first, a weekday before any of them.
_FIND = re.compile(
    rf"\b{_WD}(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?"
    rf"|{_MONTH_WORD}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?:\s+|-){_MONTH_WORD}(?:\s+|-)\d{{4}})\b", re.IGNORECASE)


def find(text: str) -> list[tuple[int, int, Parsed]]:
    """The dates written in running text that name a day (start, end, parsed), in text order."""
    out = []
    for m in _FIND.finditer(text):
        parsed = parse(m.group())
        if parsed is not None and parsed.day is not None:
            out.append((m.start(), m.end(), parsed))
    return out


def form_name(t: Template) -> str:
    """A name for the form, for surface-form counts: 'MM/DD/YYYY', 'Month D, YYYY', 'M/D', 'YYYY', ..."""
    names = {("day", "1"): "D", ("day", "2"): "DD", ("day", "ordinal"): "Dth", ("month", "1"): "M",
             ("month", "2"): "MM", ("month", "full"): "Month", ("month", "abbr"): "Mon", ("year", "4"): "YYYY",
             ("year", "2"): "YY", ("year", "apos"): "'YY", ("weekday", "full"): "Weekday",
             ("weekday", "abbr"): "Wkd"}
    return "".join(p if isinstance(p, str) else names[(p.kind, p.style)] for p in t.parts).strip()


def _template(form: str) -> Template:
    parsed = parse(form)
    assert parsed is not None, form
    return parsed.template


# The forms the engines write, with how often a note uses each (realistic: numeric dates dominate, but a note
# also writes months and partial dates); the samples fix each form's field styles.
FORMS: dict[str, tuple[Template, float]] = {
    "MM/DD/YYYY": (_template("03/04/2021"), 0.34),
    "M/D/YYYY": (_template("3/4/2021"), 0.12),
    "M/D/YY": (_template("3/4/21"), 0.08),
    "M/D": (_template("3/4"), 0.12),
    "YYYY-MM-DD": (_template("2021-03-04"), 0.07),
    "Month D, YYYY": (_template("March 4, 2021"), 0.08),
    "Mon D": (_template("Mar 4"), 0.05),
    "D Month YYYY": (_template("4 March 2021"), 0.03),
    "DD-Mon-YYYY": (_template("04-Mar-2021"), 0.04),
    "Month YYYY": (_template("March 2021"), 0.03),
    "the Dth": (_template("the 4th"), 0.02),
    "Month Dth": (_template("March 4th"), 0.02),
    "Mon D, YYYY": (_template("Mar 4, 2021"), 0.04),
    "D Mon": (_template("4 Mar"), 0.02),
    "M-D-YY": (_template("3-4-21"), 0.02),
    "Month": (_template("March"), 0.01),
}
