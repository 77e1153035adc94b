"""The Ollama TEMPLATE derived from each model's chat template gives, rendered the way Ollama renders it
(Go's text/template, cut at {{ .Response }}: tests/fixtures/ollama_template), exactly the prompt HF renders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from medgen.core.errors import ExportError, ServeError
from medgen.data.prompts import instruction, make_input
from medgen.serve import launch as serve
from medgen.serve.modelfile import ChatFormat, chat_format, read_template, render

from llama3_fixture import INSTALL_HINT, build_tokenizer, tokenizer_source

TEMPLATE = serve.modelfile_template()  # the package data, as a non-editable install reads it
SYSTEM = instruction(True)
USER = make_input("Female", "CARDIOLOGY")
# Braces and a sentinel-like word in the values must come through as text, never as template code. No
# whitespace at either end: Llama 3.x templates trim message text, which a Go template cannot do (medgen's
# prompts never carry any).
ODD_USER = "Sex: {{ .System }} MedgenPromptSentinel\n  Service: ORTHO"

QWEN25 = """{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
# Gemma 3: no system role; a system message becomes a prefix of the first user turn.
GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""
# Gemma 2 refuses a system message outright.
GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
          "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
          "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{'<start_of_turn>model\\n'}}{% endif %}")
# Mistral v0.3 merges the system text into the last user turn only: a conversation with the answer (what
# training renders) has no system text, the generation prompt has it.
MISTRAL = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"] + eos_token}}
    {%- endif %}
{%- endfor %}
"""
PHI35 = ("{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
         "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}"
         "{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
         "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}")


def tokenizer_only(template: str, specials: list[str], bos: str | None, eos: str):
    """A tokenizer with a family's chat template and special tokens (no real vocabulary: only rendering and
    the special tokens matter here)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token=bos, eos_token=eos)
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.chat_template = template
    return tok


def adds_bos(tok) -> bool:
    """Whether tokenization adds BOS: the rule medgen's GGUF converter writes as add_bos_token."""
    ids = tok("a", add_special_tokens=True)["input_ids"]
    return bool(tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id)


@pytest.fixture(scope="session")
def families(tmp_path_factory) -> dict[str, tuple[object, bool]]:
    """name -> (tokenizer, whether the GGUF adds BOS)."""
    from transformers import AutoTokenizer

    from medgen.model.loading import resolve_base

    out = {
        "qwen2.5": (tokenizer_only(QWEN25, ["<|im_start|>", "<|im_end|>"], None, "<|im_end|>"), False),
        "gemma3": (tokenizer_only(GEMMA3, ["<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>"), True),
        "phi3.5": (tokenizer_only(PHI35, ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], "<s>",
                                  "<|endoftext|>"), False),
    }
    embedded = AutoTokenizer.from_pretrained(resolve_base("embedded"))
    out["smollm2"] = (embedded, adds_bos(embedded))
    if tokenizer_source() is not None:
        llama = AutoTokenizer.from_pretrained(build_tokenizer(tmp_path_factory.mktemp("llama31-tok")))
        out["llama3.1"] = (llama, adds_bos(llama))
    return out


@pytest.fixture(scope="session")
def ollama_render(tmp_path_factory) -> Callable[[str, str, str], str]:
    """Render a TEMPLATE for (system, prompt) with tests/fixtures/ollama_template, built here with `go build`."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("needs the Go toolchain (`go`, Debian package golang-go, which .ci/run installs) to build "
                    "tests/fixtures/ollama_template, Ollama's template rendering")
    build = tmp_path_factory.mktemp("ollama-template")
    env = dict(os.environ, CGO_ENABLED="0")
    if "GOCACHE" not in env and "HOME" not in env:
        env["GOCACHE"] = str(build / "gocache")
    src = Path(__file__).parents[1] / "fixtures" / "ollama_template" / "main.go"
    subprocess.run([go, "build", "-o", str(build / "render"), str(src)], env=env, check=True, capture_output=True)

    def render_prompt(template: str, system: str, prompt: str) -> str:
        proc = subprocess.run([str(build / "render")], input=json.dumps(
            {"template": template, "system": system, "prompt": prompt, "response": ""}).encode(), capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout.decode("utf-8")

    return render_prompt


@pytest.mark.parametrize("family", ["smollm2", "llama3.1", "qwen2.5", "gemma3", "phi3.5"])
def test_ollama_prompt_is_the_training_prompt(family, families, ollama_render):
    if family not in families:
        pytest.skip(f"needs the Llama 3 tokenizer package: {INSTALL_HINT}")
    tok, add_bos = families[family]
    fmt = chat_format(tok, add_bos=add_bos)
    for system, user in ((SYSTEM, USER), ("", USER), (SYSTEM, ODD_USER)):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if add_bos:
            # llama.cpp and Ollama add BOS when they tokenize the prompt
            assert expected.startswith(tok.bos_token)
            expected = expected[len(tok.bos_token):]
        assert ollama_render(fmt.template, system, user) == expected, (family, system, user, fmt.template)


def test_derived_templates_and_stops(families):
    llama = families.get("llama3.1")
    if llama is not None:
        fmt = chat_format(*llama[:1], add_bos=llama[1])
        # The date preamble is printed with or without a system message; BOS is llama.cpp's to add.
        assert fmt.template == (
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n{{ .System }}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            "{{ .Prompt }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>")
        assert fmt.name == "llama3" and fmt.stops == ("<|eot_id|>",)
    qwen = chat_format(families["qwen2.5"][0], add_bos=False)
    # Qwen's default system prompt stands where no system message is given.
    assert qwen.template == (
        "<|im_start|>system\n{{ if .System }}{{ .System }}{{ else }}You are Qwen, created by Alibaba Cloud. You are "
        "a helpful assistant.{{ end }}<|im_end|>\n<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n"
        "{{ .Response }}<|im_end|>\n")
    assert qwen.name == "chatml" and qwen.stops == ("<|im_end|>",)
    gemma = chat_format(families["gemma3"][0], add_bos=True)
    assert gemma.template == ("<start_of_turn>user\n{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}"
                              "<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n")
    assert gemma.stops == ("<end_of_turn>", "<eos>")
    assert chat_format(families["phi3.5"][0], add_bos=False).stops == ("<|end|>", "<|endoftext|>")
    smol = chat_format(families["smollm2"][0], add_bos=families["smollm2"][1])
    assert smol.name == "chatml" and smol.stops == ("<|im_end|>",) and "{{ else }}You are a helpful AI" in smol.template


@pytest.mark.parametrize("template, expected", [
    (GEMMA2, "got an error: System role not supported"),
    # the system text transformed: no sentinel to replace
    ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | upper }}<|im_end|>\n{% endfor %}"
     "<|im_start|>assistant\n", "expected the system text once, verbatim"),
    # the system text after the user's: Ollama's .System/.Prompt template cannot reorder them
    ("{% for m in messages|reverse %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", "expected the system text before the user"),
    # nothing ends the assistant's turn
    ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}", "expected the assistant turn to end with a special"),
])
def test_inexpressible_templates_are_refused(template, expected):
    eos = None if "special" in expected else "<|im_end|>"
    tok = tokenizer_only(template, ["<|im_start|>", "<|im_end|>"], None, eos)
    with pytest.raises(ExportError, match=expected):
        chat_format(tok, add_bos=False)


def test_a_prompt_unlike_the_trained_one_is_refused():
    tok = tokenizer_only(MISTRAL, ["[INST]", "[/INST]"], "<s>", "</s>")
    with pytest.raises(ExportError, match=r"expected the generation prompt '\[INST\] MedgenSystemSentinel.*to begin the "
                                          r"whole conversation.*got '\[INST\] MedgenPromptSentinel\[/INST\] "):
        chat_format(tok, add_bos=True)


def test_a_bos_the_template_does_not_print_is_refused():
    tok = tokenizer_only(QWEN25, ["<|im_start|>", "<|im_end|>"], "<|endoftext|>", "<|im_end|>")
    with pytest.raises(ExportError, match="expected it to begin with the BOS token '<|endoftext|>'"):
        chat_format(tok, add_bos=True)


# Every end-of-turn token becomes its own `PARAMETER stop`: one for ChatML, two for Gemma 3 and Phi-3.5.
@pytest.mark.parametrize("family, stops", [
    ("qwen2.5", ["<|im_end|>"]),
    ("gemma3", ["<end_of_turn>", "<eos>"]),
    ("phi3.5", ["<|end|>", "<|endoftext|>"]),
])
def test_render(families, tmp_path, family, stops):
    fmt = chat_format(families[family][0], add_bos=False)
    text = render(TEMPLATE, gguf=tmp_path / "m.gguf", name="medgen-x", modelfile=tmp_path / "Modelfile",
                  system="Create a record.", fmt=fmt, temperature=0.7, top_p=0.9, num_ctx=2048)
    lines = text.splitlines()
    assert f"FROM {tmp_path / 'm.gguf'}" in lines
    assert 'SYSTEM """Create a record."""' in text
    assert read_template(text) == fmt.template
    assert [line for line in lines if line.startswith("PARAMETER stop")] == [f'PARAMETER stop "{s}"' for s in stops]
    for param in ("PARAMETER temperature 0.7", "PARAMETER top_p 0.9", "PARAMETER num_ctx 2048"):
        assert param in lines
    with pytest.raises(ExportError, match='expected no triple quote'):
        render(TEMPLATE, gguf=tmp_path / "m.gguf", name="x", modelfile=tmp_path / "Modelfile", system='say """hi"""',
               fmt=fmt, temperature=0.7, top_p=0.9, num_ctx=2048)
    with pytest.raises(ExportError, match="expected printable text"):
        render(TEMPLATE, gguf=tmp_path / "m.gguf", name="x", modelfile=tmp_path / "Modelfile", system="a\x00b",
               fmt=fmt, temperature=0.7, top_p=0.9, num_ctx=2048)


class FakeOllama:
    """What serve.start needs of an Ollama backend: the template it stored, and stop()."""

    def __init__(self, stored: str):
        self.stored, self.url, self.model, self.stopped = stored, "http://127.0.0.1:1", "medgen-x", False

    def stored_template(self) -> str:
        return self.stored

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("stored_differently", [False, True])
def test_serve_checks_the_template_ollama_stored(stored_differently, families, tmp_path, monkeypatch):
    fmt: ChatFormat = chat_format(families["qwen2.5"][0], add_bos=False)
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(render(TEMPLATE, gguf=tmp_path / "m.gguf", name="medgen-x", modelfile=modelfile,
                                system=SYSTEM, fmt=fmt, temperature=0.7, top_p=0.9, num_ctx=2048))
    # As a Modelfile parser that drops a character would store it.
    stored = fmt.template.replace("\n<|im_start|>user", "<|im_start|>user") if stored_differently else fmt.template
    fake = FakeOllama(stored)
    monkeypatch.setattr(serve.backends, "choose", lambda config: "ollama")
    monkeypatch.setattr(serve.backends, "start_ollama", lambda *args: fake)
    if not stored_differently:
        assert serve.start(None, None, modelfile, tmp_path) is fake and not fake.stopped
        return
    with pytest.raises(ServeError, match=r"stored a different TEMPLATE for 'medgen-x'.*first difference at character "
                                         r"\d+: expected '\\n<\|im_start\|>user"):
        serve.start(None, None, modelfile, tmp_path)
    assert fake.stopped
