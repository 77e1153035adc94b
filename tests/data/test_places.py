"""The PHI place and name tables: every draw has a form real notes use, and the draws vary."""

import random
import re

import pytest

from medgen.data.phi import names, places

_CITY_NAMES = {c.name for c in places.CITIES}
_STREET = re.compile(
    r"(?:P\.?O\.? Box \d+"
    r"|(?:Route|Rte|Rt\.|Highway) \d+"
    r"|(?:\d+[AB]? )?[\w .]+ (?:St\.?|Street|Ave\.?|Avenue|Rd|Road|Dr|Drive|Ln|Lane|Blvd|Way|Ct|Court|Pl|Place"
    r"|Terrace|Circle|Pkwy|Hwy|Path|Row)(?:,? (?:Apt\.? \d+[A-D]?|#\d+|Unit [\dA-D]+|Fl \d|Suite \d+))?)")

# (what, draw, the form each draw must have, the fewest distinct values in 400 draws)
CASES = [
    ("street", places.street, _STREET, 150),
    ("hospital", places.hospital, re.compile(r"[A-Z][\w.'&-]*(?: [\w.'&-]+)+"), 120),
    ("clinic", places.clinic, re.compile(r"[A-Z][\w.'&-]*(?: [\w.'&-]+)+"), 120),
    ("organization", places.organization, re.compile(r"[A-Z][\w.'&-]*(?: [\w.'&-]+)*"), 120),
    ("unit", places.unit, re.compile(r"[A-Z][\w -]+|\d+ [NSEW]\w*(?: \w+)?"), 25),
    ("room", places.room, re.compile(r"\d+(?:-?[A-F])?"), 100),
    ("zip", lambda rng: places.zip_code(rng, "02115"), re.compile(r"\d{5}(?:-\d{4})?"), 15),
    ("first name", names.first_name, re.compile(r"[A-Z][A-Za-z'-]+(?: [A-Z][A-Za-z'-]+)*"), 150),
    ("last name", names.last_name, re.compile(r"[A-Z][A-Za-z' -]+"), 200),
]


@pytest.mark.parametrize(("what", "draw", "form", "distinct"), CASES, ids=[c[0] for c in CASES])
def test_draws_have_real_forms_and_vary(what, draw, form, distinct):
    rng = random.Random(7)
    values = [draw(rng) for _ in range(400)]
    bad = [v for v in values if not form.fullmatch(v)]
    assert not bad, f"{what}: {bad[:5]}"
    assert all(v.isascii() for v in values)
    assert len(set(values)) >= distinct, f"{what}: only {len(set(values))} distinct"


def test_institutions_are_named_with_common_words_not_invented_towns():
    rng = random.Random(3)
    named = [places.hospital(rng) for _ in range(300)] + [places.organization(rng) for _ in range(300)]
    words = {w for name in named for w in re.findall(r"[A-Z][a-z]+", name)}
    assert not {w for w in words if re.search(r"(?:side|mouth|view|ton|burgh|port)$", w)} - {
        w for phrase in (*places.PLACE_WORDS, *_CITY_NAMES) for w in phrase.split()}


def test_cities_states_and_zips_are_real_combinations():
    for city in places.CITIES:
        assert city.state in places.STATES and re.fullmatch(r"\d{5}", city.zip), city
    rng = random.Random(1)
    for _ in range(200):
        city = places.city(rng)
        written = places.state(rng, city.state)
        assert written in (city.state, places.STATES[city.state], places.STATE_ABBREVIATIONS.get(city.state))


def test_street_forms_include_bare_streets_units_and_boxes():
    rng = random.Random(5)
    streets = [places.street(rng) for _ in range(1000)]
    assert any(re.match(r"P\.?O\.? Box", s) for s in streets)
    assert any(re.match(r"\D", s) and not s.startswith(("P", "R", "H")) for s in streets)  # no house number
    assert any(re.search(r"(?:Apt|Unit|#)", s) for s in streets)
    assert 0.5 < sum(bool(re.match(r"\d", s)) for s in streets) / len(streets) < 0.95
