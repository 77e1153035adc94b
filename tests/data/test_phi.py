"""PHI: the category table, dates in their forms, and the surrogate pass (fresh, consistent, exact spans)."""

import datetime as dt
import re
from collections import Counter

import pytest

from medgen.data import markup
from medgen.data.phi import dates as D
from medgen.data.phi.categories import BY_NAME, I2B2, category, i2b2_category
from medgen.data.phi.forms import surface_form
from medgen.data.phi.surrogates import MAKERS, Avoid, surrogate
from medgen.data.record_format import header_value, person_name
from medgen.data.synthetic import records
from medgen.evaluate import metrics

# --- the category table -----------------------------------------------------------------------------------


def test_the_table_covers_i2b2_2014_once_each_with_a_maker():
    assert len(I2B2) == 30 and len({c.code for c in BY_NAME.values()}) == len(BY_NAME)
    assert {c.maker for c in BY_NAME.values()} <= set(MAKERS)
    assert set(markup.CODES) == set(BY_NAME)
    assert category("ID:MRN").name == "ID:MEDICALRECORD"  # an older name still reads
    assert i2b2_category("name", "patient").name == "NAME:PATIENT" and i2b2_category("AGE", "AGE").name == "AGE"
    with pytest.raises(KeyError, match="expected one of .*PATIENT"):
        i2b2_category("NAME", "NURSE")


# --- dates --------------------------------------------------------------------------------------------------

# (written, its form, the date it means near 2091-03-10)
DATES = [
    ("03/14/2091", "MM/DD/YYYY", dt.date(2091, 3, 14)),
    ("3/4/2091", "M/D/YYYY", dt.date(2091, 3, 4)),
    ("3/14/91", "M/D/YY", dt.date(2091, 3, 14)),  # a two-digit year: the century nearest the anchor
    ("12/25/89", "M/D/YY", dt.date(2089, 12, 25)),
    ("3/14", "M/D", dt.date(2091, 3, 14)),  # 14 shows no padding: none assumed  # partial: the year of the anchor
    ("2091-03-14", "YYYY-MM-DD", dt.date(2091, 3, 14)),
    ("March 14, 2091", "Month D, YYYY", dt.date(2091, 3, 14)),
    ("Sep. 3, 2090", "Mon. D, YYYY", dt.date(2090, 9, 3)),
    ("14 March 2091", "D Month YYYY", dt.date(2091, 3, 14)),
    ("14-Mar-2091", "DD-Mon-YYYY", dt.date(2091, 3, 14)),
    ("March 2091", "Month YYYY", dt.date(2091, 3, 15)),
    ("June", "Month", dt.date(2091, 6, 15)),
    ("2089", "YYYY", dt.date(2089, 7, 1)),
    ("the 3rd", "the Dth", dt.date(2091, 3, 3)),
    ("the 14th of March", "the Dth of Month", dt.date(2091, 3, 14)),
    ("Thursday 03/15/2091", "Weekday MM/DD/YYYY", dt.date(2091, 3, 15)),
    ("Tuesday", "Weekday", dt.date(2091, 3, 13)),  # the nearest Tuesday
    ("MARCH 14TH", "Month Dth", dt.date(2091, 3, 14)),
]


@pytest.mark.parametrize("text, form, meant", DATES, ids=[d[0] for d in DATES])
def test_a_date_is_read_in_its_form_and_written_back_in_it(text, form, meant):
    parsed = D.parse(text)
    assert parsed is not None and D.form_name(parsed.template) == form
    assert D.resolve(parsed, dt.date(2091, 3, 10)) == meant
    assert D.render(parsed.template, meant).lower() == text.lower()  # the same date, the same text
    later = D.render(parsed.template, meant + dt.timedelta(days=40))
    assert D.form_name(D.parse(later).template) == form  # a shifted date keeps its form


@pytest.mark.parametrize("text", ["hello", "14", "3/14-3/16", "1/2 tablet", "Mar 14 and Apr 2", "13/45/2091"])
def test_what_is_not_one_date_is_not_parsed(text):
    assert D.parse(text) is None


def test_every_engine_form_parses_back():
    for name, (template, _) in D.FORMS.items():
        written = D.render(template, dt.date(2091, 3, 4))  # one-digit month and day: padding shows
        assert D.form_name(D.parse(written).template) == name, name


# --- the surrogate pass -------------------------------------------------------------------------------------

def _spans(r) -> list[dict]:
    return [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in r.spans]


@pytest.fixture(scope="module")
def passed():
    """Engine records of both profiles and what the pass made of them."""
    out = []
    for profile in ("compact", "full"):
        for r in records(40, seed=21, profile=profile):
            text, spans, stats = surrogate(r.text, _spans(r), f"t/{r.patient_id}")
            out.append((r, text, spans, stats))
    return out


def test_spans_are_exact_and_round_trip_through_the_markup(passed):
    for r, text, spans, _ in passed:
        assert len(spans) == len(r.spans) and [s["category"] for s in spans] == [s.category for s in r.spans]
        for s in spans:
            assert text[s["start"]:s["end"]] == s["text"] and s["text"] and "\n" not in s["text"]
        assert markup.strip(markup.markup(text, spans)) == (text, spans)


def test_every_value_is_fresh_and_the_text_between_them_is_kept(passed):
    for r, text, spans, stats in passed:
        # An age, a state, a weekday or a month alone may come out the same by chance, and so may a day without its
        # year (one shift moves every date of the record, and may land one on another's day); nothing else may.
        chance = {"AGE", "LOCATION:STATE"}
        old = {s.text for s in r.spans}
        same = [s["text"] for s in spans if s["category"] not in chance and s["text"] in old and len(s["text"]) > 3
                and not (s["category"] == "DATE" and None in (D.parse(s["text"]).day, D.parse(s["text"]).year))]
        assert not same, (r.patient_id, same)
        assert sum(stats.replaced.values()) == len(spans) and stats.unparsed_dates == 0
        # Outside the spans only a few words may change: a weekday, "a"/"an", a title.
        assert abs(len(re.sub(r"\s+", " ", text)) - len(re.sub(r"\s+", " ", r.text))) < 40 * len(spans)


def test_one_person_one_new_name_in_every_form(passed):
    for r, text, spans, _ in passed:
        first, last = person_name(header_value(r.text, "Name"))
        new_first, new_last = person_name(header_value(text, "Name"))
        if first == last:
            continue  # "Daniel Daniel": a one-word mention names either part
        assert (new_first, new_last) != (first, last)
        for old, new in zip(r.spans, spans):
            if old.category != "NAME:PATIENT":
                continue
            if old.text == last:
                assert new["text"] == new_last
            elif old.text == f"{last}, {first}".upper():
                assert new["text"] == f"{new_last}, {new_first}".upper()
            elif old.text == first:
                assert new["text"] == new_first


def test_dates_shift_together_and_ages_follow_the_date_of_birth(passed):
    for r, text, _, _ in passed:
        days = [metrics.parse_date(header_value(t, f)) for t in (r.text, text)
                for f in ("Admission Date", "Discharge Date", "Date of Birth")]
        (a0, d0, b0), (a1, d1, b1) = days[:3], days[3:]
        assert (d1 - a1) == (d0 - a0) and (a1 - a0) == (b1 - b0) and a1 != a0
        checks = metrics.consistency(text)
        assert checks["age_matches_dob"] is not False and checks["weekday_matches_date"] is not False
        assert checks["followups_after_discharge"] is not False and checks["one_patient_name"] is not False


def test_identifiers_keep_their_format(passed):
    shape = re.compile(r"[A-Za-z]|\d")
    for r, _, spans, _ in passed:
        for old, new in zip(r.spans, spans):
            if category(old.category).maker == "code":
                assert shape.sub(lambda m: "A" if m.group().isalpha() else "9", old.text) == \
                    shape.sub(lambda m: "A" if m.group().isalpha() else "9", new["text"]), (old.text, new["text"])


def test_forms_are_kept_per_category(passed):
    def form(text, s):
        return surface_form(s["category"], s["text"], text[max(0, s["start"] - 12):s["start"]],
                            text[s["end"]:s["end"] + 12])

    for cat in ("DATE", "CONTACT:PHONE", "AGE", "NAME:DOCTOR", "NAME:PATIENT"):
        before, after = Counter(), Counter()
        for r, text, spans, _ in passed:
            for old, new in zip(_spans(r), spans):
                if old["category"] != cat:
                    continue
                pair = [form(r.text, old), form(text, new)]
                # "11/23/2091" shows no padding: M/D/YYYY and MM/DD/YYYY count as one form here; "May" is both a
                # month's name and its abbreviation, so a date in May on either side counts as abbreviated.
                pair = [f.replace("MM", "M").replace("DD", "D") for f in pair]
                if "May" in old["text"] or "May" in new["text"]:
                    pair = [f.replace("Month", "Mon") for f in pair]
                before[pair[0]] += 1
                after[pair[1]] += 1
        assert after == before, cat


# (the record, its PHI values in order with their categories, what the surrogate must read; one edge case each)
EDGES = [
    ("Seen Thursday, 3/15/2091 by Dr. Ruiz.", [("3/15/2091", "DATE"), ("Ruiz", "NAME:DOCTOR")], "weekday follows"),
    ("Admission Date: 03/10/2091\nDate of Birth: 01/02/1999\nAge: 92. She is a 90+ year old woman.",
     [("03/10/2091", "DATE"), ("01/02/1999", "DATE"), ("92", "AGE"), ("90+", "AGE")], "over 89"),
    ("Call (617) 555-0143 x4421 or 617.555.0100.", [("(617) 555-0143 x4421", "CONTACT:PHONE"),
                                                   ("617.555.0100", "CONTACT:PHONE")], "phones"),
    ("Email jane.doe@mercy.org, portal https://my.mercy.org/x1", [("jane.doe@mercy.org", "CONTACT:EMAIL"),
                                                                  ("https://my.mercy.org/x1", "CONTACT:URL")], "contacts"),
]


@pytest.mark.parametrize("text, values, what", EDGES, ids=[e[2] for e in EDGES])
def test_edge_cases(text, values, what):
    spans, pos = [], 0
    for value, cat in values:
        start = text.index(value, pos)
        spans.append({"start": start, "end": start + len(value), "category": cat, "text": value})
        pos = start + len(value)
    new, out, _ = surrogate(text, spans, "edge")
    for s in out:
        assert new[s["start"]:s["end"]] == s["text"]
    if what == "weekday follows":
        day = metrics.parse_date(out[0]["text"])
        assert new.split()[1].rstrip(",") == D.WEEKDAYS[day.weekday()]
    elif what == "over 89":
        assert out[2]["text"] == "90+" and out[3]["text"] == "90+"  # past 89, in the record's own convention
    elif what == "phones":
        assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4} x\d{4}", out[0]["text"])
        assert re.fullmatch(r"\d{3}\.\d{3}\.\d{4}", out[1]["text"])
    else:
        assert re.fullmatch(r"[a-z]+\.[a-z]+@[a-z0-9-]+\.org", out[0]["text"]) and out[1]["text"].startswith("https://")


def test_a_value_to_avoid_is_never_drawn():
    r = next(records(1, seed=3, profile="compact"))
    spans = _spans(r)
    _, once, _ = surrogate(r.text, spans, "same")
    drawn = Avoid.of([("", once)])
    _, again, _ = surrogate(r.text, spans, "same", drawn)
    assert {s["text"] for s in again if s["category"] == "ID:MEDICALRECORD"}.isdisjoint(
        {s["text"] for s in once if s["category"] == "ID:MEDICALRECORD"})
    assert header_value(markup.strip(markup.markup(r.text, r.spans))[0], "Name")


def test_surface_forms_name_what_a_span_looks_like():
    assert surface_form("DATE", "March 4, 2091") == "Month D, YYYY"
    assert surface_form("AGE", "67", after="-year-old man") == "N-year-old"
    assert surface_form("AGE", "67", after="F with") == "NF"
    assert surface_form("NAME:PATIENT", "LOPEZ, MARIA") == "Last, First (upper case)"
    assert surface_form("NAME:DOCTOR", "Lopez", before="Dr. ") == "Title Last"
    assert surface_form("CONTACT:PHONE", "617-555-0143 x12") == "NNN-NNN-NNNN xN…"
