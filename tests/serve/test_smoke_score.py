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


# (smoke.attempts, {prompt index: its tries that end cut, without a stop token}) -> expected tries per prompt,
# whether the test passes, and the passes at the first try
RETRIES = [
    (2, {}, [1, 1, 1], True, 3),
    (2, {0: [0]}, [2, 1, 1], True, 2),
    (2, {0: [0], 2: [0]}, [2, 1, 2], True, 1),
    (2, {1: [0, 1]}, [1, 2, 1], False, 2),
    (1, {0: [0]}, [1, 1, 1], False, 2),
    (3, {2: [0, 1]}, [1, 1, 3], True, 2),
]


@pytest.mark.parametrize("attempts,cut,tries,passed,first", RETRIES)
def test_a_prompt_whose_record_fails_is_tried_again_with_a_new_seed(attempts, cut, tries, passed, first, tmp_path):
    """As generate retries an invalid record, a smoke prompt gets smoke.attempts tries, each with the seed its try
    number gives; it passes when one of them does, and the first tries' passes are reported beside."""
    from medgen.cli import smoke_line
    from medgen.core.config import load_config
    from medgen.core.errors import SmokeTestFailed
    from medgen.serve.backends import attempt_seed
    from medgen.serve.stage import smoke_test

    from fakes import fake

    cfg = load_config(None, [f"run_dir={tmp_path}", f"smoke.attempts={attempts}"])
    server = fake(cut_seeds=frozenset(attempt_seed(cfg.smoke.seed + i, k) for i, ks in cut.items() for k in ks))
    result = smoke_test(cfg, server, ())
    rows = result["results"]
    assert [r["tries"] for r in rows] == tries and result["tries"] == sum(tries)
    assert sorted(server.calls) == sorted(attempt_seed(cfg.smoke.seed + i, k) for i, n in enumerate(tries)
                                          for k in range(n))
    assert result["passed"] is passed and result["n_passed_first_try"] == first
    for i, r in enumerate(rows):
        assert r["failed_tries"] == [["no stop token"]] * (tries[i] - r["passed"]), r
    n_passed = sum(r["passed"] for r in rows)
    assert smoke_line(result) == f"smoke test {n_passed}/3 passed" + (f" ({first} at the first try)"
                                                                       if first < n_passed else "")
    if not passed:
        failing = next(r for r in rows if not r["passed"])
        said = str(SmokeTestFailed.from_scores(rows))
        again = f" (the last of {attempts} tries)" if attempts > 1 else ""
        assert f"{failing['sex']}/{failing['service']}: no stop token{again}" in said, said


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
