"""Serving and the smoke test, on the trained tiny run (which has not learned the format)."""

import json
import shutil
import socket

import pytest

from medgen.core.errors import ServeError, SmokeTestFailed
from medgen.serve import backends
from medgen.serve import stage as serve

pytestmark = pytest.mark.slow  # every test here trains or runs the pipeline


@pytest.fixture(scope="module")
def exported(trained):
    from medgen.export import merge
    from medgen.export import stage as export

    cfg, _ = trained
    cfg = cfg.model_copy(update={"smoke": cfg.smoke.model_copy(update={"max_tokens": 48})})
    merge.run(cfg)
    export.run(cfg.model_copy(update={"export": cfg.export.model_copy(update={"verify": False})}))
    return cfg


def _closed(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_llamacpp_serves_writes_modelfile_and_scores(exported):
    with pytest.raises(SmokeTestFailed) as e:
        serve.run(exported)
    # A 2-step model does not write whole records in 48 tokens: the smoke test must say so, per prompt, naming
    # what each lacks (cut at the limit, or stopped short of the header and sections).
    assert len(e.value.scores) == 3 and not any(s["passed"] for s in e.value.scores)
    for s in e.value.scores:
        assert f"{s['sex']}/{s['service']}: " in str(e.value) and s["reasons"]
        assert set(s["reasons"]) & {"no stop token", "missing fields", "too few sections"}, s["reasons"]
    manifest = json.loads((exported.stage_dir("serve") / "manifest.json").read_text())
    assert manifest["backend"] == "llamacpp" and "ollama" in manifest["notes"][0]
    assert manifest["url"].startswith("http://127.0.0.1:")
    assert manifest["pid"] is None and manifest["smoke"]["tokens_per_s"] > 0
    # Scores only in the manifest: the records themselves stay in the owner-only smoke.json.
    assert all("record" not in s for s in manifest["smoke_scores"])
    modelfile = (exported.stage_dir("serve") / "Modelfile").read_text()
    assert "FROM " in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile and "[[category value]]" in modelfile
    assert _closed(manifest["url"]), "the server must be stopped after the smoke test"


def test_kept_server_answers_in_parallel_and_stops(exported):
    from concurrent.futures import ThreadPoolExecutor

    result = serve.run(exported, keep_running=True, raise_on_failure=False)
    server = result.server
    try:
        assert result.pid == server.pid and server.slots == exported.serve.parallel
        with ThreadPoolExecutor(2) as pool:
            gens = list(pool.map(lambda seed: server.chat(
                [{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0.7, top_p=0.9, seed=seed,
                stop=("<|im_end|>",)), (1, 2)))
        assert all(g.tokens > 0 and g.text for g in gens)
    finally:
        server.stop()
    assert _closed(result.url)


def test_kept_server_is_recorded_and_serve_stop_ends_it(exported):
    from medgen.core.constants import SERVER_FILE

    result = serve.run(exported, keep_running=True, raise_on_failure=False)
    path = exported.stage_dir("serve") / SERVER_FILE
    info = json.loads(path.read_text())
    assert info["url"] == result.url and info["pid"] == result.pid and info["host"] == socket.gethostname()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert serve.stop(exported)["pid"] == result.pid
    result.server.process.proc.wait(10)
    assert _closed(result.url) and not path.exists()
    with pytest.raises(ServeError, match="no kept server is recorded"):
        serve.stop(exported)


def test_failed_smoke_test_stops_even_a_kept_server(exported):
    from medgen.core.constants import SERVER_FILE

    with pytest.raises(SmokeTestFailed):
        serve.run(exported, keep_running=True)
    manifest = json.loads((exported.stage_dir("serve") / "manifest.json").read_text())
    assert _closed(manifest["url"]) and not (exported.stage_dir("serve") / SERVER_FILE).exists()


@pytest.mark.parametrize("host,allow_remote,ok", [
    ("127.0.0.1", False, True), ("127.0.0.2", False, True), ("::1", False, True), ("localhost", False, True),
    ("0.0.0.0", False, False), ("10.1.2.3", False, False), ("gpu-node-7", False, False), ("0.0.0.0", True, True),
])
def test_non_loopback_host_needs_allow_remote(tmp_path, host, allow_remote, ok):
    from medgen.core.config import load_config
    from medgen.core.errors import ConfigError

    overrides = [f"serve.host={host}", f"serve.allow_remote={str(allow_remote).lower()}"]
    if ok:
        assert load_config("configs/default.yaml", overrides).serve.host == host
    else:
        with pytest.raises(ConfigError, match="serve.host: expected a loopback address"):
            load_config("configs/default.yaml", overrides)


def test_remote_server_key_is_generated_owner_only_and_reused(tmp_path):
    from medgen.core.config import load_config

    cfg = load_config("configs/default.yaml", [f"run_dir={tmp_path}", "serve.host=0.0.0.0", "serve.allow_remote=true"])
    key = backends.api_key(cfg)
    path = cfg.stage_dir("serve") / "api_key"
    assert len(key) >= 32 and path.read_text().strip() == key and (path.stat().st_mode & 0o777) == 0o600
    assert backends.api_key(cfg) == key
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    cfg.serve.api_key_file = str(short)
    with pytest.raises(ServeError, match="at least 16 characters"):
        backends.api_key(cfg)
    with pytest.raises(ServeError, match="Ollama has no API keys"):
        backends.start_ollama(cfg, tmp_path / "Modelfile", tmp_path / "log", backends.subprocess_run)


def test_port_in_use_is_a_clear_error(exported):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"port": port})})
        with pytest.raises(ServeError, match=f"127.0.0.1:{port} is already in use"):
            serve.run(cfg)


def test_ollama_backend_needs_binary_or_host(exported):
    if shutil.which("ollama"):
        pytest.skip("ollama is installed here")
    cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"backend": "ollama"})})
    with pytest.raises(ServeError, match="needs the `ollama` binary"):
        backends.choose(cfg)
    assert backends.choose(exported) == "llamacpp"


@pytest.mark.ollama
def test_ollama_serves_and_runs_the_same_smoke_test(exported):
    cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"backend": "ollama"})})
    with pytest.raises(SmokeTestFailed):
        serve.run(cfg)
    manifest = json.loads((cfg.stage_dir("serve") / "manifest.json").read_text())
    assert manifest["backend"] == "ollama" and manifest["smoke"]["n"] == 3


def test_generate_restarts_a_llamacpp_server_killed_mid_run(exported):
    """SIGKILL the real llama.cpp server (not its supervisor) once a few records are journaled: generate starts a new
    one and finishes the plan, and nothing of the killed server is left."""
    import os
    import signal
    import subprocess
    import threading
    import time

    from medgen.core.config import GenerateConfig
    from medgen.generate import stage as generate
    from medgen.serve.launch import serve_export

    out = exported.stage_dir("generate")
    killed: list[int] = []

    def kill_when_journaled(pgid: int) -> None:
        journal = out / "journal.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_bytes().count(b"\n") >= 3:  # the header and two records
                members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
                server = next(int(p) for p in members if int(p) != pgid)
                os.kill(server, signal.SIGKILL)
                killed.append(pgid)
                return
            time.sleep(0.05)

    def start():
        server, stops = serve_export(exported, out)
        if not killed:
            threading.Thread(target=kill_when_journaled, args=(server.pid,), daemon=True).start()
        return server, stops

    gen = GenerateConfig(n=8, max_tokens=24, max_attempts=1, restart_backoff_s=0)
    result = generate.run(exported, gen, start_server=start)
    assert killed and result.server_restarts == 1 and result.counts["planned"] == 8
    assert subprocess.run(["pgrep", "-g", str(killed[0])], capture_output=True).returncode == 1
    records = result.counts["valid"] + result.counts["rejected"]
    assert records == 8
