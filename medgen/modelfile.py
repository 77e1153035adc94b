"""Ollama Modelfile rendering: the chat format, its stop tokens and sampling parameters from the model.

A GGUF imported with only FROM keeps generating past the answer, so TEMPLATE and every stop token are
written explicitly. Llama 3.x ends a turn with <|eot_id|>, not <|end_of_text|>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from medgen.errors import ExportError


@dataclass(frozen=True)
class ChatFormat:
    name: str
    template: str  # Ollama (Go text/template) prompt template
    stops: tuple[str, ...]


CHATML = ChatFormat(
    "chatml",
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
    ("<|im_end|>", "<|im_start|>"),
)
LLAMA3 = ChatFormat(
    "llama3",
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
    ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"),
)


def chat_format(chat_template: str | None) -> ChatFormat:
    """Recognise the model's (Jinja) chat template as one of the formats Ollama is given here."""
    if chat_template and "<|start_header_id|>" in chat_template:
        return LLAMA3
    if chat_template and "<|im_start|>" in chat_template:
        return CHATML
    raise ExportError(
        "chat template: expected a ChatML (<|im_start|>) or Llama 3.x (<|start_header_id|>) template, got "
        + (repr(chat_template[:60]) + "…" if chat_template else "none")
    )


def render(template: str, *, gguf: Path, name: str, modelfile: Path, system: str, fmt: ChatFormat,
           eos_token: str | None, temperature: float, top_p: float, num_ctx: int) -> str:
    stops = list(fmt.stops) + ([eos_token] if eos_token and eos_token not in fmt.stops else [])
    return Template(template).substitute(
        gguf=str(gguf),
        name=name,
        modelfile=str(modelfile),
        system=system.replace('"""', '"'),
        template=fmt.template,
        stops="\n".join(f'PARAMETER stop "{s}"' for s in stops),
        temperature=temperature,
        top_p=top_p,
        num_ctx=num_ctx,
    )
