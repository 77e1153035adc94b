import pytest

from medgen import smoke
from medgen.records import records

GOOD = next(iter(records(1, seed=5)))


@pytest.mark.parametrize(
    "mutate, stopped, sex, service, passed, reason",
    [
        (lambda t: t, True, GOOD.sex, GOOD.service, True, None),
        # cut off by the length limit
        (lambda t: t, False, GOOD.sex, GOOD.service, False, "stopped"),
        # wrong sex for the request
        (lambda t: t, True, "Female" if GOOD.sex == "Male" else "Male", GOOD.service, False, "sex_ok"),
        # wrong service
        (lambda t: t, True, GOOD.sex, "NOT-A-SERVICE", False, "service_ok"),
        # a header field missing
        (lambda t: t.replace("Unit No:", "Unit:"), True, GOOD.sex, GOOD.service, False, "missing_fields"),
        # most sections missing
        (lambda t: t.split("Past Medical History:")[0], True, GOOD.sex, GOOD.service, False, "section_fraction"),
    ],
)
def test_score(mutate, stopped, sex, service, passed, reason):
    s = smoke.score(mutate(GOOD.text), sex, service, stopped, 0.6)
    assert s["passed"] is passed
    if reason == "missing_fields":
        assert s["missing_fields"] == ["Unit No"]
    elif reason == "section_fraction":
        assert s["section_fraction"] < 0.6
    elif reason:
        assert not s[reason]


def test_service_with_slash_and_sex_letter():
    text = "Name: A B    Unit No: 1\n \nDate of Birth: 01/01/1990    Sex: F\n \nService: OBSTETRICS/GYNECOLOGY\n"
    s = smoke.score(text, "Female", "OBSTETRICS/GYNECOLOGY", True, 0.0)
    assert s["sex_ok"] and s["service_ok"] and s["got_sex"] == "F"
