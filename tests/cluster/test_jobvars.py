"""Slurm job variables cannot become shell lines; job logs are owner-only and quoted without record text.

The script builder and the log filter are tested as plain functions; then hostile job variables go through
a real `slurm` worker to the real one-node cluster (started by .ci/run), next to control jobs that prove
each payload would run if it reached a script unchecked. Last, deployments/slurm/local-cluster.sh beside
config and daemons it did not create.
"""

import asyncio
import os
import shlex
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from medgen.cluster import slurm
from medgen.core.io import OMITTED_MARKER, quotable_lines
from medgen.workers.slurm import PRIVILEGED, refused_overrides

from conftest import cluster_up, jobs_in_queue

ROOT = Path(__file__).resolve().parents[2]
POOL = "slurm-jobvars-test"

# (job variable, hostile value, what the error must say is wrong). "{marker}" becomes a file that exists
# only if the value ran as a shell command; "{tmp}" the test's own folder.
HOSTILE = [
    # A line break ends the #SBATCH line: the rest runs as a shell command, and sbatch stops reading
    # directives there, silently dropping the later limits.
    ("partition", "cpu\ntouch {marker}", "line break"),
    ("qos", "normal\ntouch {marker}", "line break"),
    ("account", "lab\ntouch {marker}", "line break"),
    ("constraint", "a5000\ntouch {marker}", "line break"),
    ("gres", "gpu:1\ntouch {marker}", "line break"),
    ("time_limit", "00:05:00\ntouch {marker}", "line break"),
    ("mem", "100M\ntouch {marker}", "line break"),
    ("output", "{tmp}/%j.out\ntouch {marker}", "line break"),
    ("working_dir", "{tmp}\ntouch {marker}", "line break"),
    ("partition", "cpu\r", "line break"),
    # Whitespace adds sbatch options; '#' cuts the directive short.
    ("partition", "cpu --chdir=/", "whitespace"),
    ("mem", "1G --wrap=touch", "whitespace"),
    ("constraint", "a5000#x", "'#'"),
    ("account", "lab;touch", "not a form sbatch accepts"),
    # Forms sbatch does not take.
    ("time_limit", "4h", "not a form sbatch accepts"),
    ("mem", "lots", "not a form sbatch accepts"),
    ("gres", "gpu:1,", "not a form sbatch accepts"),
    ("qos", "q" * 100_000, "longer than"),
    # A fixed log name would overwrite an existing file (~/.bashrc, say) with the job's output.
    ("output", "{tmp}/fixed.out", "names a fixed file"),
    ("output", "{tmp}/%j/x.out", "% pattern in its directory"),
    ("cpus_per_task", 0, "whole number >= 1"),
    ("signal", "B:USR1@300\ntouch {marker}", "line break"),
    ("signal", "B:USR1@300 --wrap=touch", "whitespace"),
    ("signal", "B:KILL@300", "not a form sbatch accepts"),  # cannot be caught: no checkpoint
    ("signal", "USR1@soon", "not a form sbatch accepts"),
    ("requeue", "yes", "expected true or false"),
    # The old script exported each name unquoted: `export X;touch M;Y='1'`.
    ("env", {"X;touch {marker};Y": "1"}, "not a variable name"),
    ("env", {"1X": "1"}, "not a variable name"),
]


def _fill(value, marker: Path, tmp: Path):
    if isinstance(value, str):
        return value.format(marker=marker, tmp=tmp)
    if isinstance(value, dict):
        return {_fill(k, marker, tmp): _fill(v, marker, tmp) for k, v in value.items()}
    return value


def _case_id(case) -> str:
    field, value, _ = case
    return f"{field}-{str(value)[:24].encode('unicode_escape').decode()}"


@pytest.mark.parametrize("case", HOSTILE, ids=_case_id)
def test_hostile_value_is_refused_naming_field_problem_and_form(case, tmp_path):
    field, value, problem = case
    with pytest.raises(slurm.JobSpecError) as e:
        slurm.JobSpec(command="true", **{field: _fill(value, tmp_path / "pwned", tmp_path)})
    message = str(e.value)
    assert message.count("\n") == 0 and len(message) < 700, message  # one line, the value shown only in part
    assert field in message and problem in message and "expected" in message, message


@pytest.mark.parametrize("field, value", [
    ("partition", "gpu,gpu-long"), ("qos", "normal"), ("account", "lab-smith"),
    ("constraint", "[geforce3090|a5000]&fast*2"), ("gres", "gpu:a100:2,shard:4"),
    ("time_limit", "90"), ("time_limit", "04:00:00"), ("time_limit", "1-00:00:00"), ("time_limit", "2-12"),
    ("time_limit", "UNLIMITED"), ("mem", "32G"), ("mem", "500M"), ("mem", "2048"),
    ("output", "runs/slurm-logs/%j.out"), ("output", "/shared/logs/train-%x-%j.log"),
    ("working_dir", "/shared/medgen"), ("cpus_per_task", 4), ("signal", "B:USR1@300"), ("signal", "USR2"),
    ("signal", "B:SIGTERM@60"), ("signal", "10@120"), ("env", {"CUDA_HOME": "/opt/cuda", "_X1": ""}),
])
def test_what_sbatch_accepts_becomes_one_directive(field, value):
    spec = slurm.JobSpec(command="true", **{field: value})
    lines = spec.script().splitlines()
    head = lines[:lines.index("umask 077")]
    assert head[0] == "#!/bin/bash" and all(line.startswith("#SBATCH --") for line in head[1:])
    if field != "env":
        option = slurm.FIELD_FORMS[field][0] if field in slurm.FIELD_FORMS else "cpus-per-task"
        assert f"#SBATCH --{option}={value}" in head


@pytest.mark.parametrize("requeue", [True, False])
def test_requeue_is_one_directive_and_tells_the_job(requeue):
    script = slurm.JobSpec(command="true", requeue=requeue).script()
    assert ("#SBATCH --requeue" in script) is requeue
    assert (f"export {slurm.REQUEUE_ENV}=1" in script) is requeue


@pytest.mark.parametrize("env, restarts_allowed, called", [
    ({slurm.REQUEUE_ENV: "1", "SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": "1"}, 3, True),
    ({slurm.REQUEUE_ENV: "1", "SLURM_JOB_ID": "42"}, 1, True),
    ({slurm.REQUEUE_ENV: "1", "SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": "3"}, 3, False),  # used up
    ({"SLURM_JOB_ID": "42"}, 3, False),  # submitted without --requeue
    ({slurm.REQUEUE_ENV: "1"}, 3, False),  # not in a Slurm job
])
def test_a_job_requeues_itself_only_when_submitted_so_and_below_the_limit(monkeypatch, env, restarts_allowed,
                                                                          called):
    for k in (slurm.REQUEUE_ENV, "SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    calls = []
    monkeypatch.setattr(slurm, "_run", lambda cmd, **kw: calls.append(cmd))
    assert slurm.requeue_self(restarts_allowed) is called
    assert calls == ([["scontrol", "requeue", "42"]] if called else [])


def test_env_values_reach_the_job_verbatim(tmp_path):
    """Values are quoted, so a value is never shell text: run the script's export lines and read them back."""
    values = {"A": "x'; touch pwned; '", "B": "line1\nline2 $(touch pwned) `touch pwned`", "C": "", "D": "\\#!"}
    lines = slurm.JobSpec(command="true", env=values).script().splitlines()
    exports = lines[lines.index("set -eo pipefail") + 1:lines.index(f'echo "{slurm.SETUP_BANNER}"')]
    read_back = "; ".join(f'printf "%s\\0" "${k}"' for k in sorted(values))
    out = subprocess.run(["bash", "-c", "\n".join(exports) + "\n" + read_back], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == [values[k] for k in sorted(values)]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("flow_run_name, job_name", [
    ("train-r8-seq640", "train-r8-seq640"),
    ("x\ntouch /tmp/pwned", "x-touch-tmp-pwned"),
    ("a b --partition=gpu", "a-b---partition-gpu"),
    ("#SBATCH --mem=1T", "SBATCH---mem-1T"),
    ("$(reboot)", "reboot"),
    ("ünïcødé", "n-c-d"),
    ("\n\n", "medgen"),
    ("x" * 500, "x" * 64),
])
def test_flow_run_name_becomes_a_safe_job_name(flow_run_name, job_name):
    assert slurm.JobSpec(command="true", name=flow_run_name).name == job_name


@pytest.mark.parametrize("job_id, ok", [
    ("12345", True), ("12345; touch /tmp/pwned", False), ("12 34", False), ("", False), ("-1", False),
    ("١٢٣", False),  # digits to str.isdigit, not to scancel
    ("123\n", False), (12345, False), (None, False),
])
def test_job_ids_are_digits_only(job_id, ok):
    if ok:
        assert slurm.checked_job_id(job_id) == job_id
    else:
        with pytest.raises(slurm.SlurmError, match="expected a numeric Slurm job id"):
            slurm.checked_job_id(job_id)
        with pytest.raises(slurm.SlurmError):
            slurm.cancel(job_id)
        with pytest.raises(slurm.SlurmError):
            slurm.job_state(job_id)


@pytest.mark.parametrize("overrides, refused", [
    ({"setup_commands": ["touch /tmp/pwned"]}, ["setup_commands"]),
    ({"command": "touch /tmp/pwned"}, ["command"]),
    ({"env": {"PYTHONPATH": "/tmp/evil"}}, ["env"]),
    ({"env.LD_PRELOAD": "/tmp/evil.so"}, ["env"]),  # Prefect's dotted form
    ({"working_dir": "/tmp/evil"}, ["working_dir"]),
    ({"mem": "1G", "time_limit": "00:10:00", "name": "x"}, []),
    ({}, []),
])
def test_flow_run_may_not_override_privileged_job_variables(overrides, refused):
    problems = refused_overrides(overrides)
    assert [p.split(":")[0] for p in problems] == refused
    assert all("base job template" in p for p in problems)
    assert set(refused) <= set(PRIVILEGED)


def test_setup_commands_are_documented_as_privileged():
    from medgen.workers.slurm import SlurmWorker

    props = SlurmWorker.get_default_base_job_template()["variables"]["properties"]
    for key in PRIVILEGED:
        assert "Privileged (pool admins)" in props[key]["description"], key
    assert "pool admin" in (ROOT / "prefect.yaml").read_text()


# --- log tails ---------------------------------------------------------------------------------------------

NEEDLE = "Name: Jonathan Q. Needleman    Unit No: 7654321"
TRACEBACK = ['Traceback (most recent call last):', '  File "/x/train.py", line 3, in <module>',
             '    main()', '    ^^^^^^']


@pytest.mark.parametrize("lines, kept, omitted", [
    # record text alone: counted, never quoted
    ([NEEDLE, "Discharge Diagnosis: pneumonia"], [], [2]),
    # medgen's own log lines, in Prefect's and logging's formats, and the job script's banner
    (["12:00:00.000 | WARNING | medgen.prepare - 12% of examples truncated", NEEDLE,
      "INFO:medgen.train:rung r=4", "medgen: Slurm job 12 on node1"],
     ["12:00:00.000 | WARNING | medgen.prepare - 12% of examples truncated", "INFO:medgen.train:rung r=4",
      "medgen: Slurm job 12 on node1"], [1]),
    # Prefect's own run-logger lines may embed an exception's message: not quoted
    (["12:00:01.000 | ERROR   | Flow run 'x' - Finished in state Failed('ValueError: " + NEEDLE + "')"], [], [1]),
    # a foreign exception keeps its type; its message may echo the input
    (TRACEBACK + [f"ValueError: invalid literal for int(): '{NEEDLE}'"],
     TRACEBACK + ["ValueError: [message omitted: may contain record text]"], []),
    # medgen's exceptions never carry record text: type, message and its indented problem lines are quoted
    (TRACEBACK + ["medgen.errors.DataError: 2 problems in input data:", "  - data.jsonl:3: missing field",
                  NEEDLE],
     TRACEBACK + ["medgen.errors.DataError: 2 problems in input data:", "  - data.jsonl:3: missing field"], [1]),
    # chained tracebacks; a bare word after a frame is not an exception line
    (TRACEBACK + ["KeyboardInterrupt", "", "During handling of the above exception, another exception occurred:",
                  ""] + TRACEBACK + ["Needleman"],
     TRACEBACK + ["KeyboardInterrupt", "During handling of the above exception, another exception occurred:"]
     + TRACEBACK, [1]),
    # an indented line that is not a frame's source ends the traceback
    (TRACEBACK + [f"    {NEEDLE}", f"      {NEEDLE}"], TRACEBACK, [2]),
])
def test_log_lines_are_quoted_only_where_they_cannot_be_record_text(lines, kept, omitted, tmp_path):
    out = quotable_lines(lines, tmp_path / "1.out")
    assert [line for line in out if not line.startswith("[")] == kept
    assert [line for line in out if line.startswith("[")] == [
        OMITTED_MARKER.format(n=n, path=tmp_path / "1.out") for n in omitted]
    assert not any("Needleman" in line for line in out)


def test_job_log_tail_quotes_setup_output_and_slurm_but_not_the_flows_text(tmp_path):
    log = tmp_path / "1.out"
    log.write_text("\n".join([
        slurm.SETUP_BANNER, "module: cuda/12.1 not found",
        f"{slurm.JOB_BANNER} 12 on node1", NEEDLE, "medgen: Slurm job 12 on node1",  # a late banner is just text
        slurm.SETUP_BANNER, NEEDLE,
        "slurmstepd: error: *** JOB 12 ON node1 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***", ""]))
    tail = slurm.job_log_tail(log)
    assert "module: cuda/12.1 not found" in tail and "DUE TO TIME LIMIT" in tail
    assert "Needleman" not in tail and "[1 line(s) omitted" in tail
    # A log not from the script (no banner first) has no setup section: everything is judged line by line.
    log.write_text("\n".join([NEEDLE, slurm.SETUP_BANNER, NEEDLE, f"{slurm.JOB_BANNER} 12 on node1"]))
    assert "Needleman" not in slurm.job_log_tail(log)
    assert slurm.job_log_tail(tmp_path / "missing.out") == f"(no log at {tmp_path / 'missing.out'})"


def test_memory_kill_is_still_read_from_the_whole_tail(tmp_path):
    state = slurm.JobState("FAILED", "0:9", "sacct")
    assert slurm.effective_state(state, f"{NEEDLE}\nslurmstepd: error: Exceeded job memory limit") == "OUT_OF_MEMORY"
    assert slurm.effective_state(state, NEEDLE) == "FAILED"


# --- against the real cluster, through a real worker ----------------------------------------------------


def _job_variables(tmp_path: Path, **extra) -> dict:
    return {"output": str(tmp_path / "%j.out"), "cpus_per_task": 1, "mem": "1G", "time_limit": "00:05:00",
            "poll_interval_s": 1, **extra}


async def _deploy(name: str, job_variables: dict) -> str:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("slurm-ok")
        await client.create_deployment(
            flow_id=flow_id, name=name, work_pool_name=POOL, entrypoint="tests/slurm_flows.py:ok", path=str(ROOT),
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
            job_variables=job_variables)
    return f"slurm-ok/{name}"


async def _wait_final(ids, timeout: float = 240):
    from prefect.client.orchestration import get_client

    deadline = time.time() + timeout
    async with get_client() as client:
        while True:
            runs = [await client.read_flow_run(i) for i in ids]
            if all(r.state is not None and r.state.is_final() for r in runs) or time.time() > deadline:
                return runs
            await asyncio.sleep(1)


async def _logs_of(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def _unguarded_script(field: str, value, out: Path) -> str:
    """The script the worker wrote before job variables were checked, with the hostile value in its field."""
    if field == "env":
        line = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in value.items())
    else:
        line = f"#SBATCH --{slurm.FIELD_FORMS[field][0]}={value}"
    return f"#!/bin/bash\n#SBATCH --output={out}/control-%j.out\n{line}\ntrue\n"


# The pool's schema already refuses a requeue that is not a boolean when the deployment is created.
ON_CLUSTER = [case for case in HOSTILE if case[0] != "requeue"]


def test_hostile_job_variables_never_run_on_the_cluster(worker, tmp_path):
    """Each payload that ran as a control job (written as the old worker wrote it) is refused by the worker:
    the run crashes naming the field before anything reaches sbatch, and its marker file never appears."""
    from prefect.deployments import run_deployment

    tag = uuid.uuid4().hex[:8]
    # Controls: each payload that would run a command, written into a script the old way, runs it. (The node
    # has no features, so sbatch refuses any --constraint before its payload could run.)
    control_markers = []
    for i, (field, template, _) in enumerate(ON_CLUSTER):
        if "{marker}" in str(template) and field != "constraint":
            control_marker = Path(f"/tmp/pwned-{tag}-{i}-control")
            script = tmp_path / f"control-{i}.sh"
            script.write_text(_unguarded_script(field, _fill(template, control_marker, tmp_path), tmp_path))
            subprocess.run(["sbatch", "--parsable", str(script)], check=True, capture_output=True, cwd=tmp_path)
            control_markers.append(control_marker)

    runs = {}
    for i, (field, template, problem) in enumerate(ON_CLUSTER):
        marker = Path(f"/tmp/pwned-{tag}-{i}")
        jv = _job_variables(tmp_path, **{field: _fill(template, marker, tmp_path)})
        runs[run_deployment(_run_async(_deploy(f"hostile-{tag}-{i}", jv)), timeout=0).id] = (field, problem, marker)
    # A flow run may not bring its own setup lines, command, environment or directory.
    ok = _run_async(_deploy(f"ok-{tag}", _job_variables(tmp_path)))
    for i, (key, value) in enumerate([("setup_commands", ["touch {marker}"]), ("command", "touch {marker}"),
                                      ("env", {"BASH_ENV": "{marker}"}), ("working_dir", "/tmp")]):
        marker = Path(f"/tmp/pwned-{tag}-run{i}")
        runs[run_deployment(ok, timeout=0, job_variables={key: _fill(value, marker, tmp_path)}).id] = (
            key, "may not set it", marker)

    finished = _run_async(_wait_final(list(runs)))
    deadline = time.time() + 60
    while not all(m.exists() for m in control_markers) and time.time() < deadline:
        time.sleep(1)
    assert all(m.exists() for m in control_markers), "a control payload did not run: the test proves nothing"
    assert len(control_markers) >= 9
    for fr in finished:
        field, problem, marker = runs[fr.id]
        assert fr.state.is_crashed(), (field, fr.state)
        assert "Failed to submit flow run to infrastructure" in fr.state.message, fr.state.message
        assert field in fr.state.message and problem in fr.state.message, fr.state.message
        assert fr.infrastructure_pid is None, (field, fr.infrastructure_pid)  # no Slurm job was submitted
        assert not marker.exists(), f"{field}: the hostile value ran"
    for m in control_markers:
        m.unlink()


def _run_async(coro):
    return asyncio.run(coro)


def test_job_log_is_owner_only_in_a_directory_the_worker_created(worker, tmp_path):
    """The log directory does not exist before; the worker creates it 0700, and sbatch's umask makes the log
    0600. The flow-run name, free text, becomes a safe job name rather than a shell line."""
    from prefect.deployments import run_deployment

    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex[:8]}")
    logs = tmp_path / "new" / "slurm-logs"
    name = _run_async(_deploy(f"owner-only-{marker.name}", _job_variables(tmp_path, output=str(logs / "%j.out"))))
    fr = run_deployment(name, timeout=240, poll_interval=1, flow_run_name=f"x\ntouch {marker}")
    assert fr.state.is_completed(), fr.state
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    log = logs / f"{fr.infrastructure_pid}.out"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and f"Slurm job {fr.infrastructure_pid}" in log.read_text()
    job = subprocess.run(["scontrol", "show", "job", fr.infrastructure_pid], capture_output=True, text=True).stdout
    assert f"JobName=x-touch-tmp-pwned-{marker.name.split('-')[1]}" in job, job
    assert not marker.exists()


def test_failed_job_quotes_no_record_text_in_state_or_logs(worker, tmp_path):
    """A job whose output holds record-like text fails: the state message and the run's logs carry the exit
    code, Slurm's and medgen's lines and a count of the rest, never the text; the log keeps it, owner-only."""
    from prefect.deployments import run_deployment

    needle = f"Name: Needleman-{uuid.uuid4().hex[:8]}    Unit No: 7654321"
    command = f"bash -c {shlex.quote(f'echo {shlex.quote(needle)}; echo medgen: about to fail >&2; exit 3')}"
    name = _run_async(_deploy(f"leaky-{uuid.uuid4().hex[:8]}", _job_variables(tmp_path, command=command)))
    fr = run_deployment(name, timeout=240, poll_interval=1)
    assert fr.state.is_crashed(), fr.state
    message = fr.state.message
    assert "ended FAILED" in message and "exit code 3:0" in message and "medgen: about to fail" in message
    assert "[1 line(s) omitted: may contain record text" in message, message
    assert "Needleman" not in message and "Needleman" not in _run_async(_logs_of(fr.id))
    log = tmp_path / f"{fr.infrastructure_pid}.out"
    assert needle in log.read_text() and stat.S_IMODE(log.stat().st_mode) == 0o600


# --- deployments/slurm/local-cluster.sh, beside what already runs (no cluster needed) -----------------------

SCRIPT = ROOT / "deployments" / "slurm" / "local-cluster.sh"


def _script(command: str, tmp_path: Path) -> subprocess.CompletedProcess:
    # The overrides keep the script away from /etc/slurm and from the pid records of the cluster it started.
    env = {**os.environ, "MEDGEN_SLURM_CONF_DIR": str(tmp_path / "etc"), "MEDGEN_SLURM_RUN_DIR": str(tmp_path / "run")}
    return subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=120)


def test_cluster_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_cluster_script_backs_up_config_it_did_not_write(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "slurm.conf").write_text("ClusterName=production\n")
    proc = _script("configure", tmp_path)
    assert proc.returncode == 0, proc.stderr
    backups = list(etc.glob("slurm.conf.medgen-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == "ClusterName=production\n"
    assert "backed up" in proc.stderr and "ClusterName=medgen" in (etc / "slurm.conf").read_text()
    assert stat.S_IMODE((etc / "slurmdbd.conf").stat().st_mode) == 0o600  # it holds the database password
    # Its own files it replaces without a copy: a second start leaves the one backup.
    assert _script("configure", tmp_path).returncode == 0
    assert sorted(etc.glob("*.medgen-backup-*")) == backups


def test_cluster_script_stops_only_the_daemons_it_started(tmp_path):
    """Fake daemons (copies of sleep under the daemons' names): the one whose pid the script recorded is
    stopped; one it did not start, and a recorded pid now reused by another program, keep running."""
    bin_dir, run = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    run.mkdir()
    procs = {}
    for name in ("slurmd", "slurmctld", "sleep"):
        shutil.copy(shutil.which("sleep"), bin_dir / name)
        procs[name] = subprocess.Popen([str(bin_dir / name), "300"])
    try:
        (run / "slurmd.pid").write_text(f"{procs['slurmd'].pid}\n")
        (run / "munged.pid").write_text(f"{procs['sleep'].pid}\n")  # the pid of a munged long gone, reused
        cluster_was_up = cluster_up()
        proc = _script("stop", tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert procs["slurmd"].wait(timeout=30) is not None and "stopped slurmd" in proc.stderr
        assert procs["slurmctld"].poll() is None and procs["sleep"].poll() is None
        assert "slurmctld runs but was not started by this script: left running" in proc.stderr
        assert not list(run.iterdir())  # the records are gone
        assert cluster_up() == cluster_was_up  # the real cluster's daemons were not touched
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def _started_by_the_script(daemon: str) -> bool:
    try:
        pid = Path(f"/run/medgen-slurm/{daemon}.pid").read_text().strip()
        return Path(f"/proc/{pid}/comm").read_text().strip() == daemon
    except OSError:
        return False


def test_a_cold_start_ends_the_jobs_the_saved_state_still_lists_as_running(cluster, tmp_path):
    """A machine stopped (or restored from a snapshot) with a job running: every process is gone, yet the
    controller's saved state says the job runs, and the node's boot time has not changed, so Slurm would hold
    the node for it until its time limit. The next `start` ends it as a node failure and the node is free."""
    if not all(_started_by_the_script(d) for d in ("slurmctld", "slurmd")):
        pytest.skip("the running cluster was not started by deployments/slurm/local-cluster.sh; this test kills it")
    seconds = str(600 + int(uuid.uuid4().hex[:4], 16) % 300)  # names this job's process among all others
    job_id = subprocess.run(["sbatch", "--parsable", "--no-requeue", "--time=00:15:00", "--mem=100M",
                             f"--output={tmp_path}/%j.out", "--wrap", f"sleep {seconds}"],
                            capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    try:
        _lose_a_running_job(job_id, seconds)
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert f"jobs {job_id} were running when the cluster went down" in proc.stderr
        assert jobs_in_queue() == []
        # The controller's view: accounting hears of the end later.
        assert slurm.job_state(job_id, use_sacct=False).state == "NODE_FAIL"
        node = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True).stdout.split()
        assert set(node) == {"idle"}  # one line per partition
    finally:
        subprocess.run(["scancel", job_id], capture_output=True)  # a failed test must not leave it holding the node


def _lose_a_running_job(job_id: str, seconds: str) -> None:
    """What a stop without shutdown leaves: no daemon, no job process, a saved state with the job running."""
    deadline = time.monotonic() + 60
    # squeue, not sacct: accounting hears of the start a little later.
    while slurm.job_state(job_id, use_sacct=False).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(1)
    assert slurm.job_state(job_id, use_sacct=False).state == "RUNNING"
    time.sleep(5)  # the controller saves its state a few seconds after a job starts
    for name in ("slurmctld", "slurmd", "slurmstepd"):
        subprocess.run(["pkill", "-KILL", "-x", name])
    subprocess.run(["pkill", "-KILL", "-f", f"^sleep {seconds}$"])
    time.sleep(1)
