"""Ollama Modelfile rendering: the prompt template and stop tokens derived from the model's own chat template.

Ollama must build exactly the prompt the model was trained on, and a GGUF imported with only FROM keeps
generating past the answer, so TEMPLATE and every stop token are written explicitly. Rather than
recognising a few formats and hand-writing their Go templates, the TEMPLATE is derived from the HF
(Jinja) chat template: it is rendered with sentinel strings for the system, user and assistant texts,
with and without a system message, and the sentinels become `{{ .System }}`, `{{ .Prompt }}` and
`{{ .Response }}`. Whatever the template prints only when a system message is present (or only when it
is absent, such as a default system prompt) goes inside `{{ if .System }}…{{ else }}…{{ end }}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from medgen.core.errors import ExportError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Plain words: templates may trim or strip message text, which must leave a sentinel whole.
SYSTEM_SENTINEL = "MedgenSystemSentinel"
PROMPT_SENTINEL = "MedgenPromptSentinel"
RESPONSE_SENTINEL = "MedgenResponseSentinel"
# Only a label for the manifest: the template itself is derived, never looked up.
FAMILY_MARKERS = (("<|start_header_id|>", "llama3"), ("<|im_start|>", "chatml"), ("<start_of_turn>", "gemma"),
                  ("[INST]", "mistral"), ("<|user|>", "phi3"))


@dataclass(frozen=True)
class ChatFormat:
    name: str
    template: str  # Ollama (Go text/template) prompt template
    stops: tuple[str, ...]


def _render(tok: PreTrainedTokenizerBase, messages: list[dict], generation_prompt: bool) -> str:
    import jinja2

    try:
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except jinja2.TemplateError as e:
        roles = "/".join(m["role"] for m in messages)
        raise ExportError(f"chat template: expected it to render a {roles} conversation, got an error: {e}. "
                          "Ollama's SYSTEM needs a template that accepts a system message") from None


def _split(text: str, sentinel: str, what: str) -> tuple[str, str]:
    """(before, after) the one occurrence of `sentinel` in `text`."""
    count = text.count(sentinel)
    if count != 1:
        raise ExportError(f"chat template: expected the {what} text once, verbatim, in the rendered prompt, got it "
                          f"{count} times: Ollama's template cannot express this chat template. Rendered: {text!r}")
    before, after = text.split(sentinel)
    return before, after


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _go_text(s: str) -> str:
    """Literal text for a Go template: only `{{` opens an action there."""
    return s.replace("{{", '{{ "{{" }}')


def _system_block(with_system: str, without: str) -> str:
    """Go template text printing `with_system` (around SYSTEM_SENTINEL) when .System is set, else `without`.

    The text both renderings share at either end stays outside the conditional.
    """
    head, tail = with_system.split(SYSTEM_SENTINEL)
    p = _common_prefix(with_system, without)
    p = min(p, len(head))
    s = _common_prefix(tail[::-1], without[p:][::-1])
    shared_head, shared_tail = head[:p], tail[len(tail) - s:]
    only_with, only_without = (head[p:], tail[:len(tail) - s]), without[p:len(without) - s]
    if only_with == ("", "") and not only_without:
        # An empty .System prints nothing, as the template prints for no system message.
        body = "{{ .System }}"
    else:
        body = ("{{ if .System }}" + _go_text(only_with[0]) + "{{ .System }}" + _go_text(only_with[1])
                + ("{{ else }}" + _go_text(only_without) if only_without else "") + "{{ end }}")
    return _go_text(shared_head) + body + _go_text(shared_tail)


def _special_tokens_in(tok: PreTrainedTokenizerBase, text: str) -> list[str]:
    """The tokenizer's special tokens that `text` contains, in order of appearance."""
    specials = {t.content for t in tok.added_tokens_decoder.values() if t.special} | set(tok.all_special_tokens)
    return sorted((t for t in specials if t and t in text), key=text.index)


def chat_format(tok: PreTrainedTokenizerBase, *, add_bos: bool) -> ChatFormat:
    """Derive the Ollama TEMPLATE and stop tokens from the tokenizer's chat template.

    `add_bos`: whether tokenization adds BOS (the GGUF's tokenizer.ggml.add_bos_token): llama.cpp and
    Ollama then add it themselves, so the template must not print it again. The result is exact for a
    one-turn chat (medgen's only kind) whose texts have no whitespace at either end: a Go template cannot
    trim, and Llama 3.x templates trim message text.
    """
    if not tok.chat_template:
        raise ExportError("chat template: expected the tokenizer to carry one, got none; use an instruct model")
    system = {"role": "system", "content": SYSTEM_SENTINEL}
    user = {"role": "user", "content": PROMPT_SENTINEL}
    with_system = _render(tok, [system, user], True)
    without = _render(tok, [user], True)
    full = _render(tok, [system, user, {"role": "assistant", "content": RESPONSE_SENTINEL}], False)
    if SYSTEM_SENTINEL in without:
        raise ExportError(f"chat template: expected no system text without a system message, got {without!r}")
    bos = tok.bos_token or ""
    if add_bos:
        if not (bos and with_system.startswith(bos) and without.startswith(bos) and full.startswith(bos)):
            raise ExportError(
                f"chat template: expected it to begin with the BOS token {bos!r}, which tokenization adds "
                f"(tokenizer.ggml.add_bos_token), got {with_system[:60]!r}: Ollama would prepend a BOS the "
                "model never saw in training")
        with_system, without, full = with_system[len(bos):], without[len(bos):], full[len(bos):]

    _split(with_system, SYSTEM_SENTINEL, "system")
    sys_part, after_prompt = _split(with_system, PROMPT_SENTINEL, "user")
    if SYSTEM_SENTINEL not in sys_part:
        raise ExportError(f"chat template: expected the system text before the user text, got {with_system!r}: "
                          "Ollama's template cannot express this chat template")
    before_prompt, after_prompt_without = _split(without, PROMPT_SENTINEL, "user")
    if after_prompt != after_prompt_without:
        raise ExportError(f"chat template: expected the text after the user message not to depend on the system "
                          f"message, got {after_prompt!r} with it and {after_prompt_without!r} without")
    if not full.startswith(with_system):
        raise ExportError(f"chat template: expected the generation prompt {with_system!r} to begin the whole "
                          f"conversation, which is what training renders, got {full[:len(with_system) + 40]!r}: "
                          "the model would be asked with a prompt it was not trained on")
    # Text between the generation prompt and the answer (a space, in some templates) was part of what the
    # model learned to write, so it stays out of the prompt.
    _, end_of_turn = _split(full[len(with_system):], RESPONSE_SENTINEL, "assistant")
    stops = _special_tokens_in(tok, end_of_turn)
    if tok.eos_token and tok.eos_token not in stops:
        stops.append(tok.eos_token)
    if not stops:
        raise ExportError(f"chat template: expected the assistant turn to end with a special token, got "
                          f"{end_of_turn!r} and no EOS token: Ollama would not know where an answer ends")

    template = (_system_block(sys_part, before_prompt) + "{{ .Prompt }}" + _go_text(after_prompt)
                + "{{ .Response }}" + _go_text(end_of_turn))
    name = next((n for marker, n in FAMILY_MARKERS if marker in with_system), "custom")
    return ChatFormat(name, template, tuple(stops))


def gguf_adds_bos(gguf_path: Path) -> bool:
    """The GGUF's tokenizer.ggml.add_bos_token: whether llama.cpp and Ollama add BOS at tokenization."""
    import gguf

    field = gguf.GGUFReader(gguf_path).get_field(gguf.Keys.Tokenizer.ADD_BOS)
    if field is None:
        raise ExportError(f"{gguf_path}: expected {gguf.Keys.Tokenizer.ADD_BOS} in its metadata, got none; "
                          "re-run `medgen export`")
    return bool(field.contents())


def _modelfile_text(value: str, what: str) -> str:
    """`value` as it may stand between a Modelfile's triple quotes, which have no escapes."""
    if '"""' in value:
        raise ExportError(f'{what}: expected no triple quote (""") inside a Modelfile value, got {value!r}')
    # Ollama's Modelfile parser drops non-printable characters other than whitespace.
    bad = sorted({c for c in value if not c.isprintable() and c not in "\n\r\t"})
    if bad:
        raise ExportError(f"{what}: expected printable text in a Modelfile value, got {bad!r} in {value!r}")
    return value


def read_template(modelfile_text: str) -> str:
    """The TEMPLATE \"\"\"…\"\"\" value of a Modelfile written by `render`."""
    start = modelfile_text.find('TEMPLATE """')
    if start < 0:
        raise ExportError('Modelfile: expected a TEMPLATE """…""" line, got none')
    start += len('TEMPLATE """')
    end = modelfile_text.find('"""', start)
    if end < 0:
        raise ExportError('Modelfile: expected the TEMPLATE value to end with """, got no closing quotes')
    return modelfile_text[start:end]


def render(template: str, *, gguf: Path, name: str, modelfile: Path, system: str, fmt: ChatFormat,
           temperature: float, top_p: float, num_ctx: int) -> str:
    return Template(template).substitute(
        gguf=str(gguf),
        name=name,
        modelfile=str(modelfile),
        system=_modelfile_text(system, "SYSTEM"),
        template=_modelfile_text(fmt.template, "TEMPLATE"),
        stops="\n".join(f'PARAMETER stop "{s}"' for s in fmt.stops),
        temperature=temperature,
        top_p=top_p,
        num_ctx=num_ctx,
    )
