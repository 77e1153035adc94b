import random
import re

import pytest

from medgen.data.markup import CATEGORIES, CLOSE, CODES, OPEN, MarkupError, markup, strip, validate
from medgen.data.synthetic import records


def as_dicts(spans):
    return [{"start": s.start, "end": s.end, "category": s.category, "text": s.text} for s in spans]


@pytest.mark.parametrize("profile,n,seed", [("compact", 2000, 11), ("full", 1000, 12)])
def test_engine_records_round_trip(profile, n, seed):
    categories = set()
    for r in records(n, seed=seed, profile=profile):
        marked = markup(r.text, r.spans)
        assert validate(marked) == []
        assert strip(marked) == (r.text, as_dicts(r.spans))
        categories.update(s.category for s in r.spans)
    assert categories <= set(CODES)


def test_dict_spans_in_any_order_with_extra_keys():
    r = next(records(1, seed=5, profile="compact"))
    spans = [{**s, "rule": "name-field"} for s in as_dicts(r.spans)][::-1]
    assert strip(markup(r.text, spans)) == (r.text, as_dicts(r.spans))


def test_table_is_one_to_one_and_every_category_round_trips():
    assert len(set(CODES.values())) == len(CODES)
    assert {c: k for k, c in CATEGORIES.items()} == CODES
    for category, code in CODES.items():
        assert re.fullmatch(r"[a-z]+", code)
        text = "seen: x|y:*z here"
        spans = [{"start": 6, "end": 13, "category": category, "text": "x|y:*z "}]
        marked = markup(text, spans)
        assert marked == f"seen: {OPEN}{code} x|y:*z {CLOSE}here"
        assert strip(marked) == (text, spans)


# Heavy in the characters the markup is made of, so that values and text press against the markers.
ALPHABET = "[[[]]]***|||::  \n\tab Z09.-()é"


def random_text(rng: random.Random) -> str:
    out: list[str] = []
    for _ in range(rng.randint(0, 120)):
        c = rng.choice(ALPHABET)
        if out and out[-1] + c in (OPEN, CLOSE):  # the only sequences the format reserves
            continue
        out.append(c)
    return "".join(out)


def random_spans(rng: random.Random, text: str) -> list[dict]:
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 16))))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2]):
        value = text[start:end]
        if "\n" in value or value.endswith("]") or rng.random() < 0.2:
            continue
        spans.append({"start": start, "end": end, "category": rng.choice(list(CODES)), "text": value})
    return spans


def test_random_text_and_spans_round_trip():
    rng = random.Random(20240611)
    pressed = {"[ before": 0, "] after": 0, "value with [ ] * | :": 0}
    for _ in range(5000):
        text = random_text(rng)
        spans = random_spans(rng, text)
        shuffled = rng.sample(spans, len(spans))
        marked = markup(text, shuffled)
        assert validate(marked) == [], (text, spans)
        assert strip(marked) == (text, spans), (text, spans)
        pressed["[ before"] += "[" + OPEN in marked
        pressed["] after"] += CLOSE + "]" in marked
        pressed["value with [ ] * | :"] += any(set(s["text"]) & set("[]*|:") for s in spans)
    assert min(pressed.values()) > 100, pressed


SPAN = {"start": 0, "end": 4, "category": "DATE", "text": "2020"}


@pytest.mark.parametrize("text,spans,offset,message", [
    ("2020 x", [{**SPAN, "category": "NAME:NOBODY"}], 0, "unknown category; known: NAME:PATIENT, NAME:DOCTOR"),
    ("2020 x", [{**SPAN, "text": "2021"}], 0, "differs from the text at 0-4"),
    ("2020 x", [SPAN, {"start": 3, "end": 6, "category": "AGE", "text": "0 x"}], 3, "overlaps the span ending at 4"),
    ("2020 x", [SPAN, SPAN], 0, "overlaps"),
    ("2020 x", [{**SPAN, "end": 0, "text": ""}], 0, "empty or outside the text"),
    ("2020 x", [{**SPAN, "end": 9, "text": "2020 x"}], 0, "outside the text (length 6)"),
    ("20\n0 x", [{**SPAN, "text": "20\n0"}], 0, "may not cross a line"),
    ("202] x", [{**SPAN, "text": "202]"}], 3, "may not end with ']'"),
    ("2020 [[x", [SPAN], 5, "contains '[['"),
    ("2020 x]]", [SPAN], 6, "contains ']]'"),
])
def test_markup_refuses(text, spans, offset, message):
    with pytest.raises(MarkupError, match=re.escape(message)) as e:
        markup(text, spans)
    assert e.value.offset == offset
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("marked,problem", [
    ("on [[date 01/02/2020", "offset 3 (line 1): unclosed markup: no ']]' before the end of the text"),
    ("on [[date 01/02\n/2020]] x", "offset 3 (line 1): unclosed markup: no ']]' before the end of the line"),
    ("on 01/02/2020]] x", "offset 13 (line 1): ']]' without an opening '[['"),
    ("a\nb]] c]] d", "offset 7 (line 2): ']]' without an opening '[['"),
    ("[[patient Ann [[age 5]] Lee]]", "offset 14 (line 1): nested markup: '[[' inside the value opened at offset 0"),
    ("seen by [[nurse Ann Lee]]", "offset 10 (line 1): unknown category code 'nurse'; known: patient, doctor"),
    ("[[Date 01/02/2020]]", "offset 2 (line 1): '[[' must be followed by a lowercase category code and a space"),
    ("[[ date 01/02/2020]]", "must be followed by a lowercase category code"),
    ("[[date:01/02/2020]]", "must be followed by a lowercase category code"),
    ("on [[date ]]", "offset 5 (line 1): empty value for 'date'"),
    ("on [[date]]", "empty value for 'date'"),
    ("x\n[[[[date 01/02/2020]]", "offset 2 (line 2): stray '[[' in a run of '['"),
    ("[[", "unclosed markup: no ']]' before the end of the text"),
])
def test_validate_finds_malformed_markup_and_strip_raises_at_the_first(marked, problem):
    problems = validate(marked)
    assert any(problem in p for p in problems), problems
    with pytest.raises(MarkupError) as e:
        strip(marked)
    assert problems[0].startswith(f"offset {e.value.offset} ")


def test_validate_reports_every_problem_in_text_order():
    problems = validate("a]] [[date x\n[[foo y]] [[age ]] ok [[age 5]]")
    assert [p.split(":")[0] for p in problems] == [
        "offset 1 (line 1)", "offset 4 (line 1)", "offset 15 (line 2)", "offset 25 (line 2)"]


def test_literal_brackets_around_values_are_text():
    marked = "seen [[[date 01/02/2020]]] and [x] [[age 5]]]"
    assert validate(marked) == []
    assert strip(marked) == ("seen [01/02/2020] and [x] 5]", [
        {"start": 6, "end": 16, "category": "DATE", "text": "01/02/2020"},
        {"start": 26, "end": 27, "category": "AGE", "text": "5"}])
