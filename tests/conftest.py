import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from medgen.core.config import load_config  # noqa: E402

# A few records, a few steps: enough to run every stage for real on 2 cores in seconds.
TINY = [
    "data.n_records=12",
    "data.split.val=0.2",
    "data.split.test=0.1",
    "train.max_steps=2",
    "train.batch_size=1",
    "train.max_seq_length=128",
    "train.eval_steps=1",
    "train.save_steps=2",
    "train.logging_steps=1",
    "train.lora.r=4",
    "train.lora.alpha=8",
    "train.learning_rate=1e-3",
    # A 2-step model fails the smoke test whatever the seed: one try, not the default's retry.
    "smoke.attempts=1",
    # F16, whose parity with the merged model is exact: the stage tests check it (the demo's Q8_0 has its own gate).
    "export.outtype=f16",
]


def tiny_config(run_dir, *extra):
    return load_config("configs/default.yaml", [f"run_dir={run_dir}", *TINY, *extra])


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory, repo_root):
    """A real prepare + 2-step train on the embedded model, shared by the stage tests."""
    from medgen.data import prepare
    from medgen.train import stage as train

    cfg = tiny_config(tmp_path_factory.mktemp("run"))
    prepare.run(cfg)
    result = train.run(cfg)
    return cfg, result


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    _fresh_events()
    with prefect_test_harness(server_startup_timeout=120):
        yield


# Fixtures that train the embedded model: a test using one (directly or through another fixture) trains.
TRAINING_FIXTURES = {"trained"}


def pytest_collection_modifyitems(config, items):
    import torch

    unmarked = [item.nodeid for item in items
                if TRAINING_FIXTURES & set(item.fixturenames) and "slow" not in item.keywords]
    if unmarked:
        raise pytest.UsageError("these tests train (they use the `trained` fixture) but are not marked slow: "
                                + ", ".join(unmarked))

    no_cuda = pytest.mark.skip(reason="needs an NVIDIA GPU: torch.cuda.is_available() is False here")
    no_ollama = pytest.mark.skip(reason="needs the `ollama` binary on PATH; none is installable on this machine")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "ollama" in item.keywords and shutil.which("ollama") is None:
            item.add_marker(no_ollama)


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """A real Prefect server: the one .ci/run started (MEDGEN_TEST_PREFECT_API_URL), or one of our own."""
    import socket
    import subprocess
    import sys
    import time

    url = os.environ.get("MEDGEN_TEST_PREFECT_API_URL")
    proc = None
    if not url:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        home = tmp_path_factory.mktemp("prefect-home")
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 90
    while not _healthy(url):
        assert time.time() < deadline, f"Prefect server at {url} not healthy"
        time.sleep(0.5)
    yield url
    if proc:
        proc.terminate()
        proc.wait(30)


def _fresh_events() -> None:
    """Stop Prefect's events worker: it keeps the API URL it started with, and task runs are recorded from events, so
    after a switch of server the next worker must start on the current one."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30)


@pytest.fixture
def api(live_server):
    """Point this test's Prefect client at the live server (the session's test harness points elsewhere)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _fresh_events()
    try:
        with temporary_settings({PREFECT_API_URL: live_server}):
            yield live_server
    finally:
        _fresh_events()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB file system (tmpfs), to fill; `remount(size)` gives it more room."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs (a disk to fill); CI runs as root")

    def remount(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)

    try:
        yield mnt, remount
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# --- a Slurm cluster and a `slurm` work pool (tests/cluster) ----------------------------------------------

def cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mix", "alloc"))


def jobs_in_queue() -> list[str]:
    proc = subprocess.run(["squeue", "-h", "-o", "%i %T %j %r"], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def cluster():
    """The cluster, free: each test times its own jobs, so a job it did not submit that holds the node would
    turn into a timeout far from its cause. Waits a little for such jobs to end, then says which they are."""
    if not cluster_up():
        pytest.skip("no Slurm cluster answers here; .ci/run starts one with deployments/slurm/local-cluster.sh start")
    deadline = time.monotonic() + 120
    while (jobs := jobs_in_queue()) and time.monotonic() < deadline:
        time.sleep(2)
    if jobs:
        pytest.fail(f"the Slurm tests need the cluster's queue empty, and it holds {len(jobs)} job(s): "
                    f"{'; '.join(jobs[:5])}. `deployments/slurm/local-cluster.sh clear` cancels them")


@pytest.fixture(scope="module")
def pool_worker(request, cluster, live_server, tmp_path_factory):
    """`prefect work-pool create --type slurm` and `prefect worker start` (which find the worker through its entry
    point) for the module's POOL; yields the worker's log."""
    pool = request.module.POOL
    env = {**os.environ, "PREFECT_API_URL": live_server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run([*prefect, "work-pool", "delete", pool], env=env, capture_output=True, cwd=ROOT)
    created = subprocess.run([*prefect, "work-pool", "create", pool, "--type", "slurm"], env=env,
                             capture_output=True, text=True, check=True, cwd=ROOT)
    assert pool in created.stdout + created.stderr
    log = tmp_path_factory.mktemp(f"{pool}-worker") / "worker.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([*prefect, "worker", "start", "--pool", pool, "--name", f"{pool}-worker"], env=env,
                                stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    yield log
    proc.terminate()
    proc.wait(30)


@pytest.fixture
def worker(pool_worker, api):
    """The module's worker's log, with this test's Prefect client pointed at its server."""
    return pool_worker
