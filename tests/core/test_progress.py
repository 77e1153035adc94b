"""Progress lines: done of total, this process's rate, time left; a line per interval in a log, and the last."""

import logging

import pytest

from medgen.core.progress import Progress, duration


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (8040, "2h14m")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert duration(seconds) == text


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_log_gets_a_line_per_interval_and_the_last_with_rate_and_time_left(caplog):
    caplog.set_level(logging.INFO, "medgen.progress")
    clock = Clock()
    p = Progress("generate", 200, "records", done=120, bar=False, every_s=30, clock=clock)  # 120 from a journal
    for done in range(121, 201):
        clock.now += 1.0  # one record a second, from here
        p.update(done, f"{done - 5} valid")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 80 // 30 + 1
    assert lines[0] == "generate: 150/200 records (75%) · 145 valid · 1.00 records/s · 50s left"
    assert lines[-1] == "generate: 200/200 records (100%) · 195 valid · 1.00 records/s · took 1m20s"
    assert p.line(compact=True) == "200/200 · 195 valid · took 1m20s"


def test_nothing_done_yet_has_no_rate_or_time_left():
    p = Progress("train", 10, "steps", bar=False, clock=Clock())
    assert p.line() == "train: 0/10 steps (0%)"
