"""The prompt every stage agrees on: chat layout, the metadata line, and the fixed probe prompts."""

from __future__ import annotations

import re

from medgen.core.constants import INPUT_TEMPLATE, INSTRUCTION, INSTRUCTION_INLINE_MARKUP

INPUT_RE = re.compile(r"Sex:\s*(?P<sex>[^,]+?)\s*,\s*(?:Medical\s+)?Service:\s*(?P<service>.+?)\s*$")

# (sex, service) pairs whose logits are compared across conversions (merge, export): fixed so that
# figures from different runs are comparable.
PROBES = (("Female", "PSYCHIATRY"), ("Male", "CARDIOLOGY"), ("Female", "SURGERY"), ("Male", "NEUROLOGY"))
# Text that continues each probe into the record, so compared positions cover record text too.
PROBE_CONTINUATION = "Name: John Doe    Unit No: 1234567\n \nAdmission Date: 01/02/2020"
PROBE_SPANS = ({"start": 6, "end": 14, "category": "NAME:PATIENT", "text": "John Doe"},
               {"start": 27, "end": 34, "category": "ID:MEDICALRECORD", "text": "1234567"},
               {"start": 53, "end": 63, "category": "DATE", "text": "01/02/2020"})


def instruction(inline_markup: bool) -> str:
    """The system prompt: the same in training, probes, the smoke test, generation and the Modelfile."""
    return INSTRUCTION_INLINE_MARKUP if inline_markup else INSTRUCTION


def chat_messages(system: str, user: str, assistant: str | None = None) -> list[dict]:
    """The chat layout everywhere: system = instruction, user = input, assistant = the record."""
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return msgs + ([{"role": "assistant", "content": assistant}] if assistant is not None else [])


def make_input(sex: str, service: str) -> str:
    return INPUT_TEMPLATE.format(sex=sex, service=service)


def parse_input(text: str) -> tuple[str, str] | None:
    """'Generate discharge record for: Sex: Male, Medical Service: CARDIOLOGY' -> ('Male', 'CARDIOLOGY')."""
    m = INPUT_RE.search(text)
    return (m["sex"], m["service"]) if m else None


def request_messages(sex: str, service: str, inline_markup: bool) -> list[dict]:
    """What a served model is asked for one record."""
    return chat_messages(instruction(inline_markup), make_input(sex, service))


def probe_token_ids(tok, inline_markup: bool) -> list[list[int]]:
    """Token ids of the probe prompts, chat-formatted with the model's own template and continued into a record."""
    continuation = PROBE_CONTINUATION
    if inline_markup:
        from medgen.data.markup import markup

        continuation = markup(PROBE_CONTINUATION, PROBE_SPANS)
    out = []
    for sex, service in PROBES:
        text = tok.apply_chat_template(request_messages(sex, service, inline_markup), tokenize=False,
                                       add_generation_prompt=True)
        out.append(tok(text + continuation, add_special_tokens=False)["input_ids"])
    return out
