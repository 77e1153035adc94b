import pytest

from medgen.errors import ExportError
from medgen.modelfile import CHATML, LLAMA3, chat_format, render
from medgen.serve import modelfile_template

TEMPLATE = modelfile_template()  # the package data, as a non-editable install reads it
SMOL = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>' + '\\n'}}{% endfor %}")
LLAMA31 = ("{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] "
           "| trim + '<|eot_id|>' }}")


@pytest.mark.parametrize(
    "jinja, fmt, eos, must_stop, must_not_stop",
    [
        (SMOL, CHATML, "<|im_end|>", ["<|im_end|>", "<|im_start|>"], ["<|eot_id|>"]),
        # Llama 3.x ends a turn with <|eot_id|>; <|end_of_text|> alone would keep generating.
        (LLAMA31, LLAMA3, "<|eot_id|>", ["<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"], ["<|im_end|>"]),
        # an eos outside the format's stop list is added, once
        (SMOL, CHATML, "</s>", ["<|im_end|>", "</s>"], []),
    ],
)
def test_render(jinja, fmt, eos, must_stop, must_not_stop, tmp_path):
    assert chat_format(jinja) is fmt
    text = render(TEMPLATE, gguf=tmp_path / "m.gguf", name="medgen-x", modelfile=tmp_path / "Modelfile",
                  system="Create a record.", fmt=fmt, eos_token=eos, temperature=0.7, top_p=0.9, num_ctx=2048)
    lines = text.splitlines()
    assert f"FROM {tmp_path / 'm.gguf'}" in lines
    assert 'SYSTEM """Create a record."""' in text
    assert f'TEMPLATE """{fmt.template}"""' in text
    stops = [line.split(" ", 2)[2].strip('"') for line in lines if line.startswith("PARAMETER stop")]
    for s in must_stop:
        assert stops.count(s) == 1, (s, stops)
    for s in must_not_stop:
        assert s not in stops
    for param in ("PARAMETER temperature 0.7", "PARAMETER top_p 0.9", "PARAMETER num_ctx 2048"):
        assert param in lines
    assert "{{ .System }}" in text and "{{ .Prompt }}" in text and "{{ .Response }}" in text


def test_unknown_chat_template_is_refused():
    with pytest.raises(ExportError, match="ChatML"):
        chat_format("{{ bos_token }}[INST] {{ message }} [/INST]")
