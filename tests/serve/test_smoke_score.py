"""Smoke scoring: a generated record passes, and each way of failing fails that one check and no other."""

import pytest

from medgen.data.record_format import STYLES, sections
from medgen.data.synthetic import records
from medgen.serve import smoke

GOOD = next(iter(records(1, seed=5, layout="mimic")))
OTHER_SEX = "Female" if GOOD.sex == "Male" else "Male"
MIN_SECTION_FRACTION = 0.6

# check name -> whether a score passes it
CHECKS = {
    "stopped": lambda s: s["stopped"],
    "sex_ok": lambda s: s["sex_ok"],
    "service_ok": lambda s: s["service_ok"],
    "missing_fields": lambda s: not s["missing_fields"],
    "section_fraction": lambda s: s["section_fraction"] >= MIN_SECTION_FRACTION,
}


@pytest.mark.parametrize(
    "mutate, stopped, sex, service, failing",
    [
        pytest.param(lambda t: t, True, GOOD.sex, GOOD.service, None, id="good-record-passes"),
        pytest.param(lambda t: t, False, GOOD.sex, GOOD.service, "stopped", id="cut-off-by-length-fails"),
        pytest.param(lambda t: t, True, OTHER_SEX, GOOD.service, "sex_ok", id="wrong-sex-fails"),
        pytest.param(lambda t: t, True, GOOD.sex, "NOT-A-SERVICE", "service_ok", id="wrong-service-fails"),
        pytest.param(lambda t: t.replace("Unit No:", "Unit:"), True, GOOD.sex, GOOD.service, "missing_fields",
                     id="missing-header-field-fails"),
        pytest.param(lambda t: t.split("Past Medical History:")[0], True, GOOD.sex, GOOD.service,
                     "section_fraction", id="most-sections-missing-fails"),
    ],
)
def test_score(mutate, stopped, sex, service, failing):
    s = smoke.score(mutate(GOOD.text), sex, service, stopped, MIN_SECTION_FRACTION)
    assert {name for name, ok in CHECKS.items() if not ok(s)} == ({failing} if failing else set())
    assert s["passed"] is (failing is None)
    if failing == "missing_fields":
        assert s["missing_fields"] == ["Unit No"]


def test_service_with_slash_and_sex_letter():
    text = "Name: A B    Unit No: 1\n \nDate of Birth: 01/01/1990    Sex: F\n \nService: OBSTETRICS/GYNECOLOGY\n"
    s = smoke.score(text, "Female", "OBSTETRICS/GYNECOLOGY", True, 0.0)
    assert s["sex_ok"] and s["service_ok"]
    assert (s["got_sex"], s["got_service"]) == ("F", "OBSTETRICS/GYNECOLOGY")


def test_an_interrupt_during_the_smoke_test_does_not_wait_for_requests_in_flight(tmp_path):
    """Ctrl-C (or a job's SIGTERM) reaches the caller, which stops the server, while another prompt's record is
    still being written: waiting for it would hold the interrupt until that record reached max_tokens."""
    import threading

    from medgen.core.config import load_config
    from medgen.serve.stage import smoke_test

    from fakes import fake

    release, finished = threading.Event(), []

    def chat(messages, **kw):
        if not server.calls:
            server.calls.append(0)
            raise KeyboardInterrupt
        release.wait(10)  # a long record, until the server is stopped
        finished.append(True)
        raise ConnectionResetError

    cfg = load_config(None, [f"run_dir={tmp_path}"])
    server = fake()
    server.chat = chat
    try:
        with pytest.raises(KeyboardInterrupt):
            smoke_test(cfg, server, ())
        assert not finished, "the smoke test waited for a request in flight"
    finally:
        release.set()


@pytest.mark.parametrize("layout", [s.name for s in STYLES])
@pytest.mark.parametrize("profile", ["compact", "full"])
def test_every_layout_passes_and_fails_as_the_mimic_one_does(layout, profile):
    """A record in any of the layouts is valid; the same record cut after its third section is not."""
    for r in records(5, seed=9, profile=profile, layout=layout):
        s = smoke.score(r.text, r.sex, r.service, True, MIN_SECTION_FRACTION)
        assert s["passed"] and s["section_fraction"] == 1.0, (layout, s["reasons"])
        body = sections(r.text)
        third = list(body)[2]
        cut = r.text[:r.text.index(body[third]) + len(body[third])]
        assert smoke.score(cut, r.sex, r.service, True, MIN_SECTION_FRACTION)["reasons"] == ["too few sections"]
