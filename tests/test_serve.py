"""Serving and the smoke test, on the trained tiny run (which has not learned the format)."""

import json
import shutil
import socket

import pytest

from medgen import backends, serve
from medgen.errors import ServeError, SmokeTestFailed


@pytest.fixture(scope="module")
def exported(trained):
    from medgen import export, merge

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
    # A 2-step model does not write whole records in 48 tokens: the smoke test must say so, per prompt.
    assert len(e.value.scores) == 3 and not any(s["passed"] for s in e.value.scores)
    assert "Female/PSYCHIATRY: no stop token" in str(e.value)
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
