"""GGUF parity through llama.cpp (xllamacpp) on the embedded model, and the llama.cpp server process."""

import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from medgen.core.errors import ExportError, ServeError
from medgen.data.prompts import request_messages
from medgen.export import gguf_convert
from medgen.export.logits import verify_gguf
from medgen.serve import llamacpp
from medgen.model.loading import resolve_base

pytestmark = pytest.mark.slow  # exports the embedded model and serves its GGUF: the export and serve stages


@pytest.fixture(scope="module")
def embedded_hf() -> Path:
    return Path(resolve_base("embedded"))


@pytest.fixture(scope="module")
def f16_gguf(embedded_hf, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "m-f16.gguf"
    summary = gguf_convert.convert(embedded_hf, out, "f16")
    assert summary["tokenizer_pre"] == "smollm" and out.stat().st_size == summary["bytes"]
    return out


@pytest.fixture(scope="module")
def f16_check(embedded_hf, f16_gguf) -> dict:
    return verify_gguf(embedded_hf, f16_gguf)


def test_f16_matches_the_merged_model(f16_check):
    # Measured: KL mean ~7e-6, max ~1e-4 nats; log-prob diffs ~0.04 (llama.cpp rounds activations to F16).
    assert f16_check["tokenizer_agrees"]
    assert f16_check["positions"] > 300 and f16_check["k"] == 20
    assert f16_check["top1_agreement"] == 1.0, f16_check
    assert f16_check["kl_mean"] < 1e-3 and f16_check["kl_max"] < 1e-2, f16_check
    assert f16_check["max_abs_logprob_diff"] < 0.1, f16_check


def test_q8_0_stays_close(embedded_hf, tmp_path):
    out = tmp_path / "m-q8_0.gguf"
    gguf_convert.convert(embedded_hf, out, "q8_0")
    check = verify_gguf(embedded_hf, out)
    # Measured: top-1 0.997 outside near ties, KL mean ~5e-3 nats.
    assert check["tokenizer_agrees"]
    assert check["top1_agreement"] >= 0.9 and check["kl_mean"] < 0.01, check


def test_a_wrong_qk_head_order_is_caught(embedded_hf, f16_check, tmp_path, monkeypatch):
    # Skipping llama.cpp's q/k head permutation still loads and runs, with the wrong rotary pairs.
    monkeypatch.setattr(gguf_convert, "permute_qk", lambda w, *_: w)
    out = tmp_path / "m-broken.gguf"
    gguf_convert.convert(embedded_hf, out, "f16")
    check = verify_gguf(embedded_hf, out)
    assert check["tokenizer_agrees"]  # the tokenizer is fine; the weights are not
    assert check["top1_agreement"] < 0.8, check
    assert check["kl_mean"] > 0.1 and check["kl_mean"] > 1000 * f16_check["kl_mean"], check


def test_server_answers_concurrent_chats_then_stops(f16_gguf, embedded_hf, tmp_path):
    from transformers import AutoTokenizer

    log = tmp_path / "server.log"
    # One thread: llama.cpp's spinning barriers crawl when another process shares these 2 cores.
    server = llamacpp.start_server(f16_gguf, log_path=log, parallel=2, ctx=512, threads=1, alias="medgen-test",
                                   api_key="test-key", ready_timeout_s=60)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        assert server.url.startswith("http://127.0.0.1:") and port > 0
        messages = [request_messages("Female", "SURGERY", False), request_messages("Male", "CARDIOLOGY", False)]
        def ask(m: list[dict]) -> tuple[str, bool, int]:
            return llamacpp.chat(server.url, m, max_tokens=16, temperature=0.7, top_p=0.95, seed=1,
                                 stop=["<|im_end|>"], api_key="test-key")

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(ask, messages))
        for text, stopped, tokens in answers:
            assert isinstance(text, str) and text and isinstance(stopped, bool) and 0 < tokens <= 16
        text = "<|im_start|>user\nSex: Male<|im_end|>"
        expected = AutoTokenizer.from_pretrained(embedded_hf)(text, add_special_tokens=False)["input_ids"]
        assert llamacpp.tokenize(server.url, text, api_key="test-key") == expected
        with pytest.raises(ServeError, match="got 401"):
            llamacpp.tokenize(server.url, text)
    finally:
        server.stop()
    assert server.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    written = log.read_text()
    assert llamacpp.READY_PREFIX in written and "stopped on SIGTERM" in written
    assert "Generate discharge record" not in written  # prompts and records never reach the log


def test_port_in_use_is_refused_before_spawning(f16_gguf, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        expected = f"127.0.0.1:{port} is already in use; stop what holds it or set serve.port=0"
        with pytest.raises(ServeError, match=expected):
            llamacpp.start_server(f16_gguf, log_path=tmp_path / "s.log", port=port)
    assert not (tmp_path / "s.log").exists()


def test_missing_gguf(tmp_path):
    with pytest.raises(ServeError, match="expected a GGUF file at .*nope.gguf"):
        llamacpp.start_server(tmp_path / "nope.gguf", log_path=tmp_path / "s.log")


def test_garbage_gguf_exits_with_its_log(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(ServeError, match="exited with 1 before it was ready|not ready") as err:
        llamacpp.start_server(bad, log_path=tmp_path / "s.log", ready_timeout_s=60)
    assert "failed to load model" in str(err.value)


def test_interrupted_start_leaves_no_process(f16_gguf, tmp_path, monkeypatch):
    started = []

    def interrupted(self, timeout_s):
        started.append(self.proc)
        raise KeyboardInterrupt

    monkeypatch.setattr(llamacpp.LlamaCppProcess, "wait_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        llamacpp.start_server(f16_gguf, log_path=tmp_path / "s.log")
    assert started and started[0].returncode is not None


def test_q4_k_m_without_llama_cpp_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when it is not installed
    with pytest.raises(ExportError, match=r"pip install 'medgen\[quantize\]'.*or use q8_0"):
        llamacpp.quantize(tmp_path / "m-f16.gguf", tmp_path / "m-q4_k_m.gguf", "q4_k_m")
    with pytest.raises(ExportError, match="expected an out-type in q4_k_m, got 'q2_k'"):
        llamacpp.quantize(tmp_path / "m-f16.gguf", tmp_path / "m-q2_k.gguf", "q2_k")
