"""The Slurm worker's polling loop: flaky Slurm calls never lose a running job; scancel once; UNKNOWN is bounded."""

import logging

import anyio
import pytest

from medgen.cluster import slurm
from medgen.workers.slurm import wait_for_job

RUNNING, DONE, UNKNOWN = (slurm.JobState(s, "", "test") for s in ("RUNNING", "COMPLETED", "UNKNOWN"))
TIMEOUT = slurm.SlurmError("`sacct` did not answer in 60 s")


def _wait(answers, cancel_after=None, unknown_timeout_s=30.0):
    calls = {"poll": 0, "cancel": 0}
    answers = list(answers)

    async def poll():
        calls["poll"] += 1
        a = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(a, Exception):
            raise a
        return a

    async def cancel_requested():
        return cancel_after is not None and calls["poll"] > cancel_after

    async def cancel():
        calls["cancel"] += 1

    log = logging.getLogger("test-worker")
    state = anyio.run(lambda: wait_for_job("42", poll, cancel_requested, cancel, log, 0.001, unknown_timeout_s))
    return state, calls


@pytest.mark.parametrize("answers,cancel_after,unknown_timeout_s,final,cancels", [
    ([RUNNING, DONE], None, 30.0, "COMPLETED", 0),
    ([TIMEOUT, TIMEOUT, OSError("fork failed"), RUNNING, DONE], None, 30.0, "COMPLETED", 0),  # Slurm busy
    ([RUNNING] * 6 + [DONE], 1, 30.0, "COMPLETED", 1),  # cancelled: scancel once, however long it takes
    ([UNKNOWN], None, 0.05, "UNKNOWN", 0),  # never known: polling stops
    ([UNKNOWN, UNKNOWN, RUNNING, DONE], None, 30.0, "COMPLETED", 0),  # not yet in accounting: fine
])
def test_polling(answers, cancel_after, unknown_timeout_s, final, cancels, caplog):
    with caplog.at_level(logging.INFO, logger="test-worker"):
        state, calls = _wait(answers, cancel_after, unknown_timeout_s)
    assert state.state == final and calls["cancel"] == cancels
    assert caplog.text.count("asking Slurm for its state failed") <= 1


# What each sbatch attempt does: "ok" answers, "lost" queues the job but its answer times out, "timeout"
# queues nothing and times out.
@pytest.mark.parametrize("attempts, submitted, outcome", [
    (["ok"], 1, "100"),
    (["lost"], 1, "100"),  # found by its comment: never submitted twice
    (["timeout", "ok"], 1, "100"),
    (["timeout", "lost"], 1, "100"),
    (["timeout", "timeout", "ok"], 1, "100"),
    (["timeout", "timeout", "timeout"], 0, slurm.SlurmTimeout),
])
def test_sbatch_that_times_out_is_retried_without_a_double_submit(monkeypatch, tmp_path, attempts, submitted,
                                                                   outcome):
    import subprocess

    queue, plan, sleeps = [], list(attempts), []

    def fake_run(cmd, check=True, umask=-1):
        if cmd[0] == "squeue":
            return subprocess.CompletedProcess(cmd, 0, "".join(f"{j}|{c}\n" for j, c in queue), "")
        comment = next(a for a in cmd if a.startswith("--comment=")).split("=", 1)[1]
        what = plan.pop(0)
        if what in ("ok", "lost"):
            queue.append(("100", comment))
        if what == "ok":
            return subprocess.CompletedProcess(cmd, 0, "100\n", "")
        raise slurm.SlurmTimeout("`sbatch` did not answer in 60 s")

    monkeypatch.setattr(slurm, "_run", fake_run)
    monkeypatch.setattr(slurm.time, "sleep", sleeps.append)
    spec = slurm.JobSpec(command="true", output=str(tmp_path / "%j.out"))
    if isinstance(outcome, str):
        assert slurm.submit(spec) == outcome
    else:
        with pytest.raises(outcome, match="tried 3 times"):
            slurm.submit(spec)
    assert len(queue) == submitted and not plan
    assert sleeps == list(slurm.SUBMIT_BACKOFF_S[:len(attempts) - 1])
