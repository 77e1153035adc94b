"""llama.cpp serving and the smoke test, on the trained tiny run (which has not learned the format)."""

import shutil
import socket

import pytest

from medgen import serve
from medgen.errors import ServeError, SmokeTestFailed


@pytest.fixture(scope="module")
def exported(trained):
    from medgen import export, merge

    cfg, _ = trained
    cfg = cfg.model_copy(update={"smoke": cfg.smoke.model_copy(update={"max_tokens": 48})})
    merge.run(cfg)
    export.run(cfg.model_copy(update={"export": cfg.export.model_copy(update={"verify": False})}))
    return cfg


def test_llamacpp_serves_writes_modelfile_and_scores(exported):
    with pytest.raises(SmokeTestFailed) as e:
        serve.run(exported)
    # A 2-step model does not write whole records in 48 tokens: the smoke test must say so, per prompt.
    assert len(e.value.scores) == 3 and not any(s["passed"] for s in e.value.scores)
    assert "Female/PSYCHIATRY" in str(e.value)
    import json

    manifest = json.loads((exported.stage_dir("serve") / "manifest.json").read_text())
    assert manifest["backend"] == "llamacpp" and "ollama" in manifest["notes"][0]
    assert manifest["url"].startswith("http://127.0.0.1:")
    assert manifest["pid"] is None and manifest["smoke"]["tokens_per_s"] > 0
    modelfile = (exported.stage_dir("serve") / "Modelfile").read_text()
    assert "FROM " in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    # The server was stopped: nothing listens on its port any more.
    port = int(manifest["url"].rsplit(":", 1)[1])
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_kept_server_answers_and_stops_by_pid(exported):
    import json
    from pathlib import Path

    gguf = Path(json.loads((exported.stage_dir("export") / "manifest.json").read_text())["gguf"])
    server = serve.start_llamacpp(exported, gguf, exported.stage_dir("serve"))
    try:
        gen = server.chat("You write records.", "Say hi.", 8, 0.7, 0.9, 0, ("<|im_end|>",))
        assert gen.tokens > 0 and isinstance(gen.text, str)
    finally:
        server.stop()
    assert server.proc.poll() is not None


def test_port_in_use_is_a_clear_error(exported):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"port": port})})
        with pytest.raises(ServeError, match=f"127.0.0.1:{port} is already in use"):
            serve.run(cfg)


def test_missing_model_is_a_clear_error(exported, tmp_path):
    with pytest.raises(ServeError, match="missing; run `medgen export`"):
        serve.start_llamacpp(exported, tmp_path / "nope.gguf", tmp_path)


def test_server_that_never_gets_ready_times_out(exported, tmp_path):
    bad = tmp_path / "garbage.gguf"
    bad.write_bytes(b"not a gguf")
    cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"ready_timeout_s": 20})})
    with pytest.raises(ServeError, match="exited|not ready"):
        serve.start_llamacpp(cfg, bad, tmp_path)


def test_ollama_backend_needs_binary_or_host(exported):
    if shutil.which("ollama"):
        pytest.skip("ollama is installed here")
    cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"backend": "ollama"})})
    with pytest.raises(ServeError, match="needs the `ollama` binary"):
        serve.choose_backend(cfg)
    assert serve.choose_backend(exported) == "llamacpp"


@pytest.mark.ollama
def test_ollama_serves_and_passes_the_same_smoke_api(exported):
    cfg = exported.model_copy(update={"serve": exported.serve.model_copy(update={"backend": "ollama"})})
    with pytest.raises(SmokeTestFailed):
        serve.run(cfg)
    import json

    manifest = json.loads((cfg.stage_dir("serve") / "manifest.json").read_text())
    assert manifest["backend"] == "ollama" and manifest["smoke"]["n"] == 3
